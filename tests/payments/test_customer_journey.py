"""The payments journey end to end: a customer subscribes, gets credits once per paid period, buys a pack,
orders with those credits, cancels, and sees every movement in ``GET /api/credits/transactions``;
the ledger invariant holds throughout. Stripe is localstripe; its webhooks are real, signed HTTP.

The order is the ledger's two-phase hold and settlement the order workflow performs (hold at
creation, capture what was observed, release the rest); the order workflow itself needs the
Voyager simulator and is tested in tests/workflows.
"""

from __future__ import annotations

import random

from temporalio.worker import Replayer

from worker import PAYMENT_WORKFLOWS
from billing.ledger import Ledger
from core.temporal import DATA_CONVERTER
from tests.payments.conftest import PaymentHarness, eventually
from tests.payments.test_subscription_e2e import _event_for, _processed, _renew, _status, _stripe_ids


async def test_subscribe_buy_order_cancel_and_see_every_movement(pay: PaymentHarness):
    c = await pay.customer()
    key = c.api_key
    r = await pay.post("/api/subscriptions/subscribe", key, {"plan": "nebula", "payment_method_id": await pay.card()})
    assert r.status_code == 200 and r.json()["credits_added"] == 60, r.text
    cus, sub_id = await _stripe_ids(pay, r.json()["subscription"])
    first_invoice = (await pay.stripe.v1.subscriptions.retrieve_async(sub_id)).latest_invoice
    await _processed(pay, await _event_for(pay, "invoice.payment_succeeded", first_invoice))

    # A pack, paid in the browser.
    r = await pay.post("/api/credit-packs/50/purchase", key)
    assert r.status_code == 201, r.text
    pi_id = r.json()["payment"]["stripe_payment_intent_id"]
    await pay.stripe.v1.payment_intents.update_async(pi_id, {"payment_method": await pay.card()})
    await pay.stripe.v1.payment_intents.confirm_async(pi_id)

    async def pack_credited():
        return (await pay.ledger.balances(c.customer_id)).pack == 55
    await eventually(pack_credited, what="pack credits")
    credits = (await pay.get("/api/credits", key)).json()
    assert (credits["available"], credits["buckets"], credits["plan"]) == (
        115, {"subscription": 60, "pack": 55, "debt": 0}, "nebula")

    # An order spends them: 70 held (60 subscription first, then 10 pack), 50 captured, 20 released.
    ledger = Ledger(pay.engine)
    order_id = random.randint(10**9, 2 * 10**9)
    await ledger.hold(c.customer_id, order_id, 70, actor=f"customer:{c.email}")
    await ledger.capture(order_id, 50, reason="observed 71% of the requested integration")
    await pay.invariants_hold(c.customer_id)

    # Cancel: the plan and its credits stay until the period ends.
    r = await pay.post("/api/subscriptions/cancel", key)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and "keep your credits" in body["message"]
    assert body["subscription"]["cancel_at_period_end"] is True and body["subscription"]["status"] == "active"
    assert (await pay.stripe.v1.subscriptions.retrieve_async(sub_id)).cancel_at_period_end is True
    again = await pay.post("/api/subscriptions/cancel", key)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_cancelled"
    assert (await pay.ledger.balances(c.customer_id)).available == 65

    # The period ends: Stripe deletes the subscription and says so.
    await pay.stripe.v1.subscriptions.cancel_async(sub_id)
    await _processed(pay, await _event_for(pay, "customer.subscription.deleted", sub_id))
    await _status(pay, key, "cancelled")
    balances = await pay.ledger.balances(c.customer_id)
    assert (balances.subscription, balances.pack) == (0, 55)  # subscription credits expired, pack kept
    credits = (await pay.get("/api/credits", key)).json()
    assert credits["plan"] == "stardust" and credits["subscription_status"] == "cancelled"

    tx = (await pay.get("/api/credits/transactions?limit=200", key)).json()
    lines = [(t["kind"], t["bucket"], t["amount"], t["reference"]["type"]) for t in reversed(tx["items"])]
    assert lines == [
        ("grant", "subscription", 60, "invoice"),
        ("grant", "pack", 55, "payment"),
        ("hold", "subscription", -60, "order"),
        ("hold", "pack", -10, "order"),
        ("capture", "subscription", 0, "order"),
        ("release", "subscription", 10, "order"),
        ("release", "pack", 10, "order"),
        ("expire", "subscription", -10, "subscription"),
    ]
    assert tx["items"][0]["balance_after"] == 55
    await pay.invariants_hold(c.customer_id)

    # Late and repeated events after the end change nothing (the ended subscription's invoice again).
    events = await pay.stripe.v1.events.list_async({"type": "invoice.payment_succeeded", "limit": 100})
    late = next(e for e in events.data if e.data.object["id"] == first_invoice)
    assert (await pay.deliver(late.to_dict())).status_code == 200
    assert (await pay.ledger.balances(c.customer_id)).subscription == 0
    assert len(await pay.grants(c.customer_id)) == 1

    # The workflows' histories replay deterministically with today's code.
    replayer = Replayer(workflows=PAYMENT_WORKFLOWS, data_converter=DATA_CONVERTER)
    payment_id = (await pay.get("/api/payments", key)).json()["payments"][0]["id"]
    for wid in (f"subscription-{c.customer_id}", f"payment-{payment_id}"):
        await replayer.replay_workflow(await pay.temporal.get_workflow_handle(wid).fetch_history())


async def test_resubscribing_after_the_end_starts_a_new_subscription(pay: PaymentHarness):
    c = await pay.customer()
    r = await pay.post("/api/subscriptions/subscribe", c.api_key, {"plan": "stardust", "payment_method_id": await pay.card()})
    assert r.status_code == 200, r.text
    _, old = await _stripe_ids(pay, r.json()["subscription"])
    await pay.stripe.v1.subscriptions.cancel_async(old)
    await _processed(pay, await _event_for(pay, "customer.subscription.deleted", old))
    await _status(pay, c.api_key, "cancelled")

    r = await pay.post("/api/subscriptions/subscribe", c.api_key, {"plan": "nebula", "payment_method_id": await pay.card()})
    assert r.status_code == 200, r.text
    new = r.json()["subscription"]
    assert new["stripe_subscription_id"] != old and (new["plan"], new["status"]) == ("nebula", "active")
    assert (await pay.ledger.balances(c.customer_id)).subscription == 60
    cus, sub_id = await _stripe_ids(pay, new)
    inv = await _renew(pay, cus, sub_id)
    await _processed(pay, await _event_for(pay, "invoice.payment_succeeded", inv.id))
    assert (await pay.ledger.balances(c.customer_id)).subscription == 120
    await pay.invariants_hold(c.customer_id)
