"""``POST /api/stripe/webhook`` verifies the signature on the raw body: unsigned, wrongly signed,
stale or altered events are 400 and change nothing (no event row, no credits, no workflow)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import sqlalchemy as sa
from temporalio.service import RPCError

from models.db import StripeEvent
from tests.payments.conftest import WEBHOOK_SECRET, PaymentHarness, eventually, sign
from tests.payments.stripe_events import event, invoice, line, month


async def _paid_invoice_event(pay: PaymentHarness) -> tuple[object, dict]:
    c = await pay.customer()
    cus = f"cus_sig{uuid.uuid4().hex[:10]}"
    await pay.set_stripe_customer(c.customer_id, cus)
    start, end = month(0)
    inv = invoice(f"in_sig{uuid.uuid4().hex[:8]}", cus, f"sub_sig{uuid.uuid4().hex[:8]}",
                  [line("nebula", 5900, start, end)], status="paid", reason="subscription_create", created=start,
                  customer_id=c.customer_id)
    return c, event("invoice.paid", inv, int(time.time()))


async def _nothing_happened(pay: PaymentHarness, c, evt: dict) -> None:
    async with pay.engine.connect() as conn:
        assert (await conn.execute(sa.select(StripeEvent.__table__).where(
            StripeEvent.__table__.c.id == evt["id"]))).first() is None
    assert await pay.entries(c.customer_id) == []
    with pytest.raises(RPCError):
        await pay.temporal.get_workflow_handle(f"subscription-{c.customer_id}").describe()


@pytest.mark.parametrize("case", ["unsigned", "other_secret", "stale", "altered_body", "garbage_header",
                                  "future_signature_of_other_body"])
async def test_bad_signatures_are_400_and_change_nothing(pay: PaymentHarness, case: str):
    c, evt = await _paid_invoice_event(pay)
    payload = json.dumps(evt).encode()
    headers = {"Content-Type": "application/json"}
    if case == "other_secret":
        headers["Stripe-Signature"] = sign(payload, "whsec_someone_else")
    elif case == "stale":  # 10 minutes old, tolerance 300 s
        headers["Stripe-Signature"] = sign(payload, WEBHOOK_SECRET, int(time.time()) - 600)
    elif case == "altered_body":
        headers["Stripe-Signature"] = sign(payload)
        payload = payload.replace(b"5900", b"9900")
    elif case == "garbage_header":
        headers["Stripe-Signature"] = "t=abc,v1=zzz"
    elif case == "future_signature_of_other_body":
        headers["Stripe-Signature"] = sign(b'{"id": "evt_other"}')
    r = await pay.http.post("/api/stripe/webhook", content=payload, headers=headers)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_signature"
    await _nothing_happened(pay, c, evt)


async def test_a_signed_event_is_accepted_and_applied_once(pay: PaymentHarness):
    c, evt = await _paid_invoice_event(pay)
    for _ in range(2):
        r = await pay.deliver(evt)
        assert r.status_code == 200, r.text
        assert r.json() == {"received": evt["id"], "routed": f"subscription-{c.customer_id}"}

    async def granted():
        return await pay.grants(c.customer_id)
    grants = await eventually(granted, what="the grant")
    assert [g.amount for g in grants] == [60]


async def test_events_we_do_not_handle_or_do_not_own_are_acknowledged(pay: PaymentHarness):
    r = await pay.deliver(event("customer.created", {"id": "cus_nobody", "object": "customer"}, int(time.time())))
    assert r.status_code == 200 and r.json()["routed"].startswith("ignored")
    start, end = month(0)
    foreign = invoice("in_foreign1", "cus_not_ours", "sub_not_ours", [line("nebula", 5900, start, end)],
                      status="paid", reason="subscription_cycle", created=start, customer_id=0)
    foreign["parent"]["subscription_details"]["metadata"] = {}
    r = await pay.deliver(event("invoice.paid", foreign, int(time.time())))
    assert r.status_code == 200 and r.json()["routed"] == "ignored: unknown customer"
