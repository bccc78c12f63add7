"""Refunds and disputes take back what their payment granted, through signed webhooks.

Packs are bought for real in localstripe (PaymentIntent, charge, refund); localstripe sends no
``charge.refunded`` and knows no disputes, so those events are built from Stripe's documented
shapes around the real charge (``stripe_events.charge_refunded`` / ``dispute``) and POSTed signed to
``/api/stripe/webhook``. Credits are spent through the ledger's hold and capture, as orders do.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from billing.disputes import order_payment_in_dispute, payment_in_dispute
from models.db import Order
from models.payment_workflows import ReconcileInput, ReconciliationReport
from tests.payments.conftest import PaymentHarness, eventually
from tests.payments.stripe_events import charge_refunded, dispute

ORDER_BODY = {"target_name": "M42", "shots": [{"filter": "L", "exposure": 60, "quantity": 10}]}


async def _buy(pay: PaymentHarness, key: str, pack: str = "10") -> dict[str, Any]:
    r = await pay.post(f"/api/credit-packs/{pack}/purchase", key, {"payment_method_id": await pay.card()})
    assert r.status_code == 201, r.text
    assert r.json()["payment"]["status"] == "completed"
    return r.json()["payment"]


async def _charge(pay: PaymentHarness, payment: dict[str, Any]) -> dict[str, Any]:
    pi = (await pay.stripe.v1.payment_intents.retrieve_async(payment["stripe_payment_intent_id"])).to_dict()
    latest = pi["latest_charge"]
    charge_id = latest if isinstance(latest, str) else latest["id"]
    return (await pay.stripe.v1.charges.retrieve_async(charge_id)).to_dict()


async def _spend(pay: PaymentHarness, customer_id: int, credits: int) -> None:
    order_id = random.randrange(10**12, 10**15)
    await pay.ledger.hold(customer_id, order_id, credits)
    await pay.ledger.capture(order_id, credits)


async def _deliver(pay: PaymentHarness, event: dict[str, Any]) -> str:
    r = await pay.deliver(event)
    assert r.status_code == 200, r.text
    return r.json()["routed"]


async def _state(pay: PaymentHarness, customer_id: int) -> tuple[int, int, int, int]:
    b = await pay.ledger.balances(customer_id)
    return b.subscription, b.pack, b.debt, b.available


async def test_refund_of_a_spent_pack_leaves_a_debt_that_refuses_orders_until_covered(pay: PaymentHarness):
    c = await pay.customer()
    payment = await _buy(pay, c.api_key, "10")
    await _spend(pay, c.customer_id, 8)
    assert await _state(pay, c.customer_id) == (0, 2, 0, 2)

    await pay.stripe.v1.refunds.create_async({"payment_intent": payment["stripe_payment_intent_id"]})
    charge = await _charge(pay, payment)
    assert charge["amount_refunded"] == 1500
    routed = await _deliver(pay, charge_refunded(charge, 1500, int(time.time())))
    assert routed.startswith("applied") and "-10 credits" in routed
    assert await _state(pay, c.customer_id) == (0, 0, 8, -8)
    credits = (await pay.get("/api/credits", c.api_key)).json()
    assert (credits["available"], credits["buckets"]["debt"]) == (-8, 8)

    r = await pay.post("/api/orders", c.api_key, ORDER_BODY)
    assert r.status_code == 402, r.text
    err = r.json()["error"]
    assert err["code"] == "credit_debt" and "owes 8 credits" in err["message"] and "refunded" in err["message"]
    await pay.invariants_hold(c.customer_id)

    await _buy(pay, c.api_key, "10")  # new credits cover the debt first
    assert await _state(pay, c.customer_id) == (0, 2, 0, 2)
    kinds = [(e.kind, e.bucket, e.amount) for e in await pay.entries(c.customer_id)]
    assert kinds[-4:] == [("clawback", "debt", -8), ("grant", "pack", 10), ("repay", "pack", -8), ("repay", "debt", 8)]
    await pay.invariants_hold(c.customer_id)


async def test_a_dispute_lost_then_won_nets_to_the_original_state(pay: PaymentHarness):
    c = await pay.customer()
    payment = await _buy(pay, c.api_key, "50")  # 50 + 5 bonus for €67.50
    await _spend(pay, c.customer_id, 20)
    before = await _state(pay, c.customer_id)
    assert before == (0, 35, 0, 35)
    charge = await _charge(pay, payment)
    dp, now = f"dp_{uuid.uuid4().hex[:14]}", int(time.time())

    await _deliver(pay, dispute(dp, charge, 6750, "needs_response", "charge.dispute.created", now))
    assert await _state(pay, c.customer_id) == (0, 0, 20, -20)
    async with pay.engine.connect() as conn:
        assert await payment_in_dispute(conn, c.customer_id)
    await _deliver(pay, dispute(dp, charge, 6750, "lost", "charge.dispute.closed", now + 1))
    assert await _state(pay, c.customer_id) == (0, 0, 20, -20)
    won = dispute(dp, charge, 6750, "won", "charge.dispute.closed", now + 2)
    await _deliver(pay, won)
    assert await _state(pay, c.customer_id) == before
    n = len(await pay.entries(c.customer_id))
    await _deliver(pay, won)  # delivered again: nothing moves
    await _deliver(pay, dispute(dp, charge, 6750, "needs_response", "charge.dispute.created", now))  # late, stale
    assert await _state(pay, c.customer_id) == before and len(await pay.entries(c.customer_id)) == n
    async with pay.engine.connect() as conn:
        assert not await payment_in_dispute(conn, c.customer_id)
    await pay.invariants_hold(c.customer_id)


async def test_open_dispute_is_visible_per_order(pay: PaymentHarness):
    c = await pay.customer()
    payment = await _buy(pay, c.api_key, "10")
    charge = await _charge(pay, payment)
    async with pay.engine.begin() as conn:
        order_id = (await conn.execute(Order.__table__.insert().values(
            customer_id=c.customer_id, target_name="M42", ra_j2000=5.59, dec_j2000=-5.39, status="completed",
            created_at=sa.func.now(), updated_at=sa.func.now())
            .returning(Order.__table__.c.id))).scalar_one()
    async with pay.engine.connect() as conn:
        assert not await order_payment_in_dispute(conn, order_id)
    await _deliver(pay, dispute(f"dp_{uuid.uuid4().hex[:14]}", charge, 1500, "warning_needs_response",
                                "charge.dispute.created", int(time.time())))
    async with pay.engine.connect() as conn:
        assert await order_payment_in_dispute(conn, order_id)
        assert not await order_payment_in_dispute(conn, order_id + 10**9)  # unknown order
    assert await _state(pay, c.customer_id) == (0, 10, 0, 10)  # an inquiry withdraws no funds
    await pay.invariants_hold(c.customer_id)


async def test_partial_refund_and_dispute_each_three_times_shuffled_change_the_ledger_once(pay: PaymentHarness):
    c = await pay.customer()
    payment = await _buy(pay, c.api_key, "10")
    await _spend(pay, c.customer_id, 3)
    charge = await _charge(pay, payment)
    pi_id = payment["stripe_payment_intent_id"]
    listed = await pay.stripe.v1.events.list_async({"type": "payment_intent.succeeded", "limit": 100})
    paid = next(e.to_dict() for e in listed.data if e.data.object["id"] == pi_id)
    dp, now = f"dp_{uuid.uuid4().hex[:14]}", int(time.time())
    events = [
        paid,
        charge_refunded(charge, 600, now),  # 600 of 1500 cents → 4 of 10 credits
        dispute(dp, charge, 900, "needs_response", "charge.dispute.created", now + 1),  # the other 900
        dispute(dp, charge, 900, "under_review", "charge.dispute.updated", now + 2),
        dispute(dp, charge, 900, "lost", "charge.dispute.closed", now + 3),
    ]
    deliveries = events * 3
    random.Random(12).shuffle(deliveries)
    for e in deliveries:
        await _deliver(pay, e)

    assert await _state(pay, c.customer_id) == (0, 0, 3, -3)  # all 10 taken back, 3 were spent
    moved = [e for e in await pay.entries(c.customer_id) if e.reference_type == "charge"]
    assert sum(e.amount for e in moved) == -10
    assert len(await pay.grants(c.customer_id, "payment")) == 1
    n = len(await pay.entries(c.customer_id))
    random.Random(13).shuffle(deliveries)
    for e in deliveries:
        await _deliver(pay, e)
    assert len(await pay.entries(c.customer_id)) == n
    await pay.invariants_hold(c.customer_id)


async def test_a_refund_that_arrives_before_the_payment_takes_the_grant_back_at_once(pay: PaymentHarness):
    c = await pay.customer()
    r = await pay.post("/api/credit-packs/10/purchase", c.api_key)  # pending: the browser pays later
    payment = r.json()["payment"]
    pi_id = payment["stripe_payment_intent_id"]
    early = {"id": f"ch_{uuid.uuid4().hex[:14]}", "object": "charge", "amount": 1500, "currency": "eur",
             "payment_intent": pi_id, "customer": None, "created": int(time.time())}
    routed = await _deliver(pay, charge_refunded(early, 1500, int(time.time())))
    assert routed.startswith("applied") and await pay.entries(c.customer_id) == []

    await pay.stripe.v1.payment_intents.update_async(pi_id, {"payment_method": await pay.card()})
    await pay.stripe.v1.payment_intents.confirm_async(pi_id)

    async def granted():
        return len(await pay.grants(c.customer_id, "payment")) == 1
    await eventually(granted, what="the pack's grant")
    assert await _state(pay, c.customer_id) == (0, 0, 0, 0)
    await pay.invariants_hold(c.customer_id)


async def test_reconciliation_finds_a_refund_whose_webhook_was_missed(pay: PaymentHarness):
    c = await pay.customer()
    payment = await _buy(pay, c.api_key, "10")
    await pay.stripe.v1.refunds.create_async({"payment_intent": payment["stripe_payment_intent_id"], "amount": 750})
    assert await _state(pay, c.customer_id) == (0, 10, 0, 10)  # no webhook for it

    async def reconcile() -> ReconciliationReport:
        return await pay.temporal.execute_workflow(
            "ReconciliationWorkflow", ReconcileInput(lookback_days=3), id=f"reconcile-{uuid.uuid4()}",
            task_queue=pay.task_queue, result_type=ReconciliationReport, execution_timeout=timedelta(minutes=5))

    report = await reconcile()
    charge = await _charge(pay, payment)
    mine = [i for i in report.reversed if i.stripe_id == charge["id"]]
    assert [(i.kind, i.credits) for i in mine] == [("charge_refunded", -5)]
    assert await _state(pay, c.customer_id) == (0, 5, 0, 5)
    again = await reconcile()
    assert not [i for i in again.reversed if i.stripe_id == charge["id"]]
    assert await _state(pay, c.customer_id) == (0, 5, 0, 5)
    await pay.invariants_hold(c.customer_id)


async def _subscribed_nebula(pay: PaymentHarness) -> tuple[Any, dict[str, Any]]:
    """A customer subscribed to Nebula in localstripe (60 credits) and the first invoice's charge."""
    c = await pay.customer()
    r = await pay.post("/api/subscriptions/subscribe", c.api_key, {"plan": "nebula", "payment_method_id": await pay.card()})
    assert r.status_code == 200, r.text
    sub = await pay.stripe.v1.subscriptions.retrieve_async(r.json()["subscription"]["stripe_subscription_id"])
    inv = (await pay.stripe.v1.invoices.retrieve_async(sub.latest_invoice)).to_dict()
    pi = (await pay.stripe.v1.payment_intents.retrieve_async(inv["payment_intent"])).to_dict()
    latest = pi["latest_charge"]
    charge = (await pay.stripe.v1.charges.retrieve_async(latest if isinstance(latest, str) else latest["id"])).to_dict()
    charge["invoice"] = inv["id"]  # Stripe's charge names its invoice (classic API shape); localstripe's does not
    return c, charge


async def test_a_refunded_subscription_invoice_takes_back_its_allowance_pro_rata(pay: PaymentHarness):
    c, charge = await _subscribed_nebula(pay)
    await _spend(pay, c.customer_id, 50)
    assert await _state(pay, c.customer_id) == (10, 0, 0, 10)

    await _deliver(pay, charge_refunded(charge, 2950, int(time.time())))  # half of €59 → 30 of 60 credits
    assert await _state(pay, c.customer_id) == (0, 0, 20, -20)
    entries = [(e.kind, e.bucket, e.amount) for e in await pay.entries(c.customer_id) if e.reference_type == "charge"]
    assert entries == [("clawback", "subscription", -10), ("clawback", "debt", -20)]
    await pay.invariants_hold(c.customer_id)


async def test_subscription_credits_won_back_after_the_subscription_ended_stay_expired(pay: PaymentHarness):
    c, charge = await _subscribed_nebula(pay)
    await _spend(pay, c.customer_id, 15)
    dp, now = f"dp_{uuid.uuid4().hex[:14]}", int(time.time())
    # A refund of 10 % names the invoice (the charge's); the dispute of the rest then ties to it.
    await _deliver(pay, charge_refunded(charge, 590, now))
    assert await _state(pay, c.customer_id) == (39, 0, 0, 39)
    await _deliver(pay, dispute(dp, charge, 5310, "needs_response", "charge.dispute.created", now + 1))
    assert await _state(pay, c.customer_id) == (0, 0, 15, -15)
    await pay.ledger.expire(c.customer_id, f"expire:test:{c.customer_id}")  # the subscription ends meanwhile
    await _deliver(pay, dispute(dp, charge, 5310, "won", "charge.dispute.closed", now + 2))
    assert await _state(pay, c.customer_id) == (0, 0, 0, 0)  # the debt is gone; the other 39 expired with it
    kinds = [(e.kind, e.bucket, e.amount) for e in await pay.entries(c.customer_id) if e.reference_type == "charge"]
    assert kinds[-3:] == [("restore", "debt", 15), ("restore", "subscription", 39), ("expire", "subscription", -39)]
    await pay.invariants_hold(c.customer_id)


async def test_concurrent_deliveries_of_a_refund_and_a_dispute_move_the_credits_once(pay: PaymentHarness):
    c = await pay.customer()
    payment = await _buy(pay, c.api_key, "10")
    charge = await _charge(pay, payment)
    dp, now = f"dp_{uuid.uuid4().hex[:14]}", int(time.time())
    events = [charge_refunded(charge, 300, now), charge_refunded(charge, 600, now + 1),
              dispute(dp, charge, 900, "needs_response", "charge.dispute.created", now + 2)]
    results = await asyncio.gather(*(pay.deliver(e) for e in events * 3))
    assert [r.status_code for r in results] == [200] * 9
    assert await _state(pay, c.customer_id) == (0, 0, 0, 0)  # 600 + 900 = 1500 cents: all 10 credits
    assert sum(e.amount for e in await pay.entries(c.customer_id) if e.reference_type == "charge") == -10
    await pay.invariants_hold(c.customer_id)


async def test_a_dispute_naming_only_the_payment_intent_finds_its_subscription_invoice(pay: PaymentHarness):
    c, charge = await _subscribed_nebula(pay)
    charge.pop("invoice")  # a dispute carries its charge and PaymentIntent, never the invoice
    await _spend(pay, c.customer_id, 10)
    dp, now = f"dp_{uuid.uuid4().hex[:14]}", int(time.time())
    await _deliver(pay, dispute(dp, charge, 5900, "under_review", "charge.dispute.created", now))
    assert await _state(pay, c.customer_id) == (0, 0, 10, -10)
    await _deliver(pay, dispute(dp, charge, 5900, "won", "charge.dispute.closed", now + 1))
    assert await _state(pay, c.customer_id) == (50, 0, 0, 50)
    await pay.invariants_hold(c.customer_id)
