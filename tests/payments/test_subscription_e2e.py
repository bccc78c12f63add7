"""Subscriptions end to end: the official stripe SDK against localstripe, the API under uvicorn,
localstripe's signed webhooks, the SubscriptionWorkflow on the Temporal dev server, PostgreSQL.

localstripe does not advance a subscription's period (every invoice of a subscription carries
its first period) and does not renew by itself: a renewal here is what Stripe does at period end
— create the subscription's next invoice and pay it — done through the same API
(``POST /v1/invoices``, ``POST /v1/invoices/{id}/pay``). Period-based behaviour (the plan switching
at the end of a period after a downgrade, twelve distinct periods) is covered with signed Stripe
payloads in ``test_webhook_storm.py``.
"""

from __future__ import annotations

from datetime import datetime

import httpx

from tests.payments.conftest import CARD_ATTACH_DECLINED, PaymentHarness, eventually

THREE_DS_CARD = "4000002500003155"  # Stripe test card: every payment needs 3-D Secure


async def _subscribe(pay: PaymentHarness, plan: str = "nebula"):
    c = await pay.customer()
    pm = await pay.card()
    r = await pay.post("/api/subscriptions/subscribe", c.api_key, {"plan": plan, "payment_method_id": pm})
    assert r.status_code == 200, r.text
    return c, r.json()


async def _event_for(pay: PaymentHarness, event_type: str, object_id: str) -> str:
    """The id of the localstripe event of ``event_type`` about ``object_id``."""
    async def find():
        events = await pay.stripe.v1.events.list_async({"type": event_type, "limit": 100})
        return next((e.id for e in events.data if e.data.object["id"] == object_id), None)
    return await eventually(find, what=f"{event_type} for {object_id} in localstripe")


async def _processed(pay: PaymentHarness, event_id: str) -> None:
    """Wait until the webhook for ``event_id`` has been applied (its stripe_event row exists)."""
    import sqlalchemy as sa

    from models.db import StripeEvent

    async def check():
        async with pay.engine.connect() as conn:
            return (await conn.execute(sa.select(StripeEvent.__table__.c.id).where(
                StripeEvent.__table__.c.id == event_id))).first() is not None
    await eventually(check, what=f"event {event_id} processed")


async def _status(pay: PaymentHarness, key: str, status: str) -> dict:
    """The subscription row follows the facts just after their event rows commit: wait for it."""
    async def check():
        sub = await pay.subscription(key)
        return sub if sub and sub["status"] == status else None
    return await eventually(check, what=f"subscription status {status}")


async def _renew(pay: PaymentHarness, stripe_customer: str, sub_id: str):
    """What Stripe does at period end: the subscription's next invoice, charged to the default card."""
    inv = await pay.stripe.v1.invoices.create_async({"customer": stripe_customer, "subscription": sub_id})
    paid = await pay.stripe.v1.invoices.pay_async(inv.id)
    return paid


async def _stripe_ids(pay: PaymentHarness, sub: dict) -> tuple[str, str]:
    s = await pay.stripe.v1.subscriptions.retrieve_async(sub["stripe_subscription_id"])
    return s.customer, s.id


async def test_subscribe_nebula_grants_sixty_credits_once_with_the_period_from_stripe(pay: PaymentHarness):
    c, body = await _subscribe(pay, "nebula")
    sub = body["subscription"]
    assert body["success"] is True and body["credits_added"] == 60
    assert (sub["plan"], sub["status"], sub["monthly_credits"]) == ("nebula", "active", 60)
    stripe_sub = await pay.stripe.v1.subscriptions.retrieve_async(sub["stripe_subscription_id"])
    assert datetime.fromisoformat(sub["current_period_end"]).timestamp() == stripe_sub.current_period_end
    assert datetime.fromisoformat(sub["current_period_start"]).timestamp() == stripe_sub.current_period_start

    # localstripe POSTs invoice.payment_succeeded for the same invoice about a second later.
    grants = await pay.grants(c.customer_id)
    assert [(g.amount, g.idempotency_key) for g in grants] == [(60, f"invoice:{stripe_sub.latest_invoice}")]
    await _processed(pay, await _event_for(pay, "invoice.payment_succeeded", stripe_sub.latest_invoice))
    await _processed(pay, await _event_for(pay, "customer.subscription.created", stripe_sub.id))
    assert len(await pay.grants(c.customer_id)) == 1
    assert (await pay.ledger.balances(c.customer_id)).subscription == 60
    assert (await pay.subscription(c.api_key))["status"] == "active"
    await pay.invariants_hold(c.customer_id)


async def test_renewal_grants_once_per_paid_invoice(pay: PaymentHarness):
    c, body = await _subscribe(pay, "stardust")
    cus, sub_id = await _stripe_ids(pay, body["subscription"])
    for _ in range(2):
        inv = await _renew(pay, cus, sub_id)
        assert inv.status == "paid"
        await _processed(pay, await _event_for(pay, "invoice.payment_succeeded", inv.id))
    grants = await pay.grants(c.customer_id)
    assert [g.amount for g in grants] == [20, 20, 20]
    assert len({g.reference_id for g in grants}) == 3
    assert (await pay.ledger.balances(c.customer_id)).subscription == 60
    await pay.invariants_hold(c.customer_id)


async def test_upgrade_charges_now_and_adds_the_credit_difference(pay: PaymentHarness):
    c, body = await _subscribe(pay, "nebula")
    r = await pay.post("/api/subscriptions/change", c.api_key, {"plan": "quasar"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["effective"], out["credits_added"], out["subscription"]["plan"]) == ("now", 90, "quasar")
    cus, sub_id = await _stripe_ids(pay, out["subscription"])
    stripe_sub = await pay.stripe.v1.subscriptions.retrieve_async(sub_id)
    assert stripe_sub["items"].data[0].plan.id == "stellar_quasar_monthly"
    upgrade_invoice = await pay.stripe.v1.invoices.retrieve_async(stripe_sub.latest_invoice)
    assert upgrade_invoice.status == "paid" and upgrade_invoice.amount_paid == 11900 - 5900
    await _processed(pay, await _event_for(pay, "invoice.payment_succeeded", upgrade_invoice.id))
    assert [g.amount for g in await pay.grants(c.customer_id)] == [60, 90]
    assert (await pay.ledger.balances(c.customer_id)).subscription == 150

    # The next renewal bills Quasar and grants its full allowance.
    inv = await _renew(pay, cus, sub_id)
    assert inv.amount_paid == 11900
    await _processed(pay, await _event_for(pay, "invoice.payment_succeeded", inv.id))
    assert [g.amount for g in await pay.grants(c.customer_id)] == [60, 90, 150]
    await pay.invariants_hold(c.customer_id)


async def test_downgrade_waits_for_the_period_end(pay: PaymentHarness):
    c, body = await _subscribe(pay, "quasar")
    r = await pay.post("/api/subscriptions/change", c.api_key, {"plan": "nebula"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["effective"] == "period_end" and out["credits_added"] == 0
    assert (out["subscription"]["plan"], out["subscription"]["pending_plan"]) == ("quasar", "nebula")
    cus, sub_id = await _stripe_ids(pay, out["subscription"])
    stripe_sub = await pay.stripe.v1.subscriptions.retrieve_async(sub_id)
    assert stripe_sub["items"].data[0].plan.id == "stellar_nebula_monthly"
    assert (await pay.stripe.v1.invoice_items.list_async({"customer": cus})).data == []  # no proration
    assert [g.amount for g in await pay.grants(c.customer_id)] == [150]

    # The renewal at period end bills and grants Nebula.
    inv = await _renew(pay, cus, sub_id)
    assert inv.amount_paid == 5900
    await _processed(pay, await _event_for(pay, "invoice.payment_succeeded", inv.id))
    assert [g.amount for g in await pay.grants(c.customer_id)] == [150, 60]

    # A second downgrade request for the same plan is refused; going back cancels it.
    c2, body2 = await _subscribe(pay, "nebula")
    assert (await pay.post("/api/subscriptions/change", c2.api_key, {"plan": "stardust"})).status_code == 200
    again = await pay.post("/api/subscriptions/change", c2.api_key, {"plan": "stardust"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "same_plan"
    back = await pay.post("/api/subscriptions/change", c2.api_key, {"plan": "nebula"})
    assert back.status_code == 200 and back.json()["subscription"]["pending_plan"] is None
    _, sub2 = await _stripe_ids(pay, body2["subscription"])
    assert (await pay.stripe.v1.subscriptions.retrieve_async(sub2))["items"].data[0].plan.id == "stellar_nebula_monthly"


async def test_failed_renewal_makes_the_plan_past_due_and_paying_restores_it(pay: PaymentHarness):
    """localstripe emits ``invoice.payment_failed`` only for failures that happen after the pay call
    returns; a renewal whose 3-D Secure authentication fails is one (Stripe sends the same event
    for a declined renewal, covered by signed payloads in the storm test)."""
    c, body = await _subscribe(pay, "nebula")
    cus, sub_id = await _stripe_ids(pay, body["subscription"])
    needs_3ds = await pay.stripe.v1.payment_methods.attach_async(await pay.card(THREE_DS_CARD), {"customer": cus})
    await pay.stripe.v1.customers.update_async(cus, {"invoice_settings": {"default_payment_method": needs_3ds.id}})
    inv = await _renew(pay, cus, sub_id)
    pi = await pay.stripe.v1.payment_intents.retrieve_async(inv.payment_intent)
    assert pi.status == "requires_action"
    async with httpx.AsyncClient() as h:  # the customer fails (or never does) the 3-D Secure step
        r = await h.post(f"{pay.localstripe.url}/v1/payment_intents/{pi.id}/_authenticate",
                         data={"client_secret": pi.client_secret, "success": "false"},
                         headers={"Authorization": f"Bearer {pay.settings.stripe.api_key.get_secret_value()}"})
        assert r.status_code == 200, r.text
    await _processed(pay, await _event_for(pay, "invoice.payment_failed", inv.id))
    await _status(pay, c.api_key, "past_due")
    assert [g.amount for g in await pay.grants(c.customer_id)] == [60]

    # The customer adds a working card; Stripe's retry (here: paying the open invoice) succeeds.
    good = await pay.stripe.v1.payment_methods.attach_async(await pay.card(), {"customer": cus})
    await pay.stripe.v1.customers.update_async(cus, {"invoice_settings": {"default_payment_method": good.id}})
    paid = await pay.stripe.v1.invoices.pay_async(inv.id)
    assert paid.status == "paid"
    await _processed(pay, await _event_for(pay, "invoice.payment_succeeded", inv.id))
    await _status(pay, c.api_key, "active")
    assert [g.amount for g in await pay.grants(c.customer_id)] == [60, 60]
    await pay.invariants_hold(c.customer_id)


async def test_declined_card_leaves_no_subscription_and_no_credits(pay: PaymentHarness):
    c = await pay.customer()
    pm = await pay.card(CARD_ATTACH_DECLINED)
    r = await pay.post("/api/subscriptions/subscribe", c.api_key, {"plan": "nebula", "payment_method_id": pm})
    assert r.status_code == 402, r.text
    assert r.json()["error"]["code"] == "card_declined"
    assert await pay.subscription(c.api_key) is None
    assert await pay.entries(c.customer_id) == []

    unknown = await pay.post("/api/subscriptions/subscribe", c.api_key, {"plan": "galaxy", "payment_method_id": pm})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_plan"
    nothing = await pay.post("/api/subscriptions/cancel", c.api_key)
    assert nothing.status_code == 409 and nothing.json()["error"]["code"] == "no_active_subscription"


async def test_subscribing_twice_is_refused(pay: PaymentHarness):
    c, _ = await _subscribe(pay, "stardust")
    r = await pay.post("/api/subscriptions/subscribe", c.api_key, {"plan": "quasar", "payment_method_id": await pay.card()})
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_subscribed"
    assert [g.amount for g in await pay.grants(c.customer_id)] == [20]


async def test_stripe_test_card_id_subscribes_like_a_browser_card(pay: PaymentHarness):
    """``pm_card_visa`` is Stripe's (and localstripe's) test card: what the demo uses."""
    c = await pay.customer()
    r = await pay.post("/api/subscriptions/subscribe", c.api_key, {"plan": "nebula", "payment_method_id": "pm_card_visa"})
    assert r.status_code == 200, r.text
    assert r.json()["credits_added"] == 60
    tx = (await pay.get("/api/credits/transactions", c.api_key)).json()["items"]
    assert [(t["kind"], t["amount"], t["reference"]["type"]) for t in tx] == [("grant", 60, "invoice")]
