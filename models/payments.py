"""Payment models that cross the Temporal boundary (pydantic v2); their HTTP views are in
api/schemas/payments.py.

Units: money is integer cents (``amount_cents``, ``price_cents``) in ``currency`` (ISO 4217,
lower case); credits are integers; Stripe times are epoch seconds (``*_ts``) and API times are
timezone-aware datetimes.

Sources: docs/payments.md (API shapes, subscription and purchase life cycles) and docs/pricing.md §7
(credit packs, subscription credits).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

#: ``Subscription.status`` values (models/db.py). What they mean for the rest of Stellar:
#:
#: * ``incomplete`` — created in Stripe, first invoice not paid (card needs action or failed):
#:   no plan rights yet.
#: * ``active`` — the current period is paid: plan rules apply. With ``cancel_at_period_end`` the
#:   plan stays fully usable until ``current_period_end`` (docs/pricing.md §7: credits kept until that date).
#: * ``past_due`` — a renewal invoice failed and is not paid yet: **new orders are refused at plan
#:   rules** (``billing`` treats the customer as having no plan); running orders continue, credits
#:   stay. Paying the invoice (Stripe retry or a new card) brings it back to ``active``.
#: * ``cancelled`` — the Stripe subscription ended (``customer.subscription.deleted``): remaining
#:   subscription credits expired, pack credits stay. Terminal.
#: * ``expired`` — Stripe gave up on the first payment (``incomplete_expired``). Terminal.
SubscriptionStatus = Literal["incomplete", "active", "past_due", "cancelled", "expired"]
#: Statuses under which the plan's rules (priority, moon-down, …) apply to new orders.
PLAN_USABLE_STATUSES: frozenset[str] = frozenset({"active"})

PaymentStatus = Literal["pending", "completed", "cancelled", "failed"]


# --- subscriptions (docs/payments.md) -----------------------------------------------------------


class SubscriptionResult(BaseModel):
    """A subscription as the workflow and the API show it (docs/payments.md: plan, status, period, cancel and pending plan)."""

    id: int | None = None
    plan: str
    status: SubscriptionStatus
    monthly_credits: int
    price_cents: int
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    pending_plan: str | None = None
    stripe_subscription_id: str | None = None


class SubscribeResult(BaseModel):
    """Answer: ``{"success", "subscription", "credits_added"}`` (docs/payments.md).

    ``credits_added``: credits granted for the first paid invoice (0 while it is unpaid; they are
    then granted when Stripe reports it paid, once).
    """

    success: bool = True
    subscription: SubscriptionResult
    credits_added: int


class ChangePlanResult(BaseModel):
    """``effective``: ``now`` (upgrade: prorated invoice paid, the credit difference added) or
    ``period_end`` (downgrade: the current plan stays until ``current_period_end``)."""

    success: bool = True
    subscription: SubscriptionResult
    effective: Literal["now", "period_end"]
    credits_added: int = 0
    message: str


class CancelResult(BaseModel):
    """Answer: ``{"success", "message"}`` plus the subscription (docs/payments.md)."""

    success: bool = True
    message: str
    subscription: SubscriptionResult


# --- Stripe facts (webhook events reduced to what Stellar acts on) ------------------------------

FactKind = Literal[
    "invoice_paid",
    "invoice_payment_failed",
    "subscription_updated",
    "subscription_deleted",
    "payment_intent_succeeded",
    "payment_intent_failed",
    "payment_intent_canceled",
    "charge_refunded",
    "charge_dispute",
]


class InvoiceLine(BaseModel):
    """One invoice line. ``plan``: Stellar plan id (None when the line is not one of our plans);
    ``amount``: cents, negative for a credit (unused time); ``period_*_ts``: epoch seconds."""

    plan: str | None = None
    amount: int = 0
    proration: bool = False
    period_start_ts: int | None = None
    period_end_ts: int | None = None


class StripeFact(BaseModel):
    """A Stripe event reduced to facts. ``event_id`` None = read from the API, not from an event
    (subscribe path, reconciliation): it then records no ``stripe_event`` row.

    ``created_ts``: the event's (or object's) creation time, epoch seconds — the order of
    subscription snapshots. Invoice facts carry ``invoice_id``, ``lines``, ``paid_ts``; subscription
    facts carry ``subscription_status``, ``cancel_at_period_end``, ``plan``, period; payment-intent
    facts carry ``payment_intent_id``, ``payment_id`` (our ``payment.id`` from metadata), amount.
    Reversal facts carry ``charge_id``, the charge's ``amount_cents``, ``payment_intent_id`` and
    ``invoice_id`` when known; ``charge_refunded`` the cumulative ``refunded_cents``;
    ``charge_dispute`` the ``dispute_id``, ``dispute_status`` (Stripe's) and ``dispute_amount_cents``.
    """

    kind: FactKind
    event_id: str | None = None
    event_type: str = ""
    created_ts: int = 0
    stripe_customer_id: str | None = None
    customer_id: int | None = None
    stripe_subscription_id: str | None = None
    invoice_id: str | None = None
    billing_reason: str | None = None
    lines: list[InvoiceLine] = Field(default_factory=list)
    subscription_status: str | None = None
    cancel_at_period_end: bool | None = None
    plan: str | None = None
    period_start_ts: int | None = None
    period_end_ts: int | None = None
    payment_intent_id: str | None = None
    payment_id: int | None = None
    amount_cents: int | None = None
    currency: str | None = None
    charge_id: str | None = None
    refunded_cents: int | None = None
    dispute_id: str | None = None
    dispute_status: str | None = None
    dispute_amount_cents: int | None = None


class FactOutcome(BaseModel):
    """What applying one fact did. ``duplicate``: its event id was already processed (nothing moved).
    ``credits``: credits granted (+) or expired (−) by this fact; ``error``: it could not apply
    (rolled back, left for reconciliation)."""

    event_id: str | None = None
    kind: FactKind
    duplicate: bool = False
    credits: int = 0
    note: str = ""
    error: str | None = None


class FactBatch(BaseModel):
    """Input of the apply activity: facts, each with the effect the owning workflow decided.

    ``expire_subscription``: parallel to ``facts``; True = this ``subscription_deleted`` ends the
    customer's current subscription, so its subscription credits expire."""

    facts: list[StripeFact]
    expire_subscription: list[bool] = Field(default_factory=list)


class FactBatchResult(BaseModel):
    outcomes: list[FactOutcome]
