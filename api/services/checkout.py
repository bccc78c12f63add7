"""Stripe Checkout (production's payment page; docs/payments.md): buying a credit pack, and
subscribing to a plan.

A pending payment row is written first (``api.services.payments.create_pending_payment``), then a
Checkout Session in ``payment`` mode whose session and PaymentIntent both carry
``stellar_payment_id`` / ``stellar_customer_id`` metadata. The customer pays on Stripe's page; the
signed ``checkout.session.completed`` (and the PaymentIntent's ``payment_intent.succeeded``) grant
the pack through the existing webhook path, under the one ledger key ``payment:<id>``.

A plan: the customer's Stripe customer first (made once, as the ``subscribe`` update does), then a
Checkout Session in ``subscription`` mode for the plan's Stripe Plan. No workflow update runs: the
subscription's own webhooks (``customer.subscription.*``, ``invoice.paid``) reach the customer's
``SubscriptionWorkflow`` like every Stripe fact and grant under ``invoice:<id>``.
"""

from __future__ import annotations

import stripe
import structlog
from temporalio.exceptions import ApplicationError

from activities.stripe_ops import StripeActivities
from activities.subscription_store import SubscriptionStore
from api.deps import Resources
from api.errors import STATUS_BY_CODE
from api.services.payments import PaymentFailed, create_pending_payment, current_subscription
from billing.plans import PLANS
from billing.stripe_client import ensure_plans, idem, make_stripe_client, stripe_plan_id
from billing.webhooks import CUSTOMER_ID_METADATA, PAYMENT_ID_METADATA, PLAN_METADATA
from models.temporal_contract import ERR_ALREADY_SUBSCRIBED, ERR_UNKNOWN_PLAN

log = structlog.get_logger(__name__)


async def checkout_pack(res: Resources, customer_id: int, email: str, pack_id: str, *, success_url: str,
                        cancel_url: str) -> str:
    """Create the pending payment and its Checkout Session; returns the session's URL (Stripe's
    payment page). ``success_url`` may hold ``{PAYMENT_ID}``, replaced by the payment id.
    Raises NotFound (``unknown_pack``), PaymentFailed (502 ``payment_unavailable``: Stripe refused)."""
    payment_id, pack, cur, stripe_customer = await create_pending_payment(res, customer_id, pack_id)
    metadata = {PAYMENT_ID_METADATA: str(payment_id), CUSTOMER_ID_METADATA: str(customer_id)}
    params: dict = {
        "mode": "payment",
        "line_items": [{"quantity": 1, "price_data": {
            "currency": cur, "unit_amount": pack.price_cents,
            "product_data": {"name": f"Stellar — {pack.total_credits} credits",
                             "description": f"{pack.credits} + {pack.bonus} bonus credits; pack credits never expire"},
        }}],
        "client_reference_id": str(customer_id),
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "success_url": success_url.replace("{PAYMENT_ID}", str(payment_id)),
        "cancel_url": cancel_url,
    }
    if stripe_customer:
        params["customer"] = stripe_customer
    else:
        params["customer_email"] = email
    client = make_stripe_client(res.settings.stripe)
    try:
        session = await client.v1.checkout.sessions.create_async(params, idem("checkout", "payment", payment_id))
    except stripe.StripeError as exc:
        log.warning("checkout.refused", payment_id=payment_id, error=str(exc))
        raise PaymentFailed(f"Stripe refused the checkout: {getattr(exc, 'user_message', None) or exc}",
                            code="payment_unavailable", status_code=502) from None
    log.info("checkout.created", payment_id=payment_id, session=session.id, customer_id=customer_id)
    if not session.url:
        raise PaymentFailed("Stripe answered a Checkout Session without a URL", code="payment_unavailable",
                            status_code=502)
    return session.url


async def checkout_subscription(res: Resources, customer_id: int, plan: str, *, success_url: str,
                                cancel_url: str) -> str:
    """Create a Checkout Session in ``subscription`` mode for ``plan``; returns its URL (Stripe's
    payment page). The Stripe customer is made first (``StripeActivities.ensure_customer``, the
    subscribe update's own step) so the webhook's subscription and invoice events resolve to our
    customer; the subscription carries the same metadata as one made by the subscribe update.
    Idempotency key ``checkout:subscription:<customer>:<plan>:<latest subscription row or 0>``: a
    second click before paying gets the same session back. docs/payments.md "Stripe Checkout".
    Raises PaymentFailed (422 ``unknown_plan``, 409 ``already_subscribed``, 502 ``payment_unavailable``)."""
    if plan not in PLANS:
        raise PaymentFailed(f"unknown plan {plan!r}; expected {', '.join(PLANS)}", code=ERR_UNKNOWN_PLAN,
                            status_code=STATUS_BY_CODE[ERR_UNKNOWN_PLAN])
    current = await current_subscription(res, customer_id)
    if current is not None and current.status in ("active", "past_due"):
        raise PaymentFailed(f"already subscribed to {current.plan}; change plan instead", code=ERR_ALREADY_SUBSCRIBED,
                            status_code=STATUS_BY_CODE[ERR_ALREADY_SUBSCRIBED])
    client = make_stripe_client(res.settings.stripe)
    store = SubscriptionStore(res.engine)
    try:
        await ensure_plans(client, res.settings.stripe.currency)
        customer = await store.load_customer(customer_id)
        if not customer.stripe_customer_id:
            made = await StripeActivities(client, res.settings.stripe).ensure_customer(customer)
            await store.set_stripe_customer(made)
            customer = await store.load_customer(customer_id)  # first one wins
        metadata = {CUSTOMER_ID_METADATA: str(customer_id), PLAN_METADATA: plan}
        params: dict = {
            "mode": "subscription",
            "customer": customer.stripe_customer_id,
            "line_items": [{"price": stripe_plan_id(plan), "quantity": 1}],
            "client_reference_id": str(customer_id),
            "metadata": metadata,
            "subscription_data": {"metadata": metadata},
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        key = idem("checkout", "subscription", customer_id, plan, current.id if current else 0)
        session = await client.v1.checkout.sessions.create_async(params, key)
    except (stripe.StripeError, ApplicationError) as exc:
        log.warning("checkout.refused", customer_id=customer_id, plan=plan, error=str(exc))
        message = getattr(exc, "user_message", None) or getattr(exc, "message", None) or str(exc)
        raise PaymentFailed(f"Stripe refused the checkout: {message}", code="payment_unavailable",
                            status_code=502) from None
    log.info("checkout.created", customer_id=customer_id, plan=plan, session=session.id)
    if not session.url:
        raise PaymentFailed("Stripe answered a Checkout Session without a URL", code="payment_unavailable",
                            status_code=502)
    return session.url
