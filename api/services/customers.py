"""Customers, their keys and their effective plan.

``create_customer_with_key`` is what ``stellar customers create``, ``POST /api/admin/customers``
and the tests use to make a customer and its first API key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import Conflict, Unprocessable
from api.security import ROLES, issue_key
from billing.errors import UnknownPlan
from billing.plans import NO_PLAN_RULES, get_plan
from models.db import Customer, Subscription

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s.]{2,63}$")
#: Subscription statuses that give the plan's rules; any other (past_due, cancelled, none) orders
#: with pack credits at Stardust rules (docs/pricing.md §7: a failed renewal stops orders at plan rules).
PLAN_ACTIVE_STATUSES = ("active",)
MANUAL_PERIOD = timedelta(days=30)


@dataclass(frozen=True)
class NewCustomer:
    """A created customer. ``api_key`` is the clear key: shown once, never stored."""

    customer_id: int
    email: str
    name: str
    role: str
    plan: str | None
    api_key: str
    key_prefix: str
    created_at: datetime


@dataclass(frozen=True)
class EffectivePlan:
    """The rules an order is gated and priced with. ``plan``: stardust | nebula | quasar;
    ``subscription_status``: the latest subscription's status, None without one;
    ``manual_lapsed``: a manual plan is past its period end but not ended yet."""

    plan: str
    subscribed: bool
    subscription_status: str | None
    manual_lapsed: bool = False


async def create_customer_with_key(
    session: AsyncSession,
    *,
    email: str,
    name: str = "",
    plan: str | None = None,
    role: str = "customer",
) -> NewCustomer:
    """Insert a customer, its first API key and, with ``plan``, an active manual subscription
    (no Stripe object; period 30 days, after which it ends like a Stripe one — billing/manual_plans.py;
    no credits are granted — grant them through the ledger).
    Commits. Raises Conflict (``email_taken``), Unprocessable (bad email/role), UnknownPlan.
    """
    email = email.strip().lower()
    errors: dict[str, str] = {}
    if not EMAIL.match(email):
        errors["email"] = "not a valid e-mail address"
    if role not in ROLES:
        errors["role"] = f"unknown role {role!r}; expected one of {', '.join(ROLES)}"
    plan_row = None
    if plan is not None:
        try:
            plan_row = get_plan(plan)
        except UnknownPlan as exc:
            errors["plan"] = str(exc)
    if errors:
        raise Unprocessable("invalid customer", fields=errors)
    customer = Customer(email=email, name=name.strip())
    session.add(customer)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise Conflict(f"a customer with e-mail {email} already exists", code="email_taken",
                       fields={"email": "already registered"}) from None
    if plan_row is not None:
        now = datetime.now(timezone.utc)
        session.add(Subscription(
            customer_id=customer.id, plan=plan_row.id, status="active",
            monthly_credits=plan_row.monthly_credits, price_cents=plan_row.price_cents,
            current_period_start=now, current_period_end=now + MANUAL_PERIOD,
        ))
    key_row, clear = await issue_key(session, customer.id, role)
    await session.commit()
    return NewCustomer(
        customer_id=customer.id, email=email, name=customer.name, role=role,
        plan=plan_row.id if plan_row else None, api_key=clear, key_prefix=key_row.prefix,
        created_at=customer.created_at,
    )


async def create_customer(
    sessionmaker: async_sessionmaker[AsyncSession], **kwargs
) -> NewCustomer:
    """:func:`create_customer_with_key` in a session of its own (CLI, tests)."""
    async with sessionmaker() as session:
        return await create_customer_with_key(session, **kwargs)


async def effective_plan(session: AsyncSession, customer_id: int) -> EffectivePlan:
    """The customer's plan: the most recent ``active`` subscription's; without one (none,
    past_due, cancelled, expired) Stardust rules with pack credits. A manual plan past its
    ``current_period_end`` counts as ``cancelled`` (billing/manual_plans.py ends it)."""
    rows = (
        await session.exec(
            select(Subscription.plan, Subscription.status, Subscription.stripe_subscription_id.is_(None),
                   Subscription.current_period_end)
            .where(Subscription.customer_id == customer_id)
            .order_by(Subscription.created_at.desc(), Subscription.id.desc())
        )
    ).all()
    return effective_plan_of([tuple(r) for r in rows])


def effective_plan_of(rows: list[tuple[str, str, bool, datetime | None]],
                      now: datetime | None = None) -> EffectivePlan:
    """:func:`effective_plan` from the customer's subscriptions, newest first, as (plan, status,
    manual: no Stripe subscription, ``current_period_end`` aware UTC or None); ``now``: aware UTC
    (default: the current time). ``POST /api/orders`` reads the rows with the caller's key
    (api/services/order_context.py)."""
    now = now or datetime.now(timezone.utc)
    lapsed = [status == "active" and manual and end is not None and end <= now for _, status, manual, end in rows]
    statuses = ["cancelled" if gone else status for (_, status, _, _), gone in zip(rows, lapsed)]
    for (plan, _, _, _), status in zip(rows, statuses):
        if status in PLAN_ACTIVE_STATUSES:
            return EffectivePlan(plan=plan, subscribed=True, subscription_status=status, manual_lapsed=any(lapsed))
    return EffectivePlan(plan=NO_PLAN_RULES, subscribed=False, subscription_status=statuses[0] if rows else None,
                         manual_lapsed=any(lapsed))


async def customer_exists(session: AsyncSession, customer_id: int) -> bool:
    return bool(await session.scalar(select(func.count()).select_from(Customer).where(Customer.id == customer_id)))
