"""Grant lots: what each credit cost the customer, and which grants a capture consumed.

Rules (docs/host-earnings.md §1):

* every grant is a lot (``credit_grant``) with its credits and its money value in whole cents: a
  pack the payment's price for its credits (bonus included), a subscription invoice the amount paid
  for its allowance, a support adjustment or a promotion 0. Per-credit value is the rational
  ``(value_cents − reversed_cents) / credits``;
* a bucket's credits are spent **oldest lot first**. At a capture, the credits no longer in the
  bucket (available, or held by an open hold) that the lots still count — expired, clawed back,
  adjusted away, repaid to a debt — are first taken as ``gone``, oldest first; then the captured
  credits are ``consumed``, oldest first, and recorded in ``capture_allocation``;
* credits in a bucket that no lot covers (granted before lots were recorded, or restored after a
  dispute beyond their lot) form an ``unattributed`` lot worth 0, spent first.

Everything runs inside the caller's transaction, which holds the customer's account row lock
(``billing.ledger``), so lots of one customer are never allocated twice at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from models.db import CaptureAllocation, CreditAccount, CreditGrant, CreditHold, LedgerEntry

LOT = CreditGrant.__table__
ALLOC = CaptureAllocation.__table__
ENTRY = LedgerEntry.__table__
ACCOUNT = CreditAccount.__table__
HOLD = CreditHold.__table__
#: Unattributed lots first, then grants in ledger order (a lot may be recorded after later grants).
_OLDEST_FIRST = (LOT.c.ledger_entry_id.is_not(None), LOT.c.ledger_entry_id, LOT.c.id)
SOURCES = ("pack", "subscription", "support", "promotion", "unattributed")

# The value of a grant nobody recorded, computed from what paid for it (also migration 0013's rule).
_ADOPT = """
INSERT INTO credit_grant (customer_id, ledger_entry_id, grant_key, bucket, source, credits, value_cents,
                          reversed_cents, consumed, gone, created_at)
SELECT e.customer_id, e.id, e.idempotency_key, e.bucket,
       CASE WHEN e.kind = 'adjustment' THEN 'support'
            WHEN e.idempotency_key LIKE 'payment:%' THEN 'pack'
            WHEN e.idempotency_key LIKE 'invoice:%' THEN 'subscription'
            ELSE 'promotion' END,
       e.amount,
       CASE WHEN e.kind <> 'grant' THEN 0
            WHEN e.idempotency_key LIKE 'payment:%' THEN COALESCE(
                (SELECT p.amount_cents FROM payment p WHERE 'payment:' || p.id = e.idempotency_key), 0)
            WHEN e.idempotency_key LIKE 'invoice:%' THEN COALESCE(
                (SELECT max(ip.amount_cents) FROM invoice_payment ip
                 WHERE 'invoice:' || ip.invoice_id = e.idempotency_key), 0)
            ELSE 0 END,
       0, 0, 0, e.created_at
FROM ledger_entry e
WHERE e.customer_id = :cid AND e.kind IN ('grant', 'adjustment') AND e.amount > 0
  AND e.bucket IN ('subscription', 'pack')
  AND NOT EXISTS (SELECT 1 FROM credit_grant g WHERE g.ledger_entry_id = e.id)
ON CONFLICT DO NOTHING
"""


@dataclass(frozen=True)
class Allocation:
    """``credits`` of an order's capture taken from lot ``grant_id`` (worth ``value_cents`` −
    ``reversed_cents`` for its ``grant_credits`` credits)."""

    grant_id: int
    grant_key: str
    source: str
    credits: int
    grant_credits: int
    value_cents: int
    reversed_cents: int

    @property
    def value(self) -> Fraction:
        """Exact money value of these credits, cents."""
        return Fraction(self.credits * (self.value_cents - self.reversed_cents), self.grant_credits)


async def record_grant_value(conn: AsyncConnection, grant_key: str, value_cents: int, source: str) -> None:
    """Record the money value (cents, ≥ 0) of the grant whose ledger entry has ``grant_key``, in the
    caller's transaction right after ``Ledger.grant``; a repeat (replayed grant) changes nothing.
    Raises ValueError for a negative value or an unknown source, LookupError if no such grant."""
    if value_cents < 0 or source not in SOURCES:
        raise ValueError(f"grant value must be ≥ 0 cents from one of {SOURCES}, got {value_cents} {source!r}")
    e = (await conn.execute(sa.select(ENTRY).where(ENTRY.c.idempotency_key == grant_key))).first()
    if e is None or e.amount <= 0:
        raise LookupError(f"no grant {grant_key!r}")
    await conn.execute(pg_insert(LOT).values(
        customer_id=e.customer_id, ledger_entry_id=e.id, grant_key=grant_key, bucket=e.bucket, source=source,
        credits=e.amount, value_cents=value_cents, reversed_cents=0, consumed=0, gone=0, created_at=e.created_at,
    ).on_conflict_do_nothing())


async def adopt_unrecorded_grants(conn: AsyncConnection, customer_id: int) -> None:
    """Give every grant or positive adjustment of ``customer_id`` without a lot its lot (value as
    migration 0013 computes it: the payment's price, the invoice payment's amount, else 0)."""
    await conn.execute(sa.text(_ADOPT), {"cid": customer_id})


async def _take(conn: AsyncConnection, lots: list, credits: int, column: str) -> list[tuple[object, int]]:
    """Take ``credits`` from ``lots`` (oldest first) into ``column`` (consumed | gone)."""
    taken = []
    for lot in lots:
        if credits <= 0:
            break
        left = lot.credits - lot.consumed - lot.gone
        part = min(left, credits)
        if part <= 0:
            continue
        await conn.execute(LOT.update().where(LOT.c.id == lot.id).values({column: getattr(LOT.c, column) + part}))
        taken.append((lot, part))
        credits -= part
    return taken


async def allocate_capture(conn: AsyncConnection, customer_id: int, order_id: int,
                           captured: dict[str, int]) -> list[Allocation]:
    """Consume the lots an order's capture came from and record them (``capture_allocation``).

    ``captured``: credits captured per bucket (``{"subscription": 3, "pack": 2}``). Call inside the
    capture's transaction, after the account row and the hold were written. Idempotent: an order
    already allocated returns its allocations unchanged."""
    if (await conn.execute(sa.select(sa.func.count()).select_from(ALLOC).where(ALLOC.c.order_id == order_id))).scalar():
        return await allocations_of(conn, order_id)
    await adopt_unrecorded_grants(conn, customer_id)
    account = (await conn.execute(sa.select(ACCOUNT).where(ACCOUNT.c.customer_id == customer_id))).one()
    for bucket, k in captured.items():
        held_col = HOLD.c.from_subscription if bucket == "subscription" else HOLD.c.from_pack
        held = (await conn.execute(sa.select(sa.func.coalesce(sa.func.sum(held_col), 0)).where(
            HOLD.c.customer_id == customer_id, HOLD.c.status == "open"))).scalar_one()
        in_bucket = account.subscription_credits if bucket == "subscription" else account.pack_credits
        target = in_bucket + int(held) + k  # what the lots should hold just before this capture
        lots = (await conn.execute(sa.select(LOT).where(
            LOT.c.customer_id == customer_id, LOT.c.bucket == bucket, LOT.c.consumed + LOT.c.gone < LOT.c.credits)
            .order_by(*_OLDEST_FIRST).with_for_update())).all()
        remaining = sum(lot.credits - lot.consumed - lot.gone for lot in lots)
        if remaining > target:
            await _take(conn, lots, remaining - target, "gone")
        elif remaining < target:
            await conn.execute(LOT.insert().values(
                customer_id=customer_id, ledger_entry_id=None, grant_key=f"unattributed:{bucket}:order:{order_id}",
                bucket=bucket, source="unattributed", credits=target - remaining, value_cents=0, reversed_cents=0,
                consumed=0, gone=0, created_at=sa.func.now()))
        if k <= 0:
            continue
        lots = (await conn.execute(sa.select(LOT).where(
            LOT.c.customer_id == customer_id, LOT.c.bucket == bucket, LOT.c.consumed + LOT.c.gone < LOT.c.credits)
            .order_by(*_OLDEST_FIRST))).all()
        taken = await _take(conn, lots, k, "consumed")
        if taken:
            await conn.execute(ALLOC.insert().values([
                dict(order_id=order_id, grant_id=lot.id, credits=part, created_at=sa.func.now()) for lot, part in taken]))
    return await allocations_of(conn, order_id)


async def allocations_of(conn: AsyncConnection, order_id: int) -> list[Allocation]:
    """The lots ``order_id``'s capture came from, oldest first, with their current values."""
    rows = (await conn.execute(
        sa.select(ALLOC.c.grant_id, ALLOC.c.credits, LOT.c.grant_key, LOT.c.source, LOT.c.credits.label("grant_credits"),
                  LOT.c.value_cents, LOT.c.reversed_cents)
        .join(LOT, LOT.c.id == ALLOC.c.grant_id).where(ALLOC.c.order_id == order_id).order_by(ALLOC.c.id))).all()
    return [Allocation(r.grant_id, r.grant_key, r.source, r.credits, r.grant_credits, r.value_cents, r.reversed_cents)
            for r in rows]
