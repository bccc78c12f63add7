"""Buying a credit pack through Stripe Checkout (production's payment page; docs/payments.md).

A pending payment row is written first (``api.services.payments.create_pending_payment``), then a
Checkout Session in ``payment`` mode whose session and PaymentIntent both carry
``stellar_payment_id`` / ``stellar_customer_id`` metadata. The customer pays on Stripe's page; the
signed ``checkout.session.completed`` (and the PaymentIntent's ``payment_intent.succeeded``) grant
the pack through the existing webhook path, under the one ledger key ``payment:<id>``.
"""

from __future__ import annotations

import stripe
import structlog

from api.deps import Resources
from api.services.payments import PaymentFailed, create_pending_payment
from billing.stripe_client import idem, make_stripe_client
from billing.webhooks import CUSTOMER_ID_METADATA, PAYMENT_ID_METADATA

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
