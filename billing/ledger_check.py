"""Ledger invariants, checked against the database (tests, ``stellar ledger check``, the bench).

For every account (or the one asked for):

* ``subscription_credits`` = Σ entry amounts in bucket subscription, ``pack_credits`` = Σ in pack,
  ``debt`` = −Σ in bucket debt (clawbacks beyond the bucket, repaid or restored later);
* ``held`` = Σ of its open holds' amounts = Σ (held_after − held_before) of its entries;
* every entry: ``balance_after − balance_before = amount``, and entries chain — each entry's
  ``*_before`` equals the previous entry's ``*_after`` (the first starts from 0);
* every hold: ``from_subscription + from_pack = amount``; open → nothing captured or released;
  resolved → ``captured + released = amount``; its entries hold ``amount``, capture ``captured``
  and release ``released``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession


@dataclass(frozen=True)
class Violation:
    """One broken invariant: ``check`` names it, ``detail`` gives the numbers."""

    check: str
    customer_id: int | None
    detail: str

    def __str__(self) -> str:
        return f"[{self.check}] customer {self.customer_id}: {self.detail}"


_BALANCES = """
WITH sums AS (
    SELECT customer_id,
           COALESCE(SUM(amount) FILTER (WHERE bucket = 'subscription'), 0) AS sub,
           COALESCE(SUM(amount) FILTER (WHERE bucket = 'pack'), 0) AS pack,
           COALESCE(-SUM(amount) FILTER (WHERE bucket = 'debt'), 0) AS debt,
           COALESCE(SUM(held_after - held_before), 0) AS held
    FROM ledger_entry {where} GROUP BY customer_id),
open_holds AS (
    SELECT customer_id, SUM(amount) AS held FROM credit_hold
    WHERE status = 'open' {and_where} GROUP BY customer_id),
accounts AS (SELECT * FROM credit_account {where})
SELECT customer_id, a.subscription_credits, a.pack_credits, a.held AS account_held, a.debt AS account_debt,
       s.sub, s.pack, s.debt, s.held AS entries_held, o.held AS open_held
FROM accounts a FULL JOIN sums s USING (customer_id) FULL JOIN open_holds o USING (customer_id)
"""

# Only the offending rows come back, so a large ledger is checked inside PostgreSQL.
_ENTRIES = """
SELECT * FROM (
    SELECT id, customer_id, amount, balance_before, balance_after, held_before, held_after, bucket,
           LAG(balance_after, 1, 0::bigint) OVER w AS prev_balance,
           LAG(held_after, 1, 0::bigint) OVER w AS prev_held
    FROM ledger_entry {where}
    WINDOW w AS (PARTITION BY customer_id ORDER BY id)) e
WHERE balance_after - balance_before <> amount OR balance_before <> prev_balance
   OR held_before <> prev_held OR bucket NOT IN ('subscription', 'pack', 'debt')
"""

_HOLDS = """
WITH moves AS (
    SELECT customer_id, reference_id,
           COALESCE(SUM(held_after - held_before) FILTER (WHERE kind = 'hold'), 0) AS held,
           COALESCE(SUM(held_before - held_after) FILTER (WHERE kind = 'capture'), 0) AS captured,
           COALESCE(SUM(amount) FILTER (WHERE kind = 'release'), 0) AS released
    FROM ledger_entry WHERE reference_type = 'order' {and_where} GROUP BY customer_id, reference_id)
SELECT h.customer_id, h.order_id, h.amount, h.from_subscription, h.from_pack, h.status, h.captured,
       h.released, COALESCE(m.held, 0) AS e_held, COALESCE(m.captured, 0) AS e_captured,
       COALESCE(m.released, 0) AS e_released
FROM credit_hold h LEFT JOIN moves m
  ON m.customer_id = h.customer_id AND m.reference_id = h.order_id::text
WHERE ({cid_h})
  AND (h.from_subscription + h.from_pack <> h.amount OR h.amount <= 0
       OR h.status NOT IN ('open', 'captured', 'released')
       OR (h.status = 'open' AND (h.captured <> 0 OR h.released <> 0))
       OR (h.status <> 'open' AND h.captured + h.released <> h.amount)
       OR COALESCE(m.held, 0) <> h.amount OR COALESCE(m.captured, 0) <> h.captured
       OR COALESCE(m.released, 0) <> h.released)
"""


@asynccontextmanager
async def _executor(db: AsyncEngine | AsyncConnection | AsyncSession) -> AsyncIterator[Any]:
    if isinstance(db, AsyncEngine):
        async with db.connect() as conn:
            yield conn
    else:
        yield db


async def check_invariants(db: AsyncEngine | AsyncConnection | AsyncSession,
                           customer_id: int | None = None) -> list[Violation]:
    """Every broken ledger invariant (module docstring), for one customer or all. [] = consistent.

    ``db``: an AsyncEngine (a connection is opened) or an open AsyncConnection/AsyncSession (its
    transaction sees its own writes). Read-only.
    """
    params = {"cid": customer_id}
    filt = customer_id is not None
    where = "WHERE customer_id = :cid" if filt else ""
    and_where = "AND customer_id = :cid" if filt else ""
    cid_h = "h.customer_id = :cid" if filt else "TRUE"
    out: list[Violation] = []
    async with _executor(db) as ex:
        balances = (await ex.execute(sa.text(_BALANCES.format(where=where, and_where=and_where)), params)).all()
        entries = (await ex.execute(sa.text(_ENTRIES.format(where=where)), params)).all()
        holds = (await ex.execute(sa.text(_HOLDS.format(and_where=and_where, cid_h=cid_h)), params)).all()

    for r in balances:  # one row per account (few columns); compared here for clear messages
        sub, pack, held = r.sub or 0, r.pack or 0, r.entries_held or 0
        acct = (r.subscription_credits or 0, r.pack_credits or 0, r.account_held or 0)
        if r.subscription_credits is None and (sub or pack or held or r.open_held):
            out.append(Violation("account_missing", r.customer_id, "entries or holds without an account"))
        if acct[0] != sub:
            out.append(Violation("subscription_balance", r.customer_id, f"account {acct[0]} != Σ entries {sub}"))
        if acct[1] != pack:
            out.append(Violation("pack_balance", r.customer_id, f"account {acct[1]} != Σ entries {pack}"))
        if (r.account_debt or 0) != (r.debt or 0):
            out.append(Violation("debt_balance", r.customer_id, f"account debt {r.account_debt or 0} != "
                                                                f"−Σ debt entries {r.debt or 0}"))
        if acct[2] != held:
            out.append(Violation("held_entries", r.customer_id, f"account held {acct[2]} != Σ entry held {held}"))
        if acct[2] != (r.open_held or 0):
            out.append(Violation("held_open_holds", r.customer_id,
                                 f"account held {acct[2]} != Σ open holds {r.open_held or 0}"))

    for e in entries:
        if e.balance_after - e.balance_before != e.amount:
            out.append(Violation("entry_amount", e.customer_id,
                                 f"entry {e.id}: {e.balance_before} → {e.balance_after} but amount {e.amount}"))
        if e.balance_before != e.prev_balance or e.held_before != e.prev_held:
            out.append(Violation("entry_chain", e.customer_id,
                                 f"entry {e.id} starts at balance {e.balance_before}/held {e.held_before}, "
                                 f"previous ended at {e.prev_balance}/{e.prev_held}"))
        if e.bucket not in ("subscription", "pack", "debt"):
            out.append(Violation("entry_bucket", e.customer_id, f"entry {e.id} has bucket {e.bucket!r}"))

    for h in holds:
        who = f"order {h.order_id}"
        if h.from_subscription + h.from_pack != h.amount or h.amount <= 0:
            out.append(Violation("hold_split", h.customer_id, f"{who}: {h.from_subscription} + {h.from_pack} "
                                                               f"!= {h.amount}"))
        if h.status == "open" and (h.captured or h.released):
            out.append(Violation("hold_open", h.customer_id, f"{who} is open but captured/released"))
        elif h.status in ("captured", "released") and h.captured + h.released != h.amount:
            out.append(Violation("hold_resolved", h.customer_id,
                                 f"{who}: captured {h.captured} + released {h.released} != {h.amount}"))
        elif h.status not in ("open", "captured", "released"):
            out.append(Violation("hold_status", h.customer_id, f"{who} has status {h.status!r}"))
        if (h.e_held, h.e_captured, h.e_released) != (h.amount, h.captured, h.released):
            out.append(Violation("hold_entries", h.customer_id,
                                 f"{who}: entries hold/capture/release {h.e_held}/{h.e_captured}/{h.e_released}, "
                                 f"hold row {h.amount}/{h.captured}/{h.released}"))
    return out
