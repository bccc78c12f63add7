"""The credit ledger on the real PostgreSQL fixture: exactly-once operations, two phases, no
overdraft under concurrency, invariants after random work."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest
import sqlalchemy as sa

from billing.errors import (
    HoldNotFound,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
    UnknownCustomer,
)
from billing.ledger import Ledger
from billing.ledger_check import check_invariants


@pytest.fixture(scope="module")
def ledger(engine) -> Ledger:
    return Ledger(engine)


async def new_customer(engine) -> int:
    async with engine.begin() as conn:
        return (await conn.execute(sa.text(
            "INSERT INTO customer (email, name, created_at) VALUES (:e, 'ledger test', now()) RETURNING id"),
            {"e": f"ledger-{uuid.uuid4()}@example.com"})).scalar_one()


def new_order_id() -> int:
    return uuid.uuid4().int >> 66  # 62 random bits: fits BIGINT, never collides across tests


def key(label: str = "k") -> str:
    return f"test:{label}:{uuid.uuid4()}"


async def funded(engine, ledger: Ledger, subscription: int = 0, pack: int = 0) -> int:
    cid = await new_customer(engine)
    if subscription:
        await ledger.grant(cid, subscription, "subscription", key("inv"), "invoice", "in_test")
    if pack:
        await ledger.grant(cid, pack, "pack", key("pay"), "payment", "pi_test")
    return cid


async def assert_consistent(engine, cid: int) -> None:
    violations = await check_invariants(engine, cid)
    assert violations == [], [str(v) for v in violations]


# --- grant / adjust / expire -----------------------------------------------------------------


async def test_grant_twice_with_one_key_credits_once_and_returns_the_first_result(engine, ledger):
    cid = await new_customer(engine)
    k = key("invoice")
    first = await ledger.grant(cid, 60, "subscription", k, "invoice", "in_1", actor="stripe", reason="Nebula")
    again = await ledger.grant(cid, 60, "subscription", k, "invoice", "in_1", actor="stripe", reason="Nebula")
    assert not first.replayed and again.replayed
    assert again.model_dump(exclude={"replayed"}) == first.model_dump(exclude={"replayed"})
    b = await ledger.balances(cid)
    assert (b.subscription, b.pack, b.available, b.held) == (60, 0, 60, 0)
    await assert_consistent(engine, cid)


async def test_reusing_a_key_for_another_amount_or_customer_is_a_conflict(engine, ledger):
    cid, other = await new_customer(engine), await new_customer(engine)
    k = key("payment")
    await ledger.grant(cid, 50, "pack", k, "payment", "pi_1")
    with pytest.raises(IdempotencyConflict):
        await ledger.grant(cid, 55, "pack", k, "payment", "pi_1")
    with pytest.raises(IdempotencyConflict):
        await ledger.grant(other, 50, "pack", k, "payment", "pi_1")
    assert (await ledger.balances(cid)).pack == 50
    assert (await ledger.balances(other)).available == 0


async def test_grant_rejects_bad_input_and_unknown_customers(engine, ledger):
    cid = await new_customer(engine)
    with pytest.raises(InvalidAmount):
        await ledger.grant(cid, 0, "pack", key(), "payment", "pi")
    with pytest.raises(InvalidAmount):
        await ledger.grant(cid, 5, "gold", key(), "payment", "pi")
    with pytest.raises(UnknownCustomer):
        await ledger.grant(2**31 - 1, 5, "pack", key(), "payment", "pi")


async def test_expire_zeroes_subscription_credits_and_keeps_pack_and_held(engine, ledger):
    cid = await funded(engine, ledger, subscription=20, pack=15)
    await ledger.hold(cid, new_order_id(), 5)  # takes 5 subscription credits into held
    k = key("expire")
    res = await ledger.expire(cid, k, actor="stripe", reason="subscription cancelled, period ended")
    assert (res.kind, res.bucket, res.amount) == ("expire", "subscription", -15)
    b = await ledger.balances(cid)
    assert (b.subscription, b.pack, b.held) == (0, 15, 5)
    # a repeat after new subscription credits arrived expires nothing more
    await ledger.grant(cid, 20, "subscription", key("inv"), "invoice", "in_2")
    again = await ledger.expire(cid, k)
    assert again.replayed and again.amount == -15
    assert (await ledger.balances(cid)).subscription == 20
    await assert_consistent(engine, cid)


async def test_adjust_up_and_down_but_never_below_zero(engine, ledger):
    cid = await funded(engine, ledger, pack=10)
    up = await ledger.adjust(cid, 5, actor="support:alice", reason="goodwill", idempotency_key=key("adj"))
    assert (up.kind, up.bucket, up.amount, up.balance_after) == ("adjustment", "pack", 5, 15)
    k = key("adj")
    down = await ledger.adjust(cid, -12, actor="support:alice", reason="duplicate purchase", idempotency_key=k)
    assert down.amount == -12 and down.balance_after == 3
    assert (await ledger.adjust(cid, -12, actor="support:alice", reason="duplicate purchase",
                                idempotency_key=k)).replayed
    with pytest.raises(InsufficientCredits) as exc:
        await ledger.adjust(cid, -4, actor="support:alice", reason="too much", idempotency_key=key("adj"))
    assert exc.value.shortfall == 1
    with pytest.raises(InvalidAmount):
        await ledger.adjust(cid, 0, actor="support:alice", reason="nothing", idempotency_key=key("adj"))
    assert (await ledger.balances(cid)).pack == 3
    await assert_consistent(engine, cid)


# --- hold / settle / release ------------------------------------------------------------------


async def test_hold_spends_subscription_credits_first_then_pack(engine, ledger):
    cid = await funded(engine, ledger, subscription=6, pack=10)
    order = new_order_id()
    h = await ledger.hold(cid, order, 9, actor="order-workflow")
    assert (h.amount, h.from_subscription, h.from_pack, h.status, h.replayed) == (9, 6, 3, "open", False)
    b = await ledger.balances(cid)
    assert (b.subscription, b.pack, b.held) == (0, 7, 9)
    entries = await ledger.list_entries(cid, limit=2)
    assert [(e.kind, e.bucket, e.amount, e.balance_before, e.balance_after, e.held_before, e.held_after)
            for e in entries] == [("hold", "pack", -3, 10, 7, 6, 9), ("hold", "subscription", -6, 16, 10, 0, 6)]
    assert {(e.reference_type, e.reference_id, e.actor) for e in entries} == {("order", str(order), "order-workflow")}
    await assert_consistent(engine, cid)


async def test_repeated_hold_returns_the_first_hold_and_moves_nothing(engine, ledger):
    cid = await funded(engine, ledger, subscription=10)
    order = new_order_id()
    first = await ledger.hold(cid, order, 4)
    again = await ledger.hold(cid, order, 4)
    assert again.replayed and again.model_dump(exclude={"replayed"}) == first.model_dump(exclude={"replayed"})
    assert (await ledger.balances(cid)).held == 4
    with pytest.raises(IdempotencyConflict):
        await ledger.hold(cid, order, 5)
    await assert_consistent(engine, cid)


async def test_hold_beyond_the_balance_raises_insufficient_credits_with_shortfall(engine, ledger):
    cid = await funded(engine, ledger, subscription=100, pack=50)
    with pytest.raises(InsufficientCredits) as exc:
        await ledger.hold(cid, new_order_id(), 189)  # docs/pricing.md §3 example 3 against a Quasar + pack balance
    assert (exc.value.requested, exc.value.available, exc.value.shortfall) == (189, 150, 39)
    assert (await ledger.balances(cid)).available == 150
    nobody = await new_customer(engine)  # no account at all
    with pytest.raises(InsufficientCredits) as exc:
        await ledger.hold(nobody, new_order_id(), 3)
    assert exc.value.shortfall == 3
    with pytest.raises(InvalidAmount):
        await ledger.hold(cid, new_order_id(), 0)


async def test_partial_capture_takes_subscription_credits_first_and_releases_the_rest(engine, ledger):
    cid = await funded(engine, ledger, subscription=4, pack=10)
    order = new_order_id()
    await ledger.hold(cid, order, 10)  # 4 subscription + 6 pack
    s = await ledger.capture(order, 5, actor="order-workflow", reason="aborted by customer at 50 %")
    assert (s.status, s.held, s.captured, s.released) == ("captured", 10, 5, 5)
    assert (s.captured_from_subscription, s.captured_from_pack) == (4, 1)
    assert (s.released_to_subscription, s.released_to_pack) == (0, 5)
    b = await ledger.balances(cid)
    assert (b.subscription, b.pack, b.held) == (0, 9, 0)
    kinds = [(e.kind, e.bucket, e.amount, e.held_before - e.held_after) for e in await ledger.list_entries(cid, 3)]
    assert kinds == [("release", "pack", 5, 5), ("capture", "pack", 0, 1), ("capture", "subscription", 0, 4)]
    await assert_consistent(engine, cid)


async def test_a_hold_is_resolved_exactly_once(engine, ledger):
    cid = await funded(engine, ledger, pack=30)
    settled, released = new_order_id(), new_order_id()
    await ledger.hold(cid, settled, 10)
    await ledger.hold(cid, released, 10)
    first = await ledger.capture(settled, 7)
    assert (await ledger.capture(settled, 2)).model_dump(exclude={"replayed"}) == first.model_dump(exclude={"replayed"})
    after_release = await ledger.release(settled)
    assert after_release.replayed and (after_release.status, after_release.captured) == ("captured", 7)
    r = await ledger.release(released, reason="Voyager error")
    assert (r.status, r.captured, r.released, r.replayed) == ("released", 0, 10, False)
    late = await ledger.capture(released, 10)
    assert late.replayed and (late.status, late.captured) == ("released", 0)
    b = await ledger.balances(cid)
    assert (b.available, b.held) == (23, 0)
    assert (await ledger.get_hold(settled)).status == "captured"
    await assert_consistent(engine, cid)


async def test_capture_above_the_hold_is_refused_and_the_hold_stays_open(engine, ledger):
    cid = await funded(engine, ledger, pack=10)
    order = new_order_id()
    await ledger.hold(cid, order, 6)
    with pytest.raises(InvalidAmount):
        await ledger.capture(order, 7)
    with pytest.raises(InvalidAmount):
        await ledger.capture(order, -1)
    assert (await ledger.get_hold(order)).status == "open"
    with pytest.raises(HoldNotFound):
        await ledger.capture(new_order_id(), 1)
    with pytest.raises(HoldNotFound):
        await ledger.release(new_order_id())


# --- concurrency ------------------------------------------------------------------------------


async def test_100_concurrent_holds_on_an_account_that_affords_k_get_exactly_k(engine, ledger):
    k, each = 37, 3
    cid = await funded(engine, ledger, subscription=20, pack=k * each - 20 + 2)  # 2 left over: not enough
    results = await asyncio.gather(*(ledger.hold(cid, new_order_id(), each) for _ in range(100)),
                                   return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    assert len(ok) == k and len(refused) == 100 - k, [r for r in results if isinstance(r, BaseException)
                                                      and not isinstance(r, InsufficientCredits)]
    b = await ledger.balances(cid)
    assert (b.available, b.held) == (2, k * each)
    await assert_consistent(engine, cid)


async def test_concurrent_repeats_of_one_hold_move_credits_once(engine, ledger):
    cid = await funded(engine, ledger, pack=50)
    order = new_order_id()
    results = await asyncio.gather(*(ledger.hold(cid, order, 5) for _ in range(20)))
    assert sum(not r.replayed for r in results) == 1
    assert (await ledger.balances(cid)).held == 5
    await assert_consistent(engine, cid)


async def test_concurrent_settle_and_release_resolve_the_hold_once(engine, ledger):
    cid = await funded(engine, ledger, pack=50)
    order = new_order_id()
    await ledger.hold(cid, order, 10)
    calls = [ledger.capture(order, 4) if i % 2 else ledger.release(order) for i in range(20)]
    results = await asyncio.gather(*calls)
    assert sum(not r.replayed for r in results) == 1
    first = next(r for r in results if not r.replayed)
    assert all(r.model_dump(exclude={"replayed"}) == first.model_dump(exclude={"replayed"}) for r in results)
    b = await ledger.balances(cid)
    assert (b.available, b.held) == (50 - first.captured, 0)
    await assert_consistent(engine, cid)


# --- invariants -------------------------------------------------------------------------------


async def test_invariants_hold_after_a_random_sequence_of_operations(engine, ledger):
    rng = random.Random(4242)
    customers = [await new_customer(engine) for _ in range(4)]
    model = {c: {"subscription": 0, "pack": 0, "held": 0} for c in customers}
    open_holds: dict[int, tuple[int, int]] = {}  # order → (customer, amount)
    held_at_expiry: set[int] = set()  # orders that held credits when their customer's subscription ended
    used_keys: list[tuple] = []

    for _ in range(250):
        cid = rng.choice(customers)
        m = model[cid]
        op = rng.choice(["grant", "grant", "hold", "hold", "hold", "settle", "release", "expire", "adjust", "repeat"])
        if op == "grant":
            bucket, amount = rng.choice(["subscription", "pack"]), rng.randint(1, 30)
            k = key("g")
            await ledger.grant(cid, amount, bucket, k, "invoice", "x")
            m[bucket] += amount
            used_keys.append(("grant", cid, amount, bucket, k))
        elif op == "hold":
            amount = rng.randint(1, 25)
            order = new_order_id()
            try:
                h = await ledger.hold(cid, order, amount)
            except InsufficientCredits:
                assert m["subscription"] + m["pack"] < amount
                continue
            assert h.from_subscription == min(amount, m["subscription"])
            m["subscription"] -= h.from_subscription
            m["pack"] -= h.from_pack
            m["held"] += amount
            open_holds[order] = (cid, amount)
            used_keys.append(("hold", cid, amount, order))
        elif op in ("settle", "release") and open_holds:
            order = rng.choice(sorted(open_holds))
            owner, amount = open_holds.pop(order)
            res = await (ledger.capture(order, rng.randint(0, amount)) if op == "settle" else ledger.release(order))
            mo = model[owner]
            mo["held"] -= amount
            if order not in held_at_expiry:  # else those subscription credits expire on release
                mo["subscription"] += res.released_to_subscription
            mo["pack"] += res.released_to_pack
        elif op == "expire":
            await ledger.expire(cid, key("e"))
            m["subscription"] = 0
            held_at_expiry.update(o for o, (owner, _) in open_holds.items() if owner == cid)
        elif op == "adjust":
            delta = rng.randint(-10, 10) or 1
            try:
                await ledger.adjust(cid, delta, actor="support", reason="random", idempotency_key=key("a"))
                m["pack"] += delta
            except InsufficientCredits:
                assert m["pack"] + delta < 0
        elif op == "repeat" and used_keys:
            prior = rng.choice(used_keys)
            if prior[0] == "grant":
                assert (await ledger.grant(prior[1], prior[2], prior[3], prior[4], "invoice", "x")).replayed
            else:
                assert (await ledger.hold(prior[1], prior[3], prior[2])).replayed

    for cid in customers:
        b = await ledger.balances(cid)
        assert (b.subscription, b.pack, b.held) == tuple(model[cid].values()), cid
        await assert_consistent(engine, cid)


async def test_check_invariants_reports_a_tampered_account(engine, ledger):
    cid = await funded(engine, ledger, pack=10)
    await ledger.hold(cid, new_order_id(), 4)
    async with engine.begin() as conn:  # tamper inside a transaction that is rolled back
        await conn.execute(sa.text("UPDATE credit_account SET pack_credits = pack_credits + 5, held = 0 "
                                   "WHERE customer_id = :c"), {"c": cid})
        await conn.execute(sa.text("UPDATE credit_hold SET captured = 1 WHERE customer_id = :c"), {"c": cid})
        checks = {v.check for v in await check_invariants(conn, cid)}
        await conn.rollback()
    assert {"pack_balance", "held_entries", "held_open_holds", "hold_open", "hold_entries"} <= checks
    await assert_consistent(engine, cid)


async def test_list_entries_pages_newest_first(engine, ledger):
    cid = await new_customer(engine)
    for i in range(1, 6):
        await ledger.grant(cid, i, "pack", key("p"), "payment", f"pi_{i}")
    page1 = await ledger.list_entries(cid, limit=2)
    page2 = await ledger.list_entries(cid, limit=2, offset=2)
    assert [e.amount for e in page1 + page2] == [5, 4, 3, 2]
    assert all(e.created_at.tzinfo is not None for e in page1)


async def test_a_bound_ledger_commits_and_rolls_back_with_the_callers_transaction(engine, ledger):
    cid = await new_customer(engine)
    async with engine.connect() as conn:
        async with conn.begin() as tx:
            await Ledger.bound(conn).grant(cid, 10, "pack", key("bound"), "payment", "pi_rolled_back")
            assert (await Ledger.bound(conn).balances(cid)).pack == 10  # visible inside
            await tx.rollback()
    assert (await ledger.balances(cid)).available == 0
    k = key("bound")
    async with engine.begin() as conn:
        bound = Ledger.bound(conn)
        await bound.grant(cid, 10, "pack", k, "payment", "pi_ok")
        assert (await bound.grant(cid, 10, "pack", k, "payment", "pi_ok")).replayed
    assert (await ledger.balances(cid)).pack == 10
    await assert_consistent(engine, cid)
