"""The ledger's hot paths in few round trips (billing/ledger_sql.py) on the real PostgreSQL
fixture: a hold is one statement (its own transaction), and so is a capture or release unless a
host earns on it or its snapshot is stale (then one transaction on the same connection); both
settle paths write the same entries; under concurrency on one account (holds, captures and releases
mixed, both buckets) nothing is overdrawn and the invariants hold."""

from __future__ import annotations

import asyncio
import random

import pytest
import sqlalchemy as sa

from bench._sql_count import count_sql
from billing.errors import CreditDebt, InsufficientCredits
from billing.ledger import Ledger
from tests.billing.test_host_capture import _grant, _host_cents, _order, _setup
from tests.billing.test_ledger import assert_consistent, funded, key, new_customer, new_order_id


@pytest.fixture(scope="module")
def ledger(engine) -> Ledger:
    return Ledger(engine)


async def test_a_hold_is_one_statement_without_begin_or_commit(engine, ledger):
    cid = await funded(engine, ledger, subscription=3, pack=10)
    with count_sql(engine) as counted:
        held = await ledger.hold(cid, new_order_id(), 5)
    assert (counted.statements, counted.transactions) == (1, 0)
    assert (held.from_subscription, held.from_pack, held.replayed) == (3, 2, False)
    await assert_consistent(engine, cid)


async def test_a_capture_and_a_subscription_release_are_one_statement_each_without_begin_or_commit(engine, ledger):
    cid = await funded(engine, ledger, subscription=4, pack=10)
    pack_only, mixed = new_order_id(), new_order_id()
    await ledger.hold(cid, mixed, 6)  # 4 subscription + 2 pack
    await ledger.hold(cid, pack_only, 3)
    with count_sql(engine) as counted:
        await ledger.capture(pack_only, 1)
    # Lock, split, write and the host look-up of the order's telescope (no order row here).
    assert (counted.statements, counted.transactions, counted.checkouts) == (1, 0, 1)
    with count_sql(engine) as counted:  # released subscription credits: the expiry check is in it too
        released = await ledger.release(mixed)
    assert (counted.statements, counted.transactions, counted.checkouts) == (1, 0, 1)
    assert (released.released_to_subscription, released.released_to_pack) == (4, 2)
    b = await ledger.balances(cid)
    assert (b.subscription, b.pack, b.held) == (4, 9, 0)
    await assert_consistent(engine, cid)


def _entries_shape(entries) -> list[tuple]:
    """What an order's settle entries say, without ids, times and the customer."""
    return [(e.kind, e.bucket, e.amount, e.balance_before, e.balance_after, e.held_before, e.held_after,
             e.reference_type, e.idempotency_key.split(":", 2)[2], e.actor, e.reason.replace(e.reference_id, "N"))
            for e in entries]


@pytest.mark.parametrize("subscription, pack, amount, capture, expired", [
    (4, 10, 6, 0, False), (4, 10, 6, 3, False), (4, 10, 6, 4, False), (4, 10, 6, 5, False), (4, 10, 6, 6, False),
    (4, 10, 6, None, False), (0, 10, 6, 2, False), (9, 0, 6, 2, False), (9, 0, 6, None, False),
    (4, 10, 6, 2, True), (4, 10, 6, None, True), (9, 3, 6, 0, True), (4, 10, 6, 5, True),
])
async def test_one_statement_and_transactional_settles_write_the_same_entries(engine, ledger, subscription, pack,
                                                                              amount, capture, expired):
    """The same settle (capture ``capture`` of ``amount`` held, None = release; ``expired``: the
    subscription ended while held) on two like accounts, one through each path: same entries,
    balances and resolution."""
    seen = []
    for path in ("one statement", "transaction"):
        cid = await funded(engine, ledger, subscription=subscription, pack=pack)
        await ledger.grant(cid, 2, "pack", key("other"), "payment", "pi_other")  # entries before the hold
        order = new_order_id()
        await ledger.hold(cid, order, amount)
        if expired:
            await ledger.expire(cid, key("expire"))
        if path == "one statement":
            with count_sql(engine) as counted:
                res = await (ledger.capture(order, capture) if capture is not None else ledger.release(order))
            assert (counted.statements, counted.transactions) == (1, 0)
        else:
            async with engine.begin() as conn:
                res = await ledger._settle_in_transaction(conn, order, capture, "system", "")
        entries = [e for e in await ledger.list_entries(cid, 20) if e.reference_id == str(order)]
        b = await ledger.balances(cid)
        seen.append((res.model_dump(exclude={"order_id", "customer_id"}), _entries_shape(reversed(entries)),
                     b.model_dump(exclude={"customer_id"})))
        await assert_consistent(engine, cid)
    assert seen[0] == seen[1]
    from_subscription = min(subscription, amount)
    released_subscription = from_subscription - min(capture or 0, from_subscription)
    assert any(e[0] == "expire" for e in seen[0][1]) == (expired and released_subscription > 0)


async def test_a_release_waiting_on_the_account_lock_sees_an_expiry_committed_meanwhile(engine, ledger):
    """An ``expire`` commits while the release waits for the account row: the release's snapshot
    predates that entry, so it settles through the transactional path, and the released
    subscription credits expire (one checkout, one transaction)."""
    cid = await funded(engine, ledger, subscription=5, pack=5)
    order = new_order_id()
    await ledger.hold(cid, order, 4)  # 4 subscription credits
    async with engine.connect() as conn:
        await conn.begin()
        await Ledger.bound(conn).expire(cid, key("expire"))  # holds the account row lock
        with count_sql(engine) as counted:
            release = asyncio.create_task(ledger.release(order))
            for _ in range(400):  # until the release waits for this transaction's row lock
                waiting = (await conn.execute(sa.text(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid' "
                    "AND transactionid = pg_current_xact_id()::xid"))).scalar_one()
                if waiting:
                    break
                await asyncio.sleep(0.05)
            assert waiting
            await conn.commit()
            released = await release
    assert (released.status, released.released_to_subscription) == ("released", 4)
    assert (counted.checkouts, counted.transactions) == (1, 1)  # the fallback's BEGIN, same connection
    kinds = [(e.kind, e.bucket, e.amount) for e in await ledger.list_entries(cid, 2)]
    assert kinds == [("expire", "subscription", -4), ("release", "subscription", 4)]
    b = await ledger.balances(cid)
    assert (b.subscription, b.pack, b.held) == (0, 5, 0)
    await assert_consistent(engine, cid)


async def test_a_hold_refused_moves_nothing_and_says_why(engine, ledger):
    cid = await funded(engine, ledger, subscription=2, pack=1)
    with pytest.raises(InsufficientCredits) as refused:
        await ledger.hold(cid, new_order_id(), 4)
    assert refused.value.shortfall == 1
    with pytest.raises(InsufficientCredits):  # no account row at all: nothing available
        await ledger.hold(await new_customer(engine), new_order_id(), 1)
    async with engine.begin() as conn:
        await conn.execute(sa.text("UPDATE credit_account SET debt = 1 WHERE customer_id = :c"), {"c": cid})
    with pytest.raises(CreditDebt):
        await ledger.hold(cid, new_order_id(), 1)
    async with engine.begin() as conn:
        await conn.execute(sa.text("UPDATE credit_account SET debt = 0 WHERE customer_id = :c"), {"c": cid})
    b = await ledger.balances(cid)
    assert (b.subscription, b.pack, b.held) == (2, 1, 0)
    async with engine.connect() as conn:
        holds = (await conn.execute(sa.text("SELECT count(*) FROM credit_hold WHERE customer_id = :c"),
                                    {"c": cid})).scalar_one()
    assert holds == 0
    await assert_consistent(engine, cid)


async def test_concurrent_holds_and_settles_on_one_account_never_overdraw(engine, ledger):
    """60 holds of 1–4 credits race on an account that affords fewer, each held order then captured
    in part or released while the other holds run: the account never goes below zero, what was
    granted = available + captured, and the entry chain is intact."""
    rng = random.Random(16)
    cid = await funded(engine, ledger, subscription=25, pack=35)
    orders = [(new_order_id(), rng.randint(1, 4), rng.random()) for _ in range(60)]

    async def life(order: int, amount: int, fate: float) -> int:
        try:
            await ledger.hold(cid, order, amount)
        except InsufficientCredits:
            return 0
        if fate < 0.3:
            await ledger.release(order)
            return 0
        return (await ledger.capture(order, rng.randint(0, amount))).captured

    captured = sum(await asyncio.gather(*(life(*o) for o in orders)))
    b = await ledger.balances(cid)
    assert b.held == 0 and min(b.subscription, b.pack) >= 0
    assert b.available + captured == 60
    await assert_consistent(engine, cid)


async def test_a_bound_ledger_hold_rolls_back_with_the_callers_transaction(engine, ledger):
    cid = await funded(engine, ledger, pack=5)
    order = new_order_id()
    async with engine.connect() as conn:
        await conn.begin()
        await Ledger.bound(conn).hold(cid, order, 2)
        await conn.rollback()
    assert (await ledger.balances(cid)).held == 0
    assert await ledger.get_hold(order) is None
    await ledger.grant(cid, 1, "pack", key(), "payment", "pi_after")
    await assert_consistent(engine, cid)


async def _telescope_totals(engine, cid: int, tid: int) -> tuple[int, int] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.text(
            "SELECT credits_captured, orders FROM customer_telescope_total WHERE customer_id = :c AND telescope_id = :t"),
            {"c": cid, "t": tid})).first()
    return tuple(row) if row else None


async def test_captures_on_a_telescope_without_a_host_add_the_totals_in_the_one_statement(engine, ledger):
    host, cid, tid = await _setup(engine)
    async with engine.begin() as conn:
        await conn.execute(sa.text("UPDATE telescope SET host_customer_id = NULL WHERE id = :t"), {"t": tid})
    await _grant(engine, ledger, cid, 20, "pack", 3000)
    first, second, released = [await _order(engine, cid, tid) for _ in range(3)]
    for order in (first, second, released):
        await ledger.hold(cid, order, 5)
    with count_sql(engine) as counted:
        await ledger.capture(first, 3)
        await ledger.capture(second, 5)
        await ledger.release(released)
    assert (counted.statements, counted.transactions, counted.checkouts) == (3, 0, 3)
    assert await _telescope_totals(engine, cid, tid) == (8, 2)  # a release is no observation
    assert await _host_cents(engine, first) == 0
    await assert_consistent(engine, cid)


async def test_concurrent_captures_on_a_hosted_telescope_settle_once_and_credit_the_host_once(engine, ledger):
    """A host earns on the capture: the one statement writes nothing and the settle runs as one
    transaction on the same connection; 10 concurrent captures of one hold resolve it once."""
    host, cid, tid = await _setup(engine, share=30)
    await _grant(engine, ledger, cid, 10, "pack", 1500)
    order = await _order(engine, cid, tid)
    await ledger.hold(cid, order, 5)
    with count_sql(engine) as counted:
        results = await asyncio.gather(*(ledger.capture(order, 3) for _ in range(10)))
    assert sum(not r.replayed for r in results) == 1
    assert {(r.status, r.captured, r.released) for r in results} == {("captured", 3, 2)}
    assert counted.checkouts == 10 and counted.transactions >= 1
    assert await _host_cents(engine, order) == 135  # 30 % × 3 × 150
    assert await _telescope_totals(engine, cid, tid) == (3, 1)
    b = await ledger.balances(cid)
    assert (b.pack, b.held) == (7, 0)
    await assert_consistent(engine, cid)
