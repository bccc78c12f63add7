"""Ledger throughput: holds per second on one hot account and hold+settle across 100 accounts,
beside a bare single-statement conditional UPDATE loop on the same database (the ceiling), in one run.

    .venv/bin/python -m bench.ledger [--ops 2000] [--concurrency 16]

Starts its own embedded PostgreSQL (migrated, in a temporary directory) unless
``STELLAR_DATABASE__URL`` is set, in which case that database must already be migrated
(``stellar db upgrade``); the bench adds 202 ``bench-…@example.invalid`` customers to it (101 for the ledger, 101
for the ceiling, whose bare UPDATEs write no entries).

* ceiling: ``UPDATE credit_account SET pack_credits = pack_credits - 1, held = held + 1 WHERE
  customer_id = :c AND pack_credits >= 1`` — one statement, one transaction, through the same
  SQLAlchemy engine and pool: the least a hold can cost (no lock wait, no entry, no hold row);
* ``Ledger.hold`` (1 credit): lock the account row, idempotency lookup, update, hold row, entries;
* ``Ledger.hold`` + ``Ledger.settle`` across 100 accounts: one order's full two-phase life.

Then, for the hold + settle pair beside its ceiling: round trips per operation (statements,
BEGIN/COMMIT and the pool's pre-ping, counted), CPU per operation in this process and in PostgreSQL,
and a cProfile of this process by package. The invariant check runs on the bench's customers at the
end. ``main()`` prints a markdown table and returns it.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Awaitable, Callable

import psutil
import sqlalchemy as sa

if __package__ in (None, ""):  # `python bench/ledger.py` as well as `python -m bench.ledger`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._sql_count import count_sql  # noqa: E402
from billing.ledger import Ledger  # noqa: E402
from billing.ledger_check import check_invariants  # noqa: E402
from core.database import make_engine  # noqa: E402
from bench._cpu_profile import cpu_profiled  # noqa: E402
from bench._sampler import _package  # noqa: E402
from core.logging import configure_logging  # noqa: E402

ACCOUNTS = 100
#: Alternating slices of each ceiling / Stellar pair.
ROUNDS = 5
CEILING_SQL = sa.text("UPDATE credit_account SET pack_credits = pack_credits - 1, held = held + 1 "
                      "WHERE customer_id = :c AND pack_credits >= 1")


async def _timed(op: Callable[[int], Awaitable[object]], ops: range, concurrency: int) -> float:
    """Run ``op(i)`` for every i of ``ops`` from ``concurrency`` workers; return seconds elapsed."""
    counter = iter(ops)

    async def worker() -> None:
        for i in counter:
            await op(i)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0


async def _customers(engine, n: int) -> list[int]:
    tag = uuid.uuid4().hex[:8]
    async with engine.begin() as conn:
        rows = await conn.execute(sa.text(
            "INSERT INTO customer (email, name, created_at) "
            "SELECT 'bench-' || :tag || '-' || g || '@example.invalid', 'bench', now() "
            "FROM generate_series(1, :n) g RETURNING id"), {"tag": tag, "n": n})
        return [r[0] for r in rows]


def _postgres_cpu() -> float:
    """CPU seconds used so far by the PostgreSQL server processes this process started (0 when the
    database is not this process's child)."""
    total = 0.0
    for p in psutil.Process().children(recursive=True):
        try:
            if "postgres" in p.name():
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _round_trips(engine) -> list[int]:
    """A one-element counter of the round trips of every connection of ``engine``: its prepared
    statements (SQLAlchemy's ``before_cursor_execute``; prepared once per connection, then one round
    trip each) and the simple queries asyncpg's query logger sees — BEGIN, COMMIT, ROLLBACK and the
    pool's pre-ping. The logger is attached when a connection opens: use it on a fresh engine."""
    sent = [0]

    def count(*_args) -> None:
        sent[0] += 1

    def attach(dbapi_conn, _record) -> None:
        dbapi_conn.driver_connection.add_query_logger(count)

    sa.event.listen(engine.sync_engine, "connect", attach)
    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    return sent


async def _profile(op: Callable[[int], Awaitable[object]], ops: range, concurrency: int) -> dict[str, float]:
    """Run ``op`` over ``ops`` under cProfile on a CPU-time clock (waiting for PostgreSQL and the
    machine's other processes do not count): own time share by package of this process's CPU."""
    shares: dict[str, float] = {}
    for (path, _, _), (_, _, own, _, _) in (await cpu_profiled(_timed(op, ops, concurrency))).items():
        package = "asyncio/stdlib" if path.startswith("~") or "/lib/python3" in path and "site-packages" not in path \
            else _package(path)
        shares[package] = shares.get(package, 0.0) + own
    total = sum(shares.values()) or 1.0
    return {k: v / total for k, v in sorted(shares.items(), key=lambda kv: -kv[1])}


async def _run(url: str, ops: int, concurrency: int) -> str:
    engine = make_engine(url, pool_size=concurrency)
    ledger = Ledger(engine)
    try:
        hot, *spread = await _customers(engine, 1 + ACCOUNTS)
        # The ceiling runs on its own accounts: its bare UPDATEs write no entries, so on the
        # ledger's accounts they would (rightly) break the entry chain the invariant check verifies.
        c_hot, *c_spread = await _customers(engine, 1 + ACCOUNTS)
        async with engine.begin() as conn:
            await conn.execute(sa.text(
                "INSERT INTO credit_account (customer_id, subscription_credits, pack_credits, held, updated_at) "
                "SELECT unnest(CAST(:ids AS integer[])), 0, :credits, 0, now()"),
                {"ids": [c_hot, *c_spread], "credits": 2 * ops})
        run = uuid.uuid4().hex[:8]
        for cid in (hot, *spread):
            await ledger.grant(cid, 2 * ops, "pack", f"bench:{run}:{cid}", "admin", "bench")
        # Unique order ids across runs, one per operation whatever the sizes.
        order_ids = itertools.count(int(time.time() * 1000) * 100_000)

        async def ceiling(cid_for: Callable[[int], int], on=engine) -> Callable[[int], Awaitable[object]]:
            async def op(i: int) -> None:
                async with on.begin() as conn:
                    await conn.execute(CEILING_SQL, {"c": cid_for(i)})
            return op

        async def hold_hot(i: int) -> None:
            await ledger.hold(hot, next(order_ids), 1, actor="bench")

        async def hold_settle(i: int, through: Ledger = ledger) -> None:
            order = next(order_ids)
            await through.hold(spread[i % ACCOUNTS], order, 2, actor="bench")
            await through.capture(order, 1, actor="bench", reason="bench")

        spread_ceiling_op = await ceiling(lambda i: c_spread[i % ACCOUNTS])

        rows = []
        for pair in [
            [("ceiling: conditional UPDATE, hot account", await ceiling(lambda i: c_hot)),
             ("Ledger.hold, hot account", hold_hot)],
            [(f"ceiling: conditional UPDATE, {ACCOUNTS} accounts", spread_ceiling_op),
             (f"Ledger.hold + settle, {ACCOUNTS} accounts", hold_settle)],
        ]:
            # Ceiling and Stellar alternate in ROUNDS slices, so a change in the shared machine's
            # load falls on both rather than on whichever ran second.
            seconds = [0.0, 0.0]
            for r in range(ROUNDS):
                for k, (_, op) in enumerate(pair):
                    seconds[k] += await _timed(op, range(r * ops // ROUNDS, (r + 1) * ops // ROUNDS), concurrency)
            rows += [(name, ops / t) for (name, _), t in zip(pair, seconds)]

        # What one operation asks of PostgreSQL, counted apart from the timed runs.
        sample = min(ops, 20)
        with count_sql(engine) as per_hold:
            for i in range(sample):
                await ledger.hold(hot, next(order_ids), 1, actor="bench")
        with count_sql(engine) as per_pair:
            for i in range(sample):
                await hold_settle(ops + i)
        sql = {"hold": per_hold.per(sample), "pair": per_pair.per(sample)}
        # Round trips as asyncpg sends them (statements, BEGIN/COMMIT and the pre-ping's queries), on
        # an engine of its own whose connections all carry the counter.
        counting = make_engine(url, pool_size=1)
        sent = _round_trips(counting)
        try:
            round_trips = {}
            for name, op in (("ceiling", await ceiling(lambda i: c_spread[i % ACCOUNTS], counting)),
                             ("pair", lambda i: hold_settle(ops + sample + i, Ledger(counting)))):
                await op(0)  # connect and prepare first
                sent[0] = 0
                for i in range(1, sample + 1):
                    await op(i)
                await asyncio.sleep(0)  # the query logger reports with call_soon
                round_trips[name] = sent[0] / sample
        finally:
            await counting.dispose()
        # CPU per operation: this process (SQLAlchemy, asyncpg, the ledger) and PostgreSQL.
        cpu = {}
        window = range(3 * ops, 3 * ops + ops // 2)
        for name, op in (("ceiling", spread_ceiling_op), ("pair", hold_settle)):
            own, pg = time.process_time(), _postgres_cpu()
            await _timed(op, window, concurrency)
            cpu[name] = ((time.process_time() - own) / len(window) * 1e6, (_postgres_cpu() - pg) / len(window) * 1e6)
        profile = await _profile(hold_settle, range(4 * ops, 4 * ops + ops // 2), concurrency)

        t0 = time.perf_counter()
        violations = [v for cid in (hot, *spread) for v in await check_invariants(engine, cid)]
        check_s = time.perf_counter() - t0
    finally:
        await engine.dispose()

    (_, hot_ceiling), (hot_name, hot_hold), (_, spread_ceiling), (pair_name, spread_pair) = rows
    lines = [
        f"Ledger bench: {ops} operations per row, {concurrency} concurrent workers, PostgreSQL at {_where(url)}. "
        f"Each row's ceiling is a bare conditional UPDATE (one statement, one transaction) through the same "
        f"engine, the two run in {ROUNDS} alternating slices.",
        "",
        "| scenario | Stellar ops/s | ceiling ops/s | ratio | goal | SQL per operation |",
        "|---|---:|---:|---:|---:|---|",
        f"| {hot_name} | {hot_hold:,.0f} | {hot_ceiling:,.0f} | {hot_hold / hot_ceiling:.0%} | ≥ 50 % | "
        f"{sql['hold']} |",
        f"| {pair_name} | {spread_pair:,.0f} | {spread_ceiling:,.0f} | "
        f"{spread_pair / spread_ceiling:.0%} | ≥ 30 % | {sql['pair']} |",
        "",
        "SQL per operation: per hold, and per hold + settle pair (two operations).",
        "",
        f"Where a hold + settle pair's time goes, beside one ceiling UPDATE: **{round_trips['pair']:.1f} round "
        f"trips** vs {round_trips['ceiling']:.1f} (counted over {sample} sequential pairs: "
        "statements, BEGIN/COMMIT, and the pool's pre-ping at every checkout, which SQLAlchemy's asyncpg "
        "dialect sends as BEGIN, `;`, ROLLBACK — 3 round trips, the engine's production setting, "
        "core/database.py); CPU per pair "
        f"**{cpu['pair'][0]:.0f} µs in this process** (SQLAlchemy, asyncpg, the ledger) and "
        f"**{cpu['pair'][1]:.0f} µs in PostgreSQL**, vs {cpu['ceiling'][0]:.0f} µs and {cpu['ceiling'][1]:.0f} µs "
        f"per ceiling UPDATE ({len(window)} operations at concurrency {concurrency}; both share the machine's "
        "cores). This process's own CPU time by package (cProfile, "
        f"{len(window)} pairs): " + ", ".join(f"{k} {v:.0%}" for k, v in list(profile.items())[:6]) + ".",
        "",
        "The ceiling is a pre-ping, BEGIN, the UPDATE and COMMIT. `Ledger.hold` is a pre-ping and one statement "
        "run as its own transaction (billing/ledger_sql.py: lock, checks, move, hold row and entries as CTEs; "
        "no BEGIN or COMMIT to send), so it can beat the ceiling; a capture or release is the same: one "
        "statement locks the account then the hold, writes account, hold, entries and the customer↔telescope "
        "totals and looks up the telescope's host (a hosted capture, or a snapshot older than the account row's "
        "last change when subscription credits are released, settles instead in one transaction on the same "
        "connection).",
        "",
        f"Invariant check on the {1 + ACCOUNTS} bench accounts: "
        f"{'OK' if not violations else f'{len(violations)} VIOLATIONS'} ({check_s:.2f} s).",
    ]
    return "\n".join(lines)


def _where(url: str) -> str:
    return url.split("@", 1)[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> str:
    """Run the bench; print and return the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000, help="operations per scenario")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent workers (and pool size)")
    args = parser.parse_args(argv)
    configure_logging("WARNING")  # one INFO line per ledger operation would drown the table
    url = os.environ.get("STELLAR_DATABASE__URL")
    pg = tmp = None
    if not url:
        from core.embedded_postgres import EmbeddedPostgres
        from core.migrate import upgrade

        tmp = tempfile.TemporaryDirectory(prefix="stellar-bench-pg-")
        pg = EmbeddedPostgres(Path(tmp.name), _free_port(), database="stellar_bench")
        pg.start()
        url = pg.url()
        upgrade(url)
    else:
        from core.settings import DatabaseSettings

        url = DatabaseSettings(url=url).effective_url()  # accept postgres:// forms like the app does
    try:
        table = asyncio.run(_run(url, args.ops, args.concurrency))
    finally:
        if pg:
            pg.stop()
        if tmp:
            tmp.cleanup()
    print(table)
    return table


if __name__ == "__main__":
    main()
