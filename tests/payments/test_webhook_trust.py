"""The webhook never takes a customer or a purchase from event metadata alone: a fact naming a
Stripe customer resolves only through the id we stored, and a PaymentIntent pays a pack only when
its amount, currency and customer match the purchase."""

from __future__ import annotations

import time
import uuid

import sqlalchemy as sa

from billing.stripe_effects import PAYMENT
from tests.payments.conftest import PaymentHarness
from tests.payments.stripe_events import event, invoice, line, month


async def _with_stripe_id(pay: PaymentHarness):
    c = await pay.customer()
    cus = f"cus_trust{uuid.uuid4().hex[:10]}"
    await pay.set_stripe_customer(c.customer_id, cus)
    return c, cus


async def test_an_invoice_of_another_stripe_customer_claiming_ours_in_metadata_is_ignored(pay: PaymentHarness):
    start, end = month(0)
    for victim, _ in (await _with_stripe_id(pay), (await pay.customer(), None)):
        forged = invoice(f"in_forged{uuid.uuid4().hex[:8]}", f"cus_forged{uuid.uuid4().hex[:8]}", "sub_forged",
                         [line("quasar", 11900, start, end)], status="paid", reason="subscription_create",
                         created=start, customer_id=victim.customer_id)
        r = await pay.deliver(event("invoice.paid", forged, int(time.time())))
        assert r.status_code == 200 and r.json()["routed"] == "ignored: unknown customer"
        assert await pay.entries(victim.customer_id) == []


async def _pending_payment(pay: PaymentHarness, customer_id: int) -> int:
    async with pay.engine.begin() as conn:
        return (await conn.execute(PAYMENT.insert().values(
            customer_id=customer_id, pack_id="pack_50", credits=50, bonus_credits=5, amount_cents=4500,
            currency="eur", status="pending", created_at=sa.func.now()).returning(PAYMENT.c.id))).scalar_one()


def _succeeded(payment_id: int, customer_id: int, amount: int, currency: str = "eur",
               stripe_customer: str | None = None) -> dict:
    pi = {"id": f"pi_trust{uuid.uuid4().hex[:10]}", "object": "payment_intent", "amount": amount,
          "amount_received": amount, "currency": currency, "customer": stripe_customer, "status": "succeeded",
          "metadata": {"stellar_payment_id": str(payment_id), "stellar_customer_id": str(customer_id)}}
    return event("payment_intent.succeeded", pi, int(time.time()))


async def test_a_payment_intent_pays_a_pack_only_when_it_matches_the_purchase(pay: PaymentHarness):
    c, cus = await _with_stripe_id(pay)
    other, other_cus = await _with_stripe_id(pay)
    refused = [_succeeded(await _pending_payment(pay, c.customer_id), c.customer_id, 1),  # 1 cent for 45 €
               _succeeded(await _pending_payment(pay, c.customer_id), c.customer_id, 4500, currency="usd"),
               _succeeded(await _pending_payment(pay, c.customer_id), c.customer_id, 4500, stripe_customer=other_cus)]
    for evt in refused:
        r = await pay.deliver(evt)
        assert r.status_code == 200, r.text
    assert await pay.entries(c.customer_id) == [] and await pay.entries(other.customer_id) == []
    async with pay.engine.connect() as conn:
        statuses = (await conn.execute(sa.select(PAYMENT.c.status).where(PAYMENT.c.customer_id == c.customer_id))).all()
    assert [s for (s,) in statuses] == ["pending"] * 3
    # The same path with a matching PaymentIntent grants the pack, once.
    good = _succeeded(await _pending_payment(pay, c.customer_id), c.customer_id, 4500, stripe_customer=cus)
    for _ in range(2):
        assert (await pay.deliver(good)).status_code == 200
    assert [(e.kind, e.amount) for e in await pay.entries(c.customer_id)] == [("grant", 55)]
    await pay.invariants_hold(c.customer_id)
