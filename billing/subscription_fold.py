"""The subscription state as a fold of Stripe facts: pure rules, no I/O, no Temporal.

``SubscriptionWorkflow`` calls these with the plan table it was given (its input, refreshed by an
activity at each continue-as-new), so what it decides on replay never depends on the deployed
``billing.plans.PLANS``. The fold gives the same state whatever order, and however many times, the
facts arrive (``models.payment_workflows.SubscriptionState``; docs/payments.md).
"""

from __future__ import annotations

from typing import Mapping

from billing.allowance import PlanCredits, invoice_allowance, invoice_plan
from billing.plans import PLANS
from models.payment_workflows import SubscriptionState
from models.payments import StripeFact

#: How many paid invoice ids the state keeps (a few years of monthly invoices).
MAX_PAID_INVOICES = 60


def plan_credits(plan: str | None, plans: Mapping[str, PlanCredits] = PLANS) -> int:
    """Monthly credits of ``plan`` (0 for ``None`` or a plan not in ``plans``)."""
    return plans[plan].monthly_credits if plan in plans else 0  # type: ignore[index]


def is_current(s: SubscriptionState, sub: str | None) -> bool:
    """``sub`` is the customer's current subscription (or the first one this state hears of)."""
    if not sub:
        return False
    if s.stripe_subscription_id is None:
        return sub not in s.ended_subscriptions
    return sub == s.stripe_subscription_id


#: Facts that tell of a subscription's life (a Checkout-made one is adopted on the first of them).
_ADOPTING_KINDS = ("subscription_updated", "invoice_paid", "invoice_payment_failed")


def adopts(s: SubscriptionState, f: StripeFact) -> bool:
    """``f`` tells of a new subscription made outside the ``subscribe`` update (Stripe Checkout)
    after the current one is over (ended, or its first payment expired): it becomes current."""
    sub = f.stripe_subscription_id
    over = s.ended or s.stripe_status == "incomplete_expired"
    return (bool(sub) and s.stripe_subscription_id is not None and over and sub != s.stripe_subscription_id
            and sub not in s.ended_subscriptions and f.kind in _ADOPTING_KINDS)


def _adopt(s: SubscriptionState, sub: str) -> None:
    """Start over on ``sub``, as the ``subscribe`` update does, keeping what spans subscriptions."""
    ended = s.ended_subscriptions + ([s.stripe_subscription_id] if s.stripe_subscription_id
                                     and s.stripe_subscription_id not in s.ended_subscriptions else [])
    fresh = SubscriptionState(customer_id=s.customer_id, stripe_customer_id=s.stripe_customer_id,
                              stripe_subscription_id=sub, ended_subscriptions=ended, seen_events=s.seen_events)
    for name in SubscriptionState.model_fields:
        setattr(s, name, getattr(fresh, name))


def expire_flag(s: SubscriptionState, f: StripeFact, plans: Mapping[str, PlanCredits] = PLANS) -> bool:
    """Whether applying ``f`` must expire the subscription credits: the current subscription ended,
    or a paid invoice of it arrives after it ended."""
    if f.kind == "subscription_deleted":
        return is_current(s, f.stripe_subscription_id) and f.stripe_subscription_id not in s.ended_subscriptions
    if f.kind == "invoice_paid":
        return (s.ended and f.stripe_subscription_id == s.stripe_subscription_id
                and invoice_allowance(f.lines, plans) > 0)
    return False


def fold(s: SubscriptionState, f: StripeFact, plans: Mapping[str, PlanCredits] = PLANS) -> None:
    """Fold one fact into ``s`` in place (order-independent: see ``SubscriptionState``)."""
    if f.stripe_customer_id and not s.stripe_customer_id:
        s.stripe_customer_id = f.stripe_customer_id
    sub = f.stripe_subscription_id
    if not sub or f.kind.startswith("payment_intent_"):
        return
    if adopts(s, f):
        _adopt(s, sub)
    if is_current(s, sub) and s.stripe_subscription_id is None:
        s.stripe_subscription_id = sub
    if sub != s.stripe_subscription_id:
        if f.kind == "subscription_deleted" and sub not in s.ended_subscriptions:
            s.ended_subscriptions.append(sub)
        return
    if f.kind == "invoice_paid" and f.invoice_id:
        if f.invoice_id not in s.paid_invoices:
            s.paid_invoices = (s.paid_invoices + [f.invoice_id])[-MAX_PAID_INVOICES:]
        s.failed_invoices = [i for i in s.failed_invoices if i != f.invoice_id]
        plan = invoice_plan(f.lines, plans)
        end = f.period_end_ts or 0
        if plan and (end, plan_credits(plan, plans)) > (s.plan_period_end_ts, plan_credits(s.plan, plans)):
            s.plan, s.plan_period_end_ts = plan, end
            if f.period_end_ts and f.period_end_ts >= (s.period_end_ts or 0):
                s.period_start_ts, s.period_end_ts = f.period_start_ts, f.period_end_ts
            if s.pending_plan == plan:
                s.pending_plan = None
    elif f.kind == "invoice_payment_failed" and f.invoice_id:
        if f.invoice_id not in s.paid_invoices and f.invoice_id not in s.failed_invoices:
            s.failed_invoices.append(f.invoice_id)
    elif f.kind == "subscription_updated":
        key = (f.created_ts, f.event_id or "")
        if key >= tuple(s.snapshot_at):
            s.snapshot_at = key
            s.cancel_at_period_end = bool(f.cancel_at_period_end)
            s.stripe_status = f.subscription_status
        if s.plan is None and f.plan:
            s.plan = f.plan
        if s.period_end_ts is None and f.period_end_ts:
            s.period_start_ts, s.period_end_ts = f.period_start_ts, f.period_end_ts
    elif f.kind == "subscription_deleted":
        if sub not in s.ended_subscriptions:
            s.ended_subscriptions.append(sub)
        s.ended = True
        s.pending_plan = None
