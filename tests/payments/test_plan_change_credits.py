"""Plan changes grant what was paid for: the upgrade-arbitrage case, with signed Stripe events.

Stardust (20 credits, €29), upgrade to Quasar (150, €119) the day before renewal, downgrade back
to Stardust at the period end. Stripe prorates the upgrade by time, so it charges about one day of
the difference; the credits granted must follow that money, so that no euro buys more credits
than Quasar's 150 / €119. localstripe does not prorate by time: these payloads follow Stripe's
documented proration invoice (``stripe_events.line(..., proration=True)``).
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from billing.allowance import invoice_allowance
from billing.plans import PLANS
from billing.webhooks import invoice_lines
from models.db import StripeEvent
from tests.payments.conftest import PaymentHarness, eventually
from tests.payments.stripe_events import event, invoice, line, month, subscription

DAY = 86_400


def _arbitrage(cus: str, customer_id: int, sub: str) -> tuple[list[dict], list[dict]]:
    """(events, paid invoices) of: Stardust month 0, Quasar the day before renewal, Stardust again."""
    (s0, e0), (s1, e1) = month(0), month(1)
    period = e0 - s0
    first = invoice(f"in_{sub[-8:]}_00", cus, sub, [line("stardust", 2900, s0, e0)], status="paid",
                    reason="subscription_create", created=s0, customer_id=customer_id)
    at = e0 - DAY  # Stripe: amount × remaining time ÷ period, for both plans
    up = invoice(f"in_{sub[-8:]}_00u", cus, sub, [
        line("stardust", -round(2900 * DAY / period), at, e0, proration=True),
        line("quasar", round(11900 * DAY / period), at, e0, proration=True),
    ], status="paid", reason="subscription_update", created=at, customer_id=customer_id)
    renewal = invoice(f"in_{sub[-8:]}_01", cus, sub, [line("stardust", 2900, s1, e1)], status="paid",
                      reason="subscription_cycle", created=s1, customer_id=customer_id)
    events = [
        event("customer.subscription.created", subscription(sub, cus, "stardust", (s0, e0), status="active",
                                                            customer_id=customer_id), s0),
        event("invoice.paid", first, s0 + 10),
        event("customer.subscription.updated", subscription(sub, cus, "quasar", (s0, e0), status="active",
                                                            customer_id=customer_id), at),
        event("invoice.paid", up, at + 5),
        # The downgrade, scheduled at once: no proration, the next renewal bills Stardust.
        event("customer.subscription.updated", subscription(sub, cus, "stardust", (s0, e0), status="active",
                                                            customer_id=customer_id), at + 60),
        event("invoice.paid", renewal, s1 + 10),
    ]
    return events, [first, up, renewal]


def test_an_upgrade_the_day_before_renewal_grants_only_what_its_day_paid_for():
    events, (first, up, renewal) = _arbitrage("cus_arb", 7, "sub_arbitrage1")
    paid = [invoice_allowance(invoice_lines(i)) for i in (first, up, renewal)]
    assert paid[0] == 20 and paid[2] == 20
    assert 0 <= paid[1] <= 5  # ≈ 150/30 − 20/30, not 150 − 20
    cents = sum(i["amount_paid"] for i in (first, up, renewal))
    quasar = PLANS["quasar"]
    assert sum(paid) * quasar.price_cents <= quasar.monthly_credits * cents


async def test_upgrade_arbitrage_through_the_webhook_gives_no_more_credits_per_euro_than_quasar(pay: PaymentHarness):
    c = await pay.customer()
    cus, sub = f"cus_arb{uuid.uuid4().hex[:10]}", f"sub_{uuid.uuid4().hex[:12]}"
    await pay.set_stripe_customer(c.customer_id, cus)
    events, invoices = _arbitrage(cus, c.customer_id, sub)
    for e in events[:5]:  # up to the scheduled downgrade, before the renewal
        r = await pay.deliver(e)
        assert r.status_code == 200, r.text

    async def processed(n: int):
        ids = [e["id"] for e in events[:n]]
        async with pay.engine.connect() as conn:
            done = (await conn.execute(sa.select(sa.func.count()).select_from(StripeEvent.__table__).where(
                StripeEvent.__table__.c.id.in_(ids)))).scalar_one()
        return done == len(ids)

    await eventually(lambda: processed(5), what="the upgrade and the scheduled downgrade")
    upgraded = sum(g.amount for g in await pay.grants(c.customer_id))
    assert 20 <= upgraded <= 25  # Stardust's 20 + what one day of Quasar paid for

    r = await pay.deliver(events[5])  # the renewal at Stardust: the downgrade grants once paid
    assert r.status_code == 200, r.text
    await eventually(lambda: processed(6), what="the renewal")
    grants = await pay.grants(c.customer_id)
    assert len(grants) == 3 and grants[-1].amount == 20
    credits = sum(g.amount for g in grants)
    cents = sum(i["amount_paid"] for i in invoices)
    quasar = PLANS["quasar"]
    assert credits * quasar.price_cents <= quasar.monthly_credits * cents, (credits, cents)
    await pay.invariants_hold(c.customer_id)
