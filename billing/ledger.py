"""The credit ledger: a two-phase ledger on PostgreSQL, the way TigerBeetle does pending transfers.

A customer's ``credit_account`` row holds two *available* buckets — ``subscription`` (monthly
credits; expire when a cancelled subscription ends) and ``pack`` (bought; never expire) — and
``held`` (reserved by open holds). Every change appends ``ledger_entry`` rows:

* ``amount`` is the signed change of the entry's bucket's available credits (0 for a capture);
* ``balance_before``/``balance_after`` are the total available (subscription + pack − debt);
* ``held_before``/``held_after`` are the held credits;
* kind, reference (order / invoice / payment / admin), actor, reason and time are recorded.

So, for every account: bucket = Σ amounts of its entries, held = Σ of open holds (see
``billing.ledger_check.check_invariants``).

Debt: a refund or a dispute takes back the credits its payment granted (``clawback``, from that
payment's bucket first); what was already spent becomes ``debt``, a third bucket whose entries'
amounts sum to −debt. While the debt is > 0 no hold is made (CreditDebt, HTTP 402). Every later
grant or positive adjustment repays the debt first (``repay`` entries), and a ``restore`` (a
dispute won) gives back to the debt first, then to the bucket — so clawback then restore nets to
the state before.

Expired stays expired: subscription credits that were held when the subscription ended (an
``expire`` entry after the hold) are expired again when the hold releases them, instead of
returning to the balance.

Two phases: ``hold`` moves credits available → held (subscription first: they expire; then pack),
``capture`` takes part or all of it and releases the rest, ``release`` voids it all. **A partial
capture consumes the hold's subscription part first, then its pack part**, so whatever is released
goes back preferably as pack credits, which never expire — the choice that is best for the
customer. Released credits return to the bucket they came from.

Exactly once: every operation carries an idempotency key with a UNIQUE constraint (the caller's key
for grant/adjust/expire; ``order:<id>:…`` for holds and their resolution, plus the UNIQUE
``credit_hold.order_id``). A repeat returns the first result (``replayed=True``) and moves nothing;
a hold is resolved once, and a later capture/release returns that first resolution.

No overdraft: every mutation first takes ``SELECT … FOR UPDATE`` on the customer's account row,
so operations on one customer are serialized and availability is checked and reserved atomically.
The hot path takes it inside its statements: a hold is one statement (a transaction of its own,
without BEGIN and COMMIT), and so is a capture or release, unless a host earns on the capture or
the statement's snapshot is stale, when the settle is one transaction of two statements and the
host credit (billing/ledger_sql.py); each operation one connection checkout and one transaction.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from billing.errors import (
    CreditDebt,
    HoldNotFound,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
    UnknownCustomer,
)
from billing.host_earnings import credit_host_for_capture
from billing.ledger_sql import HOLD_ONE_STATEMENT, LOCK_HOLD, SETTLE_ONE_STATEMENT, SETTLE_WRITE, settle_params
from models.billing import Balances, LedgerEntry, LedgerHold, LedgerResult, HoldResolution
from models.db import CreditAccount, CreditHold, LedgerEntry

log = structlog.get_logger(__name__)

ACCOUNT = CreditAccount.__table__
HOLD = CreditHold.__table__
ENTRY = LedgerEntry.__table__
BUCKETS = ("subscription", "pack")
DEBT = "debt"
T = TypeVar("T")
_EVENTS = {"grant": "ledger.granted", "adjustment": "ledger.adjusted", "expire": "ledger.expired",
           "clawback": "ledger.clawed_back", "restore": "ledger.restored"}


@dataclass(frozen=True)
class _State:
    subscription: int
    pack: int
    held: int
    debt: int = 0

    @property
    def available(self) -> int:
        return self.subscription + self.pack - self.debt

    def bucket(self, name: str) -> int:
        """The bucket's value; the debt bucket is worth −debt (its entries sum to that)."""
        if name == DEBT:
            return -self.debt
        return self.subscription if name == "subscription" else self.pack

    def add(self, bucket: str = "", amount: int = 0, held: int = 0) -> "_State":
        return _State(
            self.subscription + (amount if bucket == "subscription" else 0),
            self.pack + (amount if bucket == "pack" else 0),
            self.held + held,
            self.debt - (amount if bucket == DEBT else 0),
        )


def _sqlstate(exc: IntegrityError) -> str | None:
    orig = exc.orig
    return getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None)


class Ledger:
    """Credit ledger operations; each call is one transaction on ``engine`` (postgresql+asyncpg).

    All amounts are integer credits. Errors: InsufficientCredits (with ``shortfall``),
    IdempotencyConflict, HoldNotFound, InvalidAmount, UnknownCustomer (billing/errors.py).
    """

    def __init__(self, engine: AsyncEngine, *, connection: AsyncConnection | None = None) -> None:
        self.engine = engine
        self._conn = connection

    @classmethod
    def bound(cls, conn: AsyncConnection) -> "Ledger":
        """A ledger whose operations run inside ``conn``'s open transaction, each in a savepoint, so
        they commit or roll back together with the caller's other writes (e.g. a processed Stripe
        event row). The account row lock is then held until the caller commits."""
        return cls(conn.engine, connection=conn)

    # -- plumbing ---------------------------------------------------------------------------

    async def _tx(self, fn: Callable[[AsyncConnection], Awaitable[T]], *, one_statement: bool = False,
                  fallback: Callable[[AsyncConnection], Awaitable[T]] | None = None) -> T:
        """Run ``fn`` in a transaction (a savepoint when bound); a unique violation (a concurrent
        first call with the same key) is retried once, and the retry sees that first call's result.
        ``one_statement``: ``fn`` sends a single statement, which PostgreSQL runs as a transaction
        of its own, so unbound it runs without BEGIN and COMMIT (two round trips fewer).
        ``fallback``: when ``fn`` returns None, run this instead, in a transaction on the same
        connection (one pool checkout, one pre-ping)."""
        for attempt in (1, 2):
            try:
                if self._conn is not None:
                    async with self._conn.begin_nested():
                        done = await fn(self._conn)
                    if done is None and fallback is not None:
                        async with self._conn.begin_nested():
                            done = await fallback(self._conn)
                    return done  # type: ignore[return-value]
                if one_statement:
                    async with self.engine.connect() as conn:
                        done = await fn(await conn.execution_options(isolation_level="AUTOCOMMIT"))
                        if done is None and fallback is not None:
                            await conn.commit()  # sends nothing in autocommit; the level changes between transactions
                            await conn.execution_options(isolation_level=conn.default_isolation_level)
                            async with conn.begin():
                                done = await fallback(conn)
                        return done  # type: ignore[return-value]
                async with self.engine.begin() as conn:
                    return await fn(conn)
            except IntegrityError as exc:
                if _sqlstate(exc) != "23505" or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        if self._conn is not None:
            yield self._conn
        else:
            async with self.engine.connect() as conn:
                yield conn

    @staticmethod
    async def _lock(conn: AsyncConnection, customer_id: int, create: bool) -> _State | None:
        if create:
            try:  # a foreign-key failure aborts the transaction, which is rolled back on raise
                await conn.execute(pg_insert(ACCOUNT).values(
                    customer_id=customer_id, subscription_credits=0, pack_credits=0, held=0, debt=0,
                    updated_at=sa.func.now()).on_conflict_do_nothing(index_elements=["customer_id"]))
            except IntegrityError as exc:
                if _sqlstate(exc) == "23503":
                    raise UnknownCustomer(customer_id) from None
                raise
        row = (await conn.execute(
            sa.select(ACCOUNT.c.subscription_credits, ACCOUNT.c.pack_credits, ACCOUNT.c.held, ACCOUNT.c.debt)
            .where(ACCOUNT.c.customer_id == customer_id).with_for_update())).first()
        return _State(*row) if row else None

    @staticmethod
    async def lock_account(conn: AsyncConnection, customer_id: int) -> None:
        """Take the customer's account row lock (creating the account) in ``conn``'s transaction, so
        a caller's own reads and writes about that customer serialize with every ledger operation
        (billing/reversals.py). Raises UnknownCustomer."""
        await Ledger._lock(conn, customer_id, create=True)

    @staticmethod
    async def _store(conn: AsyncConnection, customer_id: int, state: _State) -> None:
        await conn.execute(ACCOUNT.update().where(ACCOUNT.c.customer_id == customer_id).values(
            subscription_credits=state.subscription, pack_credits=state.pack, held=state.held, debt=state.debt,
            updated_at=sa.func.now()))

    @staticmethod
    def _entry(customer_id: int, kind: str, bucket: str, before: _State, after: _State, key: str,
               reference_type: str, reference_id: str, actor: str, reason: str) -> dict[str, Any]:
        return dict(
            customer_id=customer_id, kind=kind, bucket=bucket,
            amount=after.bucket(bucket) - before.bucket(bucket),
            balance_before=before.available, balance_after=after.available,
            held_before=before.held, held_after=after.held,
            reference_type=reference_type, reference_id=reference_id, idempotency_key=key,
            actor=actor, reason=reason, created_at=sa.func.now(),
        )

    @staticmethod
    def _result(row: Any, replayed: bool) -> LedgerResult:
        return LedgerResult(customer_id=row.customer_id, kind=row.kind, bucket=row.bucket, amount=row.amount,
                            balance_after=row.balance_after, held_after=row.held_after,
                            idempotency_key=row.idempotency_key, entry_id=row.id, created_at=row.created_at,
                            replayed=replayed)

    async def _single(self, customer_id: int, kind: str, bucket: str, key: str, reference_type: str,
                      reference_id: str, actor: str, reason: str,
                      delta: Callable[[_State], int], expected_amount: int | None) -> LedgerResult:
        """One-entry operation (grant, adjust, expire), exactly once per ``key``."""
        if not key:
            raise InvalidAmount("an idempotency key is required")
        if bucket not in BUCKETS:
            raise InvalidAmount(f"bucket must be one of {BUCKETS}, got {bucket!r}")

        async def run(conn: AsyncConnection) -> LedgerResult:
            before = await self._lock(conn, customer_id, create=True)
            assert before is not None
            prior = (await conn.execute(sa.select(ENTRY).where(ENTRY.c.idempotency_key == key))).first()
            if prior is not None:
                if (prior.customer_id, prior.kind, prior.bucket) != (customer_id, kind, bucket) or (
                        expected_amount is not None and prior.amount != expected_amount):
                    raise IdempotencyConflict(key, f"first used for customer {prior.customer_id}, "
                                                   f"{prior.kind} {prior.amount:+d} {prior.bucket}")
                return self._result(prior, replayed=True)
            amount = delta(before)
            after = before.add(bucket, amount)
            if after.bucket(bucket) < 0:
                raise InsufficientCredits(customer_id, -amount, before.bucket(bucket))
            row = (await conn.execute(ENTRY.insert().values(self._entry(
                customer_id, kind, bucket, before, after, key, reference_type, reference_id, actor, reason,
            )).returning(*ENTRY.c))).one()
            if amount > 0 and after.debt:  # new credits cover a debt first
                after = await self._repay(conn, customer_id, bucket, after, key, reference_type, reference_id, actor)
            await self._store(conn, customer_id, after)
            log.info(_EVENTS[kind], customer_id=customer_id, bucket=bucket, amount=amount, key=key)
            return self._result(row, replayed=False)

        return await self._tx(run)

    async def _insert_moves(self, conn: AsyncConnection, customer_id: int, state: _State,
                            moves: list[tuple[str, str, int, str]], reference_type: str, reference_id: str,
                            actor: str, reason: str) -> _State:
        """Append one entry per ``(kind, bucket, amount, key)`` (amount: signed change of that
        bucket's value; zero amounts are skipped) and return the state after them."""
        rows = []
        for kind, bucket, amount, key in moves:
            if amount:
                nxt = state.add(bucket, amount)
                rows.append(self._entry(customer_id, kind, bucket, state, nxt, key, reference_type, reference_id,
                                        actor, reason))
                state = nxt
        if rows:
            await conn.execute(ENTRY.insert().values(rows))
        return state

    async def _repay(self, conn: AsyncConnection, customer_id: int, bucket: str, state: _State, key: str,
                     reference_type: str, reference_id: str, actor: str) -> _State:
        """Move min(debt, bucket) from ``bucket`` to the debt (two ``repay`` entries)."""
        part = min(state.debt, state.bucket(bucket))
        if part <= 0:
            return state
        log.info("ledger.debt_repaid", customer_id=customer_id, bucket=bucket, amount=part, key=key)
        return await self._insert_moves(conn, customer_id, state, [
            ("repay", bucket, -part, f"{key}:repay:{bucket}"), ("repay", DEBT, part, f"{key}:repay:debt")],
            reference_type, reference_id, actor, f"repays {part} credits of debt")

    # -- reversals (refunds, disputes): called inside the caller's transaction ------------------

    async def clawback(self, customer_id: int, bucket: str, credits: int, key: str, reference_type: str,
                       reference_id: str, actor: str = "stripe", reason: str = "") -> int:
        """Take back ``credits`` (> 0) granted to ``bucket``: first what that bucket holds, the rest
        becomes debt. Entries ``clawback`` keyed ``<key>:<bucket>`` and ``<key>:debt``. Returns the
        debt added. The caller makes it exactly once (billing/reversals.py keeps the target)."""
        if credits <= 0 or bucket not in BUCKETS:
            raise InvalidAmount(f"a clawback must be > 0 credits from a bucket, got {credits} {bucket!r}")

        async def run(conn: AsyncConnection) -> int:
            before = await self._lock(conn, customer_id, create=True)
            assert before is not None
            taken = min(credits, before.bucket(bucket))
            after = await self._insert_moves(conn, customer_id, before, [
                ("clawback", bucket, -taken, f"{key}:{bucket}"), ("clawback", DEBT, -(credits - taken), f"{key}:debt")],
                reference_type, reference_id, actor, reason)
            await self._store(conn, customer_id, after)
            log.info(_EVENTS["clawback"], customer_id=customer_id, bucket=bucket, credits=credits,
                     debt_added=credits - taken, key=key)
            return credits - taken

        return await self._tx(run)

    async def restore(self, customer_id: int, bucket: str, credits: int, key: str, reference_type: str,
                      reference_id: str, actor: str = "stripe", reason: str = "", expired: bool = False) -> int:
        """Give back ``credits`` (> 0) clawed back earlier (a dispute won): first to the debt, the
        rest to ``bucket``. Entries ``restore`` keyed ``<key>:debt`` and ``<key>:<bucket>``; with
        ``expired`` (the subscription those credits belonged to has ended) what reaches the bucket
        expires at once (``expire``, ``<key>:expire``). Returns the credits that reached ``bucket``."""
        if credits <= 0 or bucket not in BUCKETS:
            raise InvalidAmount(f"a restore must be > 0 credits to a bucket, got {credits} {bucket!r}")

        async def run(conn: AsyncConnection) -> int:
            before = await self._lock(conn, customer_id, create=True)
            assert before is not None
            to_debt = min(credits, before.debt)
            after = await self._insert_moves(conn, customer_id, before, [
                ("restore", DEBT, to_debt, f"{key}:debt"), ("restore", bucket, credits - to_debt, f"{key}:{bucket}"),
                ("expire", bucket, -(credits - to_debt) if expired else 0, f"{key}:expire")],
                reference_type, reference_id, actor, reason)
            await self._store(conn, customer_id, after)
            log.info(_EVENTS["restore"], customer_id=customer_id, bucket=bucket, credits=credits, to_debt=to_debt,
                     key=key)
            return credits - to_debt

        return await self._tx(run)

    # -- single-entry operations ---------------------------------------------------------------

    async def grant(self, customer_id: int, amount: int, bucket: str, idempotency_key: str,
                    reference_type: str, reference_id: str, actor: str = "system",
                    reason: str = "") -> LedgerResult:
        """Add ``amount`` (> 0) credits to ``bucket`` (``subscription`` for a monthly grant, keyed by
        invoice id; ``pack`` for a purchase, keyed by payment id). Raises InvalidAmount,
        IdempotencyConflict, UnknownCustomer."""
        if amount <= 0:
            raise InvalidAmount(f"a grant must be > 0 credits, got {amount}")
        return await self._single(customer_id, "grant", bucket, idempotency_key, reference_type,
                                  str(reference_id), actor, reason, lambda s: amount, amount)

    async def adjust(self, customer_id: int, delta: int, actor: str, reason: str, idempotency_key: str,
                     bucket: str = "pack", reference_id: str = "") -> LedgerResult:
        """Support adjustment of ``bucket`` by ``delta`` (≠ 0; negative takes credits away, never below
        zero). Default bucket ``pack`` (goodwill credits do not expire). Reference: ``admin`` /
        ``reference_id`` (e.g. a ticket; default the actor). Raises InvalidAmount,
        InsufficientCredits, IdempotencyConflict."""
        if delta == 0:
            raise InvalidAmount("an adjustment must not be 0")
        if not reason:
            raise InvalidAmount("an adjustment needs a reason")
        return await self._single(customer_id, "adjustment", bucket, idempotency_key, "admin",
                                  reference_id or actor, actor, reason, lambda s: delta, delta)

    async def expire(self, customer_id: int, idempotency_key: str, actor: str = "system",
                     reason: str = "subscription ended", reference_type: str = "subscription",
                     reference_id: str = "") -> LedgerResult:
        """Zero the subscription bucket (a cancelled subscription's period ended; docs/pricing.md §7:
        credits are kept until that date). Pack credits never expire; held credits stay held. The
        entry's ``amount`` is minus what expired (0 if nothing)."""
        return await self._single(customer_id, "expire", "subscription", idempotency_key, reference_type,
                                  reference_id, actor, reason, lambda s: -s.subscription, None)

    # -- two-phase: hold, then settle or release ---------------------------------------------

    async def hold(self, customer_id: int, order_id: int, amount: int, actor: str = "system") -> LedgerHold:
        """Reserve ``amount`` (≥ 1) credits for ``order_id`` (the idempotency key): subscription
        credits first, then pack. Raises InsufficientCredits (``shortfall``), IdempotencyConflict
        (this order already holds for another customer or amount), InvalidAmount."""
        if amount < 1:
            raise InvalidAmount(f"a hold must be ≥ 1 credit, got {amount}")

        async def run(conn: AsyncConnection) -> LedgerHold:
            # One round trip: lock, checks, move, hold row and entries (billing/ledger_sql.py).
            row = (await conn.execute(HOLD_ONE_STATEMENT, {
                "customer_id": customer_id, "order_id": order_id, "amount": amount, "actor": actor,
                "reason": f"hold for order {order_id}", "reference_id": str(order_id),
                "key_subscription": f"order:{order_id}:hold:subscription",
                "key_pack": f"order:{order_id}:hold:pack"})).one()
            if row.prior_customer_id is not None:
                if (row.prior_customer_id, row.prior_amount) != (customer_id, amount):
                    raise IdempotencyConflict(f"order:{order_id}:hold", f"order {order_id} holds "
                                              f"{row.prior_amount} for customer {row.prior_customer_id}")
                return LedgerHold(order_id=order_id, customer_id=customer_id, amount=amount,
                                  from_subscription=row.prior_from_subscription, from_pack=row.prior_from_pack,
                                  status=row.prior_status, replayed=True)
            if row.new_from_subscription is None:
                available = row.subscription + row.pack - row.debt if row.has_account else 0
                if row.has_account and row.debt > 0:
                    raise CreditDebt(customer_id, amount, available, row.debt)
                raise InsufficientCredits(customer_id, amount, available)
            log.info("ledger.held", customer_id=customer_id, order_id=order_id, amount=amount,
                     from_subscription=row.new_from_subscription)
            return LedgerHold(order_id=order_id, customer_id=customer_id, amount=amount,
                              from_subscription=row.new_from_subscription, from_pack=row.new_from_pack,
                              status="open", replayed=False)

        return await self._tx(run, one_statement=True)

    async def capture(self, order_id: int, capture: int, actor: str = "system", reason: str = "") -> HoldResolution:
        """Resolve the hold: capture ``capture`` credits (0 ≤ capture ≤ held; subscription part first)
        and release the rest to the buckets it came from. Exactly once: if the hold is already
        resolved, returns that first resolution (``replayed``) and moves nothing. Raises
        HoldNotFound, InvalidAmount (capture out of range)."""
        if capture < 0:
            raise InvalidAmount(f"capture must be ≥ 0, got {capture}")
        return await self._resolve(order_id, capture, actor, reason)

    async def release(self, order_id: int, actor: str = "system", reason: str = "") -> HoldResolution:
        """Void the hold: every held credit goes back to its bucket (status ``released``). Exactly
        once, like :meth:`capture`. Raises HoldNotFound."""
        return await self._resolve(order_id, None, actor, reason)

    async def _resolve(self, order_id: int, capture: int | None, actor: str, reason: str) -> HoldResolution:
        return await self._tx(lambda conn: self._settle_one_statement(conn, order_id, capture, actor, reason),
                              one_statement=True,
                              fallback=lambda conn: self._settle_in_transaction(conn, order_id, capture, actor, reason))

    async def _settle_one_statement(self, conn: AsyncConnection, order_id: int, capture: int | None, actor: str,
                                    reason: str) -> HoldResolution | None:
        """Lock, split, write and the host look-up in one round trip (billing/ledger_sql.py). None:
        nothing written, this settle needs :meth:`_settle_in_transaction` (a host earns on the
        capture, or the snapshot may miss an expiry). ``capture`` None = release."""
        row = (await conn.execute(SETTLE_ONE_STATEMENT, {
            "order_id": order_id, "capture": capture, "reference_id": str(order_id), "actor": actor,
            "reason": reason})).one()
        if row.hold_id is None:
            raise HoldNotFound(order_id)
        if row.status != "open":
            return self._resolution(row, replayed=True)
        if row.take > row.amount:
            raise InvalidAmount(f"capture {row.take} exceeds the {row.amount} credits held for order {order_id}")
        if not row.written:
            return None
        log.info(f"ledger.{row.new_status}", customer_id=row.customer_id, order_id=order_id,
                 captured=row.new_captured, released=row.new_released)
        return self._resolution(SimpleNamespace(**dict(row._mapping, status=row.new_status, captured=row.new_captured,
                                                       released=row.new_released)), replayed=False)

    async def _settle_in_transaction(self, conn: AsyncConnection, order_id: int, capture: int | None, actor: str,
                                     reason: str) -> HoldResolution:
        """The settle as two statements and the host credit, inside ``conn``'s transaction: the
        entries computed here from the locked rows (the same split as ``SETTLE_ONE_STATEMENT``)."""
        status = "released" if capture is None else "captured"
        # One round trip locks the account, then the hold (account lock first, always).
        h = (await conn.execute(LOCK_HOLD, {"order_id": order_id})).first()
        if h is None:
            raise HoldNotFound(order_id)
        if h.status != "open":
            return self._resolution(h, replayed=True)
        customer_id = h.customer_id
        before = _State(h.account_subscription, h.account_pack, h.account_held, h.account_debt)
        captured = 0 if capture is None else capture
        if captured > h.amount:
            raise InvalidAmount(f"capture {captured} exceeds the {h.amount} credits held for order {order_id}")
        cap_sub = min(captured, h.from_subscription)
        cap_pack = captured - cap_sub
        split = {
            "capture": [("subscription", cap_sub), ("pack", cap_pack)],
            "release": [("subscription", h.from_subscription - cap_sub), ("pack", h.from_pack - cap_pack)],
        }
        rows, state = [], before
        for kind, parts in split.items():
            for bucket, part in parts:
                if part:
                    nxt = state.add(bucket, part if kind == "release" else 0, held=-part)
                    rows.append(self._entry(customer_id, kind, bucket, state, nxt,
                                            f"order:{order_id}:{kind}:{bucket}", "order", str(order_id),
                                            actor, reason or f"{kind} for order {order_id}"))
                    state = nxt
        gone = split["release"][0][1]
        if gone and await self._expired_since_hold(conn, customer_id, order_id):
            # The subscription ended while these credits were held: they expire now, as they
            # would have at its end had they not been held.
            nxt = state.add("subscription", -gone)
            rows.append(self._entry(customer_id, "expire", "subscription", state, nxt,
                                    f"order:{order_id}:expire:subscription", "order", str(order_id), actor,
                                    f"subscription ended while held for order {order_id}"))
            state = nxt
        # Account, hold and entries in one statement (billing/ledger_sql.py).
        row = (await conn.execute(SETTLE_WRITE, settle_params(
            customer_id, h.id, dict(subscription=state.subscription, pack=state.pack, held=state.held,
                                    debt=state.debt),
            dict(status=status, captured=captured, released=h.amount - captured), rows))).one()
        if status == "captured":
            await self._after_capture(conn, order_id, customer_id, cap_sub, cap_pack)
        log.info(f"ledger.{status}", customer_id=customer_id, order_id=order_id, captured=captured,
                 released=h.amount - captured)
        return self._resolution(row, replayed=False)

    @staticmethod
    async def _after_capture(conn: AsyncConnection, order_id: int, customer_id: int, cap_sub: int,
                             cap_pack: int) -> None:
        """Host earnings of this capture, in its transaction (billing/host_earnings.py)."""
        await credit_host_for_capture(conn, order_id, customer_id, {"subscription": cap_sub, "pack": cap_pack})

    @staticmethod
    async def _expired_since_hold(conn: AsyncConnection, customer_id: int, order_id: int) -> bool:
        """An ``expire`` of the subscription bucket (not one of an order) came after this order's hold."""
        hold_entry = (sa.select(ENTRY.c.id).where(ENTRY.c.idempotency_key == f"order:{order_id}:hold:subscription")
                      .scalar_subquery())
        return bool((await conn.execute(sa.select(sa.exists().where(
            ENTRY.c.customer_id == customer_id, ENTRY.c.kind == "expire", ENTRY.c.reference_type != "order",
            ENTRY.c.id > hold_entry)))).scalar())

    @staticmethod
    def hold_from_row(row: Any) -> LedgerHold:
        """A ``credit_hold`` row (any row with its ``order_id``, ``customer_id``, ``amount``,
        ``from_subscription``, ``from_pack``, ``status``) read by a caller's own statement, as
        :meth:`get_hold` returns it."""
        return Ledger._hold_result(row, replayed=False)

    @staticmethod
    def _hold_result(row: Any, replayed: bool) -> LedgerHold:
        return LedgerHold(order_id=row.order_id, customer_id=row.customer_id, amount=row.amount,
                          from_subscription=row.from_subscription, from_pack=row.from_pack,
                          status=row.status, replayed=replayed)

    @staticmethod
    def _resolution(row: Any, replayed: bool) -> HoldResolution:
        cap_sub = min(row.captured, row.from_subscription)  # the documented order: subscription first
        return HoldResolution(
            order_id=row.order_id, customer_id=row.customer_id, status=row.status, held=row.amount,
            captured=row.captured, released=row.released,
            captured_from_subscription=cap_sub, captured_from_pack=row.captured - cap_sub,
            released_to_subscription=row.from_subscription - cap_sub,
            released_to_pack=row.from_pack - (row.captured - cap_sub), replayed=replayed,
        )

    # -- reads ------------------------------------------------------------------------------

    async def balances(self, customer_id: int) -> Balances:
        """Available credits by bucket and held credits (zeros for a customer without an account)."""
        async with self._read() as conn:
            row = (await conn.execute(sa.select(ACCOUNT).where(ACCOUNT.c.customer_id == customer_id))).first()
        if row is None:
            return Balances(customer_id=customer_id)
        return Balances(customer_id=customer_id, subscription=row.subscription_credits, pack=row.pack_credits,
                        available=row.subscription_credits + row.pack_credits - row.debt, held=row.held,
                        debt=row.debt)

    async def get_hold(self, order_id: int) -> LedgerHold | None:
        """The hold of ``order_id`` with its current status, or None."""
        async with self._read() as conn:
            row = (await conn.execute(sa.select(HOLD).where(HOLD.c.order_id == order_id))).first()
        return self._hold_result(row, replayed=False) if row else None

    async def list_entries(self, customer_id: int, limit: int = 50, offset: int = 0) -> list[LedgerEntry]:
        """The customer's entries, newest first (``limit`` 1–500)."""
        limit = max(1, min(500, limit))
        async with self._read() as conn:
            rows = (await conn.execute(sa.select(ENTRY).where(ENTRY.c.customer_id == customer_id)
                                       .order_by(ENTRY.c.id.desc()).limit(limit).offset(max(0, offset)))).all()
        return [LedgerEntry.model_validate(r._mapping) for r in rows]
