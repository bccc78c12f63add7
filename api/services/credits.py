"""Credits read side (balances, statement) and support adjustments, over ``billing.ledger``."""

from __future__ import annotations

import uuid

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import NotFound
from api.resources import Resources
from api.schemas.credits import AdjustIn, AdjustOut, Buckets, CreditsOut, Reference, Transaction, TransactionPage
from api.security import Principal
from api.services.customers import customer_exists, effective_plan
from models.db import LedgerEntry


async def credits_of(res: Resources, session: AsyncSession, customer_id: int) -> CreditsOut:
    b = await res.ledger.balances(customer_id)
    plan = await effective_plan(session, customer_id)
    return CreditsOut(available=b.available, held=b.held, buckets=Buckets(subscription=b.subscription, pack=b.pack, debt=b.debt),
                      plan=plan.plan, subscription_status=plan.subscription_status)


async def transactions(res: Resources, session: AsyncSession, customer_id: int, limit: int,
                       offset: int) -> TransactionPage:
    """Ledger lines newest first."""
    total = await session.scalar(select(func.count()).select_from(LedgerEntry)
                                 .where(LedgerEntry.customer_id == customer_id))
    entries = await res.ledger.list_entries(customer_id, limit=limit, offset=offset)
    items = [Transaction(id=e.id, kind=e.kind, bucket=e.bucket, amount=e.amount, balance_after=e.balance_after,
                         held_after=e.held_after, reference=Reference(type=e.reference_type, id=e.reference_id),
                         reason=e.reason, created_at=e.created_at) for e in entries]
    return TransactionPage(items=items, total=int(total or 0), limit=limit, offset=offset)


async def adjust(res: Resources, session: AsyncSession, principal: Principal, customer_id: int, body: AdjustIn,
                 idempotency_key: str | None) -> AdjustOut:
    """Ledger-logged adjustment by support (actor = the support key's owner). Raises NotFound,
    InsufficientCredits (taking away more than the bucket holds), IdempotencyConflict."""
    if not await customer_exists(session, customer_id):
        raise NotFound(f"customer {customer_id} not found")
    key = f"support-adjust:{customer_id}:{idempotency_key or uuid.uuid4()}"
    r = await res.ledger.adjust(customer_id, body.amount, actor=principal.actor, reason=body.reason,
                                idempotency_key=key, bucket=body.bucket)
    return AdjustOut(customer_id=customer_id, entry_id=r.entry_id, amount=r.amount, bucket=r.bucket,
                     balance_after=r.balance_after, held_after=r.held_after, reason=body.reason, replayed=r.replayed)
