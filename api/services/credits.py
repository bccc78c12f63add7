"""Credits read side (balances, statement) and support adjustments, over ``billing.ledger``."""

from __future__ import annotations

import structlog
from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import Forbidden, NotFound, Unprocessable
from api.resources import Resources
from api.schemas.credits import AdjustIn, AdjustmentOut, AdjustmentPage, AdjustOut, Buckets, CreditsOut, Reference, Transaction, TransactionPage
from api.security import Principal
from api.services.customers import customer_exists, effective_plan
from api.services.orders import check_idempotency_key
from models.db import LedgerEntry

log = structlog.get_logger(__name__)


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


def check_adjustment_allowed(principal: Principal, customer_id: int, amount: int, idempotency_key: str | None,
                             limit: int) -> None:
    """Staff powers are bounded: never on one's own account (403 ``self_adjustment``), always with an
    ``Idempotency-Key`` (422 ``idempotency_key_required``), and above ``limit`` credits in absolute
    value only with the admin role (403 ``admin_required``; ``api.support_adjust_limit``)."""
    if principal.customer_id == customer_id:
        raise Forbidden("staff cannot adjust their own account; ask another member of staff",
                        code="self_adjustment")
    check_idempotency_key(idempotency_key)
    if not idempotency_key:
        raise Unprocessable("a credit adjustment needs an Idempotency-Key header (e.g. the ticket id)",
                            code="idempotency_key_required",
                            fields={"header.idempotency-key": "required for credit adjustments"})
    if abs(amount) > limit and not principal.has_role("admin"):
        raise Forbidden(f"adjustments above {limit} credits need the admin role", code="admin_required",
                        fields={"amount": f"|amount| > {limit} needs admin"})


async def adjust(res: Resources, session: AsyncSession, principal: Principal, customer_id: int, body: AdjustIn,
                 idempotency_key: str | None) -> AdjustOut:
    """Ledger-logged adjustment by staff (actor = the staff key's owner, reason required); the same
    ``Idempotency-Key`` applies it once. Raises Forbidden / Unprocessable (see
    :func:`check_adjustment_allowed`), NotFound, InsufficientCredits (taking away more than the
    bucket holds), IdempotencyConflict (the key reused for another adjustment)."""
    check_adjustment_allowed(principal, customer_id, body.amount, idempotency_key,
                             res.settings.api.support_adjust_limit)
    if not await customer_exists(session, customer_id):
        raise NotFound(f"customer {customer_id} not found")
    key = f"support-adjust:{customer_id}:{idempotency_key}"
    r = await res.ledger.adjust(customer_id, body.amount, actor=principal.actor, reason=body.reason,
                                idempotency_key=key, bucket=body.bucket)
    log.info("credits.adjusted", customer_id=customer_id, amount=body.amount, bucket=body.bucket,
             actor=principal.actor, reason=body.reason, entry_id=r.entry_id, replayed=r.replayed)
    return AdjustOut(customer_id=customer_id, entry_id=r.entry_id, amount=r.amount, bucket=r.bucket,
                     balance_after=r.balance_after, held_after=r.held_after, reason=body.reason, replayed=r.replayed)


async def list_adjustments(session: AsyncSession, customer_id: int | None, limit: int, offset: int) -> AdjustmentPage:
    """Support adjustments (ledger lines of kind ``adjustment``), newest first, optionally of one customer."""
    where = [LedgerEntry.kind == "adjustment"]
    if customer_id is not None:
        where.append(LedgerEntry.customer_id == customer_id)
    total = await session.scalar(select(func.count()).select_from(LedgerEntry).where(*where))
    rows = (await session.exec(select(LedgerEntry).where(*where).order_by(LedgerEntry.id.desc())
                               .limit(limit).offset(offset))).all()
    items = [AdjustmentOut(entry_id=e.id, customer_id=e.customer_id, amount=e.amount, bucket=e.bucket, actor=e.actor,
                           reason=e.reason, balance_after=e.balance_after, created_at=e.created_at) for e in rows]
    return AdjustmentPage(items=items, total=int(total or 0), limit=limit, offset=offset)
