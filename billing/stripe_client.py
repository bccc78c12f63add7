"""The Stripe client (official ``stripe`` SDK, async over httpx) and the plan ↔ Stripe Plan mapping.

``settings.stripe``: ``api_key``, ``api_base`` (real Stripe, or localstripe in dev and tests).
Every write carries an idempotency key built by :func:`idem` from business ids, so a retried
activity never creates a second customer, subscription or PaymentIntent on real Stripe.
(localstripe ignores ``Idempotency-Key``; our activities are also check-then-write where it matters.)

Subscriptions use Stripe **Plans** with our own ids (``stellar_nebula_monthly``): real Stripe
accepts a Plan id wherever a Price id is expected, and localstripe only knows Plans
(no Prices, no Checkout Sessions). ``is_localstripe`` switches off the parameters localstripe
rejects (``proration_behavior``); see ``activities/stripe_ops.py`` for how plan changes are then
invoiced.
"""

from __future__ import annotations

import stripe
import structlog

from billing.plans import PLANS
from core.settings import StripeSettings

log = structlog.get_logger(__name__)

PLAN_ID_PREFIX = "stellar_"
PLAN_ID_SUFFIX = "_monthly"


def make_stripe_client(settings: StripeSettings) -> stripe.StripeClient:
    """A ``StripeClient`` on ``settings.effective_api_base()`` with an async httpx transport.

    Use its ``*_async`` methods (``await client.v1.customers.create_async(...)``).
    """
    return stripe.StripeClient(
        settings.api_key.get_secret_value(),
        base_addresses={"api": settings.effective_api_base()},
        http_client=stripe.HTTPXClient(),
        max_network_retries=2,
    )


def idem(*parts: object) -> dict[str, str]:
    """Request options with an idempotency key ``stellar:<part>:<part>…`` (≤ 255 chars)."""
    key = "stellar:" + ":".join(str(p) for p in parts)
    return {"idempotency_key": key[:255]}


def stripe_plan_id(plan: str) -> str:
    """Stellar plan id → Stripe Plan id: ``nebula`` → ``stellar_nebula_monthly``."""
    return f"{PLAN_ID_PREFIX}{plan}{PLAN_ID_SUFFIX}"


def plan_from_stripe_id(stripe_id: str | None) -> str | None:
    """Stripe Plan/Price id → Stellar plan id, or None when it is not one of ours."""
    if not stripe_id or not stripe_id.startswith(PLAN_ID_PREFIX) or not stripe_id.endswith(PLAN_ID_SUFFIX):
        return None
    plan = stripe_id[len(PLAN_ID_PREFIX):-len(PLAN_ID_SUFFIX)]
    return plan if plan in PLANS else None


async def ensure_plans(client: stripe.StripeClient, currency: str) -> list[str]:
    """Create the monthly Stripe Plan of every Stellar plan that does not exist yet.

    Amounts and credits come from ``billing.plans.PLANS`` (docs/pricing.md §1, Stripe products:
    2900/5900/11900 cents a month). Returns the Stripe Plan ids. Raises ``stripe.StripeError``.
    """
    ids = []
    for plan in PLANS.values():
        pid = stripe_plan_id(plan.id)
        try:
            await client.v1.plans.retrieve_async(pid)
        except stripe.InvalidRequestError as exc:
            if exc.http_status != 404:
                raise
            await client.v1.plans.create_async(
                {
                    "id": pid,
                    "amount": plan.price_cents,
                    "currency": currency,
                    "interval": "month",
                    "product": {"name": f"Stellar {plan.name}"},
                    "metadata": {"stellar_plan": plan.id, "monthly_credits": str(plan.monthly_credits)},
                },
                idem("plan", pid, plan.price_cents),
            )
            log.info("stripe.plan_created", plan=plan.id, stripe_plan_id=pid, amount=plan.price_cents)
        ids.append(pid)
    return ids
