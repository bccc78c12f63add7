"""HTTP models of payments: credit packs, purchases and subscription commands (docs/payments.md,
docs/pricing.md §7). Units: money integer cents in ``currency`` (ISO 4217, lower case); credits
integers; datetimes timezone-aware.

A subscription command answers what its workflow update returns: those ``…Out`` models are the
Temporal ``…Result`` models of ``models.payments`` under their HTTP name, so the two never drift.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

from pydantic import BaseModel, Field

from billing.packs import Pack, currency
from models.payments import (
    CancelResult,
    ChangePlanResult,
    PaymentStatus,
    SubscribeResult,
    SubscriptionResult,
)

# --- credit packs (docs/pricing.md §7: packages 10/50/100/200) ----------------------------------


class PackOut(BaseModel):
    """One credit pack. ``total_credits`` = ``credits`` + ``bonus``; ``price_cents`` in ``currency``."""

    id: str
    credits: int
    bonus: int
    total_credits: int
    price_cents: int
    currency: str
    cents_per_credit: int = Field(description="price_cents ÷ total_credits, rounded down (display)")


class PackCatalogueOut(BaseModel):
    """Body of ``GET /api/credit-packs``."""

    packs: list[PackOut]

    @classmethod
    def of(cls, packs: Iterable[Pack]) -> PackCatalogueOut:
        """The catalogue of ``packs``, priced in the configured currency."""
        cur = currency()
        return cls(packs=[
            PackOut(id=p.id, credits=p.credits, bonus=p.bonus, total_credits=p.total_credits,
                    price_cents=p.price_cents, currency=cur, cents_per_credit=p.price_cents // p.total_credits)
            for p in packs
        ])


class PurchaseIn(BaseModel):
    """Body of ``POST /api/credit-packs/{pack}/purchase`` (optional).

    ``payment_method_id``: a saved card (``pm_…``) to confirm the PaymentIntent server-side;
    without it the client confirms with Stripe.js and the returned ``client_secret``.
    """

    payment_method_id: str | None = Field(default=None, max_length=255, pattern=r"^pm_[A-Za-z0-9_]+$")


class PaymentOut(BaseModel):
    """One pack purchase (docs/payments.md: pending → completed)."""

    id: int
    pack_id: str
    credits: int
    bonus_credits: int
    total_credits: int
    amount_cents: int
    currency: str
    status: PaymentStatus
    stripe_payment_intent_id: str | None = None
    created_at: datetime
    completed_at: datetime | None = None


class PurchaseOut(BaseModel):
    """Answer of a purchase: the pending payment and the PaymentIntent's ``client_secret``."""

    payment: PaymentOut
    client_secret: str
    payment_intent_status: str


class PaymentListOut(BaseModel):
    """Body of ``GET /api/payments``: the customer's purchases, newest first."""

    payments: list[PaymentOut]


# --- subscriptions (docs/payments.md) -----------------------------------------------------------


class SubscribeIn(BaseModel):
    """``POST /api/subscriptions/subscribe`` body (docs/payments.md)."""

    plan: str = Field(max_length=16, pattern=r"^\s*[A-Za-z]+\s*$", description="stardust | nebula | quasar")
    payment_method_id: str = Field(max_length=255, pattern=r"^pm_[A-Za-z0-9_]+$")


class ChangePlanIn(BaseModel):
    """``POST /api/subscriptions/change``: upgrades apply now, downgrades at period end."""

    plan: str = Field(max_length=16, pattern=r"^\s*[A-Za-z]+\s*$", description="stardust | nebula | quasar")


class SubscribeOut(SubscribeResult):
    """Answer of ``POST /api/subscriptions/subscribe``."""


class ChangePlanOut(ChangePlanResult):
    """Answer of ``POST /api/subscriptions/change``."""


class CancelOut(CancelResult):
    """Answer of ``POST /api/subscriptions/cancel``."""


class CurrentSubscriptionOut(BaseModel):
    """``GET /api/subscriptions/current``: the latest subscription, or null."""

    subscription: SubscriptionResult | None
