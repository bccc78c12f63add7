"""The ledger's hot paths in few round trips (billing/ledger_sql.py) on the real PostgreSQL
fixture: a hold is one statement (its own transaction), a capture or release two in one; under concurrency on one account
(holds, captures and releases mixed, both buckets) nothing is overdrawn and the invariants hold."""

from __future__ import annotations

import asyncio
import random

import pytest
import sqlalchemy as sa

from bench._sql_count import count_sql
from billing.errors import CreditDebt, InsufficientCredits
from billing.ledger import Ledger
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


async def test_a_pack_capture_is_three_statements_and_a_subscription_release_three(engine, ledger):
    cid = await funded(engine, ledger, subscription=4, pack=10)
    pack_only, mixed = new_order_id(), new_order_id()
    await ledger.hold(cid, mixed, 6)  # 4 subscription + 2 pack
    await ledger.hold(cid, pack_only, 3)
    with count_sql(engine) as counted:
        await ledger.capture(pack_only, 1)
    # Lock, write, and the host-earnings look-up of the order's telescope (no order row here).
    assert (counted.statements, counted.transactions) == (3, 1)
    with count_sql(engine) as counted:  # released subscription credits: the expiry check runs too
        released = await ledger.release(mixed)
    assert (counted.statements, counted.transactions) == (3, 1)
    assert (released.released_to_subscription, released.released_to_pack) == (4, 2)
    b = await ledger.balances(cid)
    assert (b.subscription, b.pack, b.held) == (4, 9, 0)
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
