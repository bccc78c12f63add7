"""Manual plans (a subscription staff set without Stripe: ``stripe_subscription_id`` NULL) end at
their period end like Stripe ones: status ``cancelled`` and the subscription credits expire (key
``expire:manual:<subscription id>``), pack credits stay.

Stripe tells us when its subscriptions end (``customer.subscription.deleted``); nobody tells us
for a manual plan, so :func:`expire_manual_plans` looks: the daily reconciliation runs it for
everyone, and order creation for the ordering customer before it reads the balance, so a lapsed
plan's credits are never spent after its end. ``api.services.customers.effective_plan`` already
ignores a lapsed manual plan's rules in between.
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.ledger import Ledger
from models.db import Subscription

log = structlog.get_logger(__name__)
SUB = Subscription.__table__


def manual_expire_key(subscription_id: int) -> str:
    return f"expire:manual:{subscription_id}"


async def expire_manual_plans(engine: AsyncEngine, customer_id: int | None = None,
                              now: datetime | None = None) -> list[int]:
    """End every active manual subscription whose ``current_period_end`` ≤ ``now`` (default: the
    current time), for one customer or all; returns the ended subscription ids. Each ends once: the
    status change and the expiry commit together, and the expiry's key is the subscription's. The
    subscription bucket is not expired when the customer holds another active subscription (its
    credits share the bucket)."""
    now = now or datetime.now(timezone.utc)
    cond = [SUB.c.stripe_subscription_id.is_(None), SUB.c.status == "active", SUB.c.current_period_end <= now]
    if customer_id is not None:
        cond.append(SUB.c.customer_id == customer_id)
    ended: list[int] = []
    async with engine.begin() as conn:
        rows = (await conn.execute(SUB.update().where(*cond).values(status="cancelled", updated_at=sa.func.now())
                                   .returning(SUB.c.id, SUB.c.customer_id))).all()
        ledger = Ledger.bound(conn)
        for row in rows:
            others = (await conn.execute(sa.select(sa.func.count()).select_from(SUB).where(
                SUB.c.customer_id == row.customer_id, SUB.c.status == "active", SUB.c.id != row.id))).scalar_one()
            if not others:
                await ledger.expire(row.customer_id, manual_expire_key(row.id), reason="manual plan ended",
                                    reference_type="subscription", reference_id=f"manual:{row.id}")
            ended.append(row.id)
            log.info("subscription.manual_ended", subscription_id=row.id, customer_id=row.customer_id,
                     credits_expired=not others)
    return ended
