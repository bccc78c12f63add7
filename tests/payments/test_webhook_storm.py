"""Replay storms: every webhook of a subscription year, delivered three times in shuffled order
through ``POST /api/stripe/webhook`` (signed), applied by the SubscriptionWorkflow on the Temporal
dev server. Payloads follow Stripe's documented shapes (``stripe_events.py``): localstripe cannot
produce twelve distinct monthly periods."""

from __future__ import annotations

import random
import uuid

import sqlalchemy as sa

from models.db import StripeEvent
from tests.payments.conftest import PaymentHarness, eventually
from tests.payments.stripe_events import month, subscription_year


async def _stripe_customer(pay: PaymentHarness) -> tuple[object, str]:
    c = await pay.customer()
    cus = f"cus_storm{uuid.uuid4().hex[:10]}"
    await pay.set_stripe_customer(c.customer_id, cus)
    return c, cus


async def _storm(pay: PaymentHarness, events: list[dict], seed: int) -> None:
    deliveries = events * 3
    random.Random(seed).shuffle(deliveries)
    for e in deliveries:
        r = await pay.deliver(e)
        assert r.status_code == 200, r.text
        assert r.json()["routed"].startswith("subscription-"), r.text
    ids = {e["id"] for e in events}

    async def all_processed():
        async with pay.engine.connect() as conn:
            n = (await conn.execute(sa.select(sa.func.count()).select_from(StripeEvent.__table__).where(
                StripeEvent.__table__.c.id.in_(ids)))).scalar_one()
        return n == len(ids)
    await eventually(all_processed, timeout=120, what="every event of the storm processed")


async def _row(pay: PaymentHarness, key: str, **expected) -> dict:
    async def check():
        sub = await pay.subscription(key)
        return sub if sub and all(sub[k] == v for k, v in expected.items()) else None
    return await eventually(check, timeout=60, what=f"subscription row {expected}")


async def test_a_year_of_webhooks_three_times_shuffled_grants_exactly_twelve_allowances(pay: PaymentHarness):
    c, cus = await _stripe_customer(pay)
    events = subscription_year(cus, c.customer_id, f"sub_{uuid.uuid4().hex[:12]}", "nebula")
    await _storm(pay, events, seed=1)
    grants = await pay.grants(c.customer_id)
    assert len(grants) == 12 and {g.amount for g in grants} == {60}
    assert len({g.reference_id for g in grants}) == 12
    assert (await pay.ledger.balances(c.customer_id)).subscription == 12 * 60
    await pay.invariants_hold(c.customer_id)
    sub = await _row(pay, c.api_key, status="active", cancel_at_period_end=True)
    assert sub["plan"] == "nebula"
    start, end = month(11)
    assert (sub["current_period_start"][:10], sub["current_period_end"][:10]) == (
        _iso(start)[:10], _iso(end)[:10])

    # The same storm again, in another order: nothing moves.
    await _storm(pay, events, seed=2)
    assert len(await pay.grants(c.customer_id)) == 12
    assert (await pay.ledger.balances(c.customer_id)).subscription == 12 * 60
    await pay.invariants_hold(c.customer_id)


async def test_a_year_with_upgrade_downgrade_and_end_gives_the_same_outcome_in_any_order(pay: PaymentHarness):
    """Upgrade Nebula → Quasar mid-month 3 (prorated invoice: 150 × ½ − 60 × ½ = +45), renewals bill Stardust from
    month 8, the subscription ends after month 11: its credits expire, a pack bought meanwhile stays."""
    outcomes = []
    for seed in (3, 4):
        c, cus = await _stripe_customer(pay)
        await pay.ledger.grant(c.customer_id, 55, "pack", f"test-pack:{c.customer_id}", "payment", "test",
                               actor="tests", reason="a pack bought during the year")
        events = subscription_year(cus, c.customer_id, f"sub_{uuid.uuid4().hex[:12]}", "nebula",
                                   upgrade_month=3, downgrade_month=8, end=True)
        await _storm(pay, events, seed=seed)
        grants = await pay.grants(c.customer_id)
        expected = [60, 60, 60, 60, 45, 150, 150, 150, 150, 20, 20, 20, 20]
        assert sorted(g.amount for g in grants) == sorted(expected)
        balances = await pay.ledger.balances(c.customer_id)
        assert (balances.subscription, balances.pack) == (0, 55)
        await pay.invariants_hold(c.customer_id)
        sub = await _row(pay, c.api_key, status="cancelled")
        outcomes.append((sub["plan"], sub["status"], sub["current_period_end"], len(grants),
                         balances.subscription, balances.pack))
    assert outcomes[0] == outcomes[1]


async def test_a_declined_renewal_left_unpaid_makes_the_plan_past_due(pay: PaymentHarness):
    c, cus = await _stripe_customer(pay)
    events = subscription_year(cus, c.customer_id, f"sub_{uuid.uuid4().hex[:12]}", "stardust",
                               failed_month=11, cancel_in_month=None)
    unpaid = [e for e in events if not (e["type"] in ("invoice.paid", "invoice.payment_succeeded")
                                        and e["data"]["object"]["id"].endswith("_11"))]
    await _storm(pay, unpaid, seed=5)
    await _row(pay, c.api_key, status="past_due")
    assert len(await pay.grants(c.customer_id)) == 11
    await _storm(pay, events, seed=6)  # Stripe's retry succeeds
    await _row(pay, c.api_key, status="active")
    assert len(await pay.grants(c.customer_id)) == 12
    await pay.invariants_hold(c.customer_id)


def _iso(t: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(t, timezone.utc).isoformat()


async def test_localstripes_own_events_replayed_three_times_shuffled_change_nothing(pay: PaymentHarness):
    """Capture and replay: every event localstripe sent about one customer's subscription
    (subscribe, two renewals, an upgrade), delivered again three times in shuffled order."""
    from tests.payments.test_subscription_e2e import _event_for, _processed, _renew, _stripe_ids

    c = await pay.customer()
    r = await pay.post("/api/subscriptions/subscribe", c.api_key, {"plan": "nebula", "payment_method_id": await pay.card()})
    assert r.status_code == 200, r.text
    cus, sub_id = await _stripe_ids(pay, r.json()["subscription"])
    for _ in range(2):
        inv = await _renew(pay, cus, sub_id)
        await _processed(pay, await _event_for(pay, "invoice.payment_succeeded", inv.id))
    up = await pay.post("/api/subscriptions/change", c.api_key, {"plan": "quasar"})
    assert up.status_code == 200, up.text
    last = (await pay.stripe.v1.subscriptions.retrieve_async(sub_id)).latest_invoice
    await _processed(pay, await _event_for(pay, "invoice.payment_succeeded", last))
    before = ([g.amount for g in await pay.grants(c.customer_id)], await pay.subscription(c.api_key))
    assert before[0] == [60, 60, 60, 90]

    captured = []
    for e in (await pay.stripe.v1.events.list_async({"limit": 1000})).data:
        d = e.to_dict()
        obj = d["data"]["object"]
        if obj.get("customer") == cus or obj.get("id") in (cus, sub_id):
            captured.append(d)
    assert {e["type"] for e in captured} >= {"invoice.payment_succeeded", "customer.subscription.created"}
    deliveries = captured * 3
    random.Random(7).shuffle(deliveries)
    for e in deliveries:
        assert (await pay.deliver(e)).status_code == 200
    for e in captured:
        if e["type"] in ("invoice.payment_succeeded", "customer.subscription.created", "customer.subscription.updated"):
            await _processed(pay, e["id"])
    after = ([g.amount for g in await pay.grants(c.customer_id)], await pay.subscription(c.api_key))
    assert after == before
    await pay.invariants_hold(c.customer_id)
