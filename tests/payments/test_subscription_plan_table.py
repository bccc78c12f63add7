"""The subscription workflow decides with the plan table of its input, and at a new billing period
reads the deployed table through an activity (recorded in history) before continuing as new."""

from __future__ import annotations

import json
import uuid

from temporalio.api.enums.v1 import EventType

from models.temporal_contract import subscription_workflow_id
from tests.payments.conftest import PaymentHarness, eventually
from tests.payments.stripe_events import event, invoice, line, month, subscription


async def test_a_new_period_continues_as_new_with_the_plan_table_an_activity_read(pay: PaymentHarness):
    c = await pay.customer()
    cus, sub = f"cus_pt{uuid.uuid4().hex[:10]}", f"sub_{uuid.uuid4().hex[:12]}"
    await pay.set_stripe_customer(c.customer_id, cus)
    s0, e0 = month(0)
    paid = invoice(f"in_{sub[-8:]}_00", cus, sub, [line("nebula", 5900, s0, e0)], status="paid",
                   reason="subscription_create", created=s0, customer_id=c.customer_id)
    for e in (event("customer.subscription.created", subscription(sub, cus, "nebula", (s0, e0), status="active",
                                                                  customer_id=c.customer_id), s0),
              event("invoice.paid", paid, s0 + 10)):
        r = await pay.deliver(e)
        assert r.status_code == 200, r.text

    handle = pay.temporal.get_workflow_handle(subscription_workflow_id(c.customer_id))

    async def continued():
        started = (await handle.fetch_history()).events[0].workflow_execution_started_event_attributes
        return started if started.continued_execution_run_id else None

    started = await eventually(continued, what="the paid period's continue-as-new")
    plans = json.loads(started.input.payloads[0].data)["plans"]["plans"]
    assert [(p["id"], p["monthly_credits"], p["price_cents"]) for p in plans] == [
        ("stardust", 20, 2900), ("nebula", 60, 5900), ("quasar", 150, 11900)]
    previous = pay.temporal.get_workflow_handle(handle.id, run_id=started.continued_execution_run_id)
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name
                 for e in (await previous.fetch_history()).events
                 if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert scheduled[-1] == "payments.plan_table"  # read last, just before continuing as new

    async def granted():
        return sum(g.amount for g in await pay.grants(c.customer_id)) == 60

    await eventually(granted, what="Nebula's 60 credits, granted once across the runs")
