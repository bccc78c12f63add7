"""The daily reconciliation: what Stripe (localstripe) says was paid vs the ledger. Webhooks are
switched off to lose events on purpose; the reconciliation finds and repairs the grants, once."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.client import ScheduleCalendarSpec

from core.schedules import RECONCILIATION_SCHEDULE_ID, ensure_reconciliation_schedule
from models.payment_workflows import ReconcileInput, ReconciliationReport
from tests.payments.conftest import WEBHOOK_SECRET, PaymentHarness, eventually
from tests.payments.test_subscription_e2e import _renew, _stripe_ids


async def _reconcile(pay: PaymentHarness) -> ReconciliationReport:
    return await pay.temporal.execute_workflow(
        "ReconciliationWorkflow", ReconcileInput(lookback_days=3), id=f"reconcile-{uuid.uuid4()}",
        task_queue=pay.task_queue, result_type=ReconciliationReport, execution_timeout=timedelta(minutes=5))


async def test_lost_webhooks_are_found_and_repaired_once(pay: PaymentHarness):
    c = await pay.customer()
    r = await pay.post("/api/subscriptions/subscribe", c.api_key, {"plan": "nebula", "payment_method_id": await pay.card()})
    assert r.status_code == 200, r.text
    cus, sub_id = await _stripe_ids(pay, r.json()["subscription"])
    r = await pay.post("/api/credit-packs/10/purchase", c.api_key)
    payment = r.json()["payment"]

    pay.localstripe.configure_webhook("http://127.0.0.1:9/lost", WEBHOOK_SECRET)  # every event is lost now
    renewal = await _renew(pay, cus, sub_id)
    await pay.stripe.v1.payment_intents.update_async(payment["stripe_payment_intent_id"],
                                                     {"payment_method": await pay.card()})
    await pay.stripe.v1.payment_intents.confirm_async(payment["stripe_payment_intent_id"])
    assert [g.amount for g in await pay.grants(c.customer_id)] == [60]
    assert await pay.grants(c.customer_id, "payment") == []

    report = await _reconcile(pay)
    missing = {m.idempotency_key for m in report.missing}
    assert {f"invoice:{renewal.id}", f"payment:{payment['id']}"} <= missing
    assert {f"invoice:{renewal.id}", f"payment:{payment['id']}"} <= {m.idempotency_key for m in report.repaired}

    async def repaired():  # the invoice goes through the customer's subscription workflow
        return len(await pay.grants(c.customer_id)) == 2
    await eventually(repaired, what="the renewal's grant")
    assert [g.amount for g in await pay.grants(c.customer_id, "payment")] == [10]
    assert (await pay.get("/api/payments", c.api_key)).json()["payments"][0]["status"] == "completed"
    await pay.invariants_hold(c.customer_id)

    again = await _reconcile(pay)
    assert not {f"invoice:{renewal.id}", f"payment:{payment['id']}"} & {m.idempotency_key for m in again.missing}
    assert len(await pay.grants(c.customer_id)) == 2


async def test_grants_stripe_does_not_know_are_reported_not_clawed_back(pay: PaymentHarness):
    c = await pay.customer()
    ghost = f"in_ghost{uuid.uuid4().hex[:8]}"
    await pay.ledger.grant(c.customer_id, 60, "subscription", f"invoice:{ghost}", "invoice", ghost, actor="tests",
                           reason="a grant without a paid invoice")
    report = await _reconcile(pay)
    assert ghost in {u.stripe_id for u in report.unexplained}
    assert (await pay.ledger.balances(c.customer_id)).subscription == 60


async def test_the_daily_schedule_is_created_once(temporal_env, task_queue):
    client = temporal_env.client
    try:
        assert await ensure_reconciliation_schedule(client, task_queue) == RECONCILIATION_SCHEDULE_ID
        assert await ensure_reconciliation_schedule(client, task_queue) == RECONCILIATION_SCHEDULE_ID
        desc = await client.get_schedule_handle(RECONCILIATION_SCHEDULE_ID).describe()
        cal = desc.schedule.spec.calendars[0]
        assert isinstance(cal, ScheduleCalendarSpec)
        assert ([r.start for r in cal.hour], [r.start for r in cal.minute]) == ([3], [15])
        assert desc.schedule.action.workflow == "ReconciliationWorkflow"
    finally:
        await client.get_schedule_handle(RECONCILIATION_SCHEDULE_ID).delete()
