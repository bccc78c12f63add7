"""A subscription made on Stripe's Checkout page (subscription mode) reaches Stellar only through
its webhooks, never through the ``subscribe`` update: it must then behave as one made by that
update — the same grant, and change plan and cancel working on it — also for a customer whose
earlier subscription ended. localstripe has no Checkout: what Stripe does when the customer pays
the session (save the card as the customer's default, create the subscription with the session's
``subscription_data.metadata``) is done here through the same API; localstripe's signed webhooks,
the real worker and ``SubscriptionWorkflow`` do the rest. The session itself:
``tests/web/test_plan_checkout.py``.
"""

from __future__ import annotations

from activities.stripe_ops import StripeActivities
from activities.subscription_store import SubscriptionStore
from billing.plans import PLANS
from billing.stripe_client import ensure_plans, stripe_plan_id
from tests.payments.conftest import PaymentHarness, eventually
from tests.payments.test_subscription_e2e import _event_for, _processed, _status


async def _stripe_customer(pay: PaymentHarness, customer_id: int) -> str:
    """The Stripe customer, made and stored as ``api.services.checkout.checkout_subscription`` does."""
    store = SubscriptionStore(pay.engine)
    made = await StripeActivities(pay.stripe, pay.settings.stripe).ensure_customer(await store.load_customer(customer_id))
    await store.set_stripe_customer(made)
    return made.stripe_customer_id


async def _paid_on_checkout(pay: PaymentHarness, customer_id: int, stripe_customer: str, plan: str) -> str:
    """What Stripe does once the customer paid a subscription-mode Checkout Session; the subscription id."""
    pm = await pay.card()
    await pay.stripe.v1.payment_methods.attach_async(pm, {"customer": stripe_customer})
    await pay.stripe.v1.customers.update_async(stripe_customer, {"invoice_settings": {"default_payment_method": pm}})
    await ensure_plans(pay.stripe, pay.settings.stripe.currency)
    sub = await pay.stripe.v1.subscriptions.create_async({
        "customer": stripe_customer, "items": [{"plan": stripe_plan_id(plan)}],
        "metadata": {"stellar_customer_id": str(customer_id), "stellar_plan": plan}})
    return sub.id


async def _granted(pay: PaymentHarness, customer_id: int, amounts: list[int]) -> None:
    async def check():
        return [g.amount for g in await pay.grants(customer_id)] == amounts or None
    await eventually(check, what=f"grants {amounts}")


async def test_a_checkout_subscription_is_granted_once_and_changes_plan_and_cancels(pay: PaymentHarness):
    c = await pay.customer()
    cus = await _stripe_customer(pay, c.customer_id)
    sub_id = await _paid_on_checkout(pay, c.customer_id, cus, "nebula")
    first_invoice = (await pay.stripe.v1.subscriptions.retrieve_async(sub_id)).latest_invoice
    await _processed(pay, await _event_for(pay, "invoice.payment_succeeded", first_invoice))
    sub = await _status(pay, c.api_key, "active")
    assert (sub["plan"], sub["stripe_subscription_id"]) == ("nebula", sub_id)
    nebula, quasar = PLANS["nebula"].monthly_credits, PLANS["quasar"].monthly_credits
    await _granted(pay, c.customer_id, [nebula])
    assert [g.idempotency_key for g in await pay.grants(c.customer_id)] == [f"invoice:{first_invoice}"]
    again = await pay.post("/api/subscriptions/subscribe", c.api_key, {"plan": "quasar", "payment_method_id": await pay.card()})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_subscribed"

    # Change plan: the workflow learnt the subscription from the webhooks alone.
    r = await pay.post("/api/subscriptions/change", c.api_key, {"plan": "quasar"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["effective"], out["credits_added"], out["subscription"]["plan"]) == ("now", quasar - nebula, "quasar")
    assert (await pay.stripe.v1.subscriptions.retrieve_async(sub_id))["items"].data[0].plan.id == "stellar_quasar_monthly"
    await _granted(pay, c.customer_id, [nebula, quasar - nebula])

    # Cancel at the period's end, then Stripe ends it: the subscription credits expire.
    r = await pay.post("/api/subscriptions/cancel", c.api_key)
    assert r.status_code == 200 and r.json()["subscription"]["cancel_at_period_end"] is True, r.text
    assert (await pay.stripe.v1.subscriptions.retrieve_async(sub_id)).cancel_at_period_end is True
    await pay.stripe.v1.subscriptions.cancel_async(sub_id)
    await _processed(pay, await _event_for(pay, "customer.subscription.deleted", sub_id))
    await _status(pay, c.api_key, "cancelled")
    assert (await pay.ledger.balances(c.customer_id)).subscription == 0

    # Back through Checkout later: the new subscription becomes the current one, granted once.
    new_id = await _paid_on_checkout(pay, c.customer_id, cus, "stardust")
    new_invoice = (await pay.stripe.v1.subscriptions.retrieve_async(new_id)).latest_invoice
    await _processed(pay, await _event_for(pay, "invoice.payment_succeeded", new_invoice))
    sub = await _status(pay, c.api_key, "active")
    assert (sub["plan"], sub["stripe_subscription_id"]) == ("stardust", new_id)
    await _granted(pay, c.customer_id, [nebula, quasar - nebula, PLANS["stardust"].monthly_credits])
    assert (await pay.ledger.balances(c.customer_id)).subscription == PLANS["stardust"].monthly_credits
    r = await pay.post("/api/subscriptions/cancel", c.api_key)
    assert r.status_code == 200 and r.json()["subscription"]["stripe_subscription_id"] == new_id, r.text
    await pay.invariants_hold(c.customer_id)
