"""Chaos benchmark: orders and credits through real outages; writes bench/chaos.md.

    make chaos                      # the full run (100 orders, every fault; about an hour)
    make chaos ARGS="--orders 10 --worker-kills 1 --temporal-kills 0 --db-outages 1 --db-outage 30 \
                     --voyager-down 0 --drop-interval 0 --voyager-drops 1"

The system (bench/_chaos_stack.py), each component in its own process: PostgreSQL, the Temporal
dev server on a SQLite file, the worker, the API; the Voyager simulator in this process. ``orders``
orders from ``customers`` Nebula customers go through ``POST /api/orders``: catalogue targets
(M42, M1, M45, M35, M78, NGC2244, IC434), every third moon-down, every fifth over two nights.

The scenario, in order (a fault whose count is 0 is skipped):

1. the simulator drops every connection every ``drop_interval`` s for the whole run;
2. the first burst of orders (half of them; all when Voyager is never down) is posted, then
   PostgreSQL is stopped for ``db_outage`` s (outage 1: right after a burst of orders);
3. worker kill -9 and restart (1); one single Voyager drop per ``voyager_drops``;
4. once a session is observing, PostgreSQL stopped again (outage 2: mid-session), then the Temporal
   dev server killed and restarted on its SQLite file, then worker kill 2;
5. Voyager down for ``voyager_down`` s; the second burst is posted meanwhile, so its orders are
   ``held`` before submit, and PostgreSQL is stopped (outage 3: orders held before submit), then
   worker kill 3; Voyager comes back;
6. wait (at most ``settle_timeout`` s) for every order to be terminal, then report from the
   database and Temporal (:func:`invariants`); a broken promise adds its evidence to the report
   (bench/_chaos_evidence.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from bench._chaos_evidence import evidence, missing_orders
from bench._chaos_stack import ChaosSystem, open_chaos_system
from bench._processes import ROOT, progress, stop_on_sigterm
from bench._stack import FINAL
from bench.orders_e2e import bounded

TARGETS = ["M42", "M1", "M45", "M35", "M78", "NGC2244", "IC434"]
REPORT = ROOT / "bench" / "chaos.md"


@dataclass
class ChaosParams:
    """Sizes and durations (real seconds) of the run; the defaults are the full benchmark."""

    orders: int = 100
    customers: int = 10
    worker_kills: int = 3
    temporal_kills: int = 1
    db_outages: int = 3
    db_outage: float = 180.0
    voyager_down: float = 600.0
    drop_interval: float = 10.0
    voyager_drops: int = 0
    speed: float = 600.0
    settle_timeout: float = 2400.0
    repair_every: int = 10
    multi_night_every: int = 5


#: The small version that runs in ``make test`` (tests/bench/test_chaos_smoke.py). Its settle bound
#: covers what a killed worker loses: the observatory monitor's watch is retried after its 30 s
#: heartbeat timeout, a session watch (the fallback) after 3 min (workflows/_options.py
#: ``MONITOR_WATCH``, ``WATCH_SESSION``).
SMOKE = ChaosParams(orders=10, customers=5, worker_kills=1, temporal_kills=0, db_outages=1, db_outage=30.0,
                    voyager_down=0.0, drop_interval=0.0, voyager_drops=1, settle_timeout=300.0, multi_night_every=0)


def order_body(i: int, multi_night_every: int = 5) -> dict[str, Any]:
    """The ``i``-th order: a catalogue target, every third moon-down, every ``multi_night_every``-th
    over two nights (0 = none)."""
    shots = [{"filter": "L", "exposure": 60, "quantity": 2}]
    if i % 2:
        shots.append({"filter": "Ha", "exposure": 120, "quantity": 1})
    return {"target_name": TARGETS[i % len(TARGETS)], "priority": 1 + i % 2, "c_moon_down": i % 3 == 0,
            "repeat": 2 if multi_night_every and i % multi_night_every == multi_night_every - 1 else 1,
            "shots": shots}


# --------------------------------------------------------------------------- scenario


async def scenario(system: ChaosSystem, p: ChaosParams) -> tuple[list[int], float]:
    """Run the orders through the faults; returns (order ids, seconds waited for the last ones)."""
    stack = system.stack
    dep = system.dep
    assert dep is not None
    people = await stack.customers(p.customers, credits=60 * math.ceil(p.orders / p.customers))
    ids: list[int] = []

    async def burst(indexes: list[int]) -> None:
        async def post(i: int) -> int:
            return (await dep.post_order(people[i % p.customers].api_key, order_body(i, p.multi_night_every)))["id"]

        ids.extend(await bounded(10, indexes, post))
        progress(f"chaos: {len(ids)} orders posted")

    kills = 0

    def kill(when: str) -> None:
        nonlocal kills
        if kills < p.worker_kills:
            kills += 1
            system.kill_worker(f"{when} (kill {kills})")

    system.periodic_drops(p.drop_interval)
    first = p.orders if p.voyager_down <= 0 else p.orders // 2
    await burst(list(range(first)))
    if p.db_outages >= 1:
        await system.database_outage("right after a burst of orders", p.db_outage)
    await asyncio.sleep(5)
    kill("orders being held and submitted")
    for n in range(p.voyager_drops):
        await asyncio.sleep(5)
        await system.drop_voyager(f"single drop {n + 1}")
    observing = True
    if p.db_outages >= 2 or p.temporal_kills or kills < p.worker_kills:
        observing = await _wait_status(stack, ids, "running", 300)
    # The timeline says when no order was seen running (at high simulator speeds a session can
    # start and end between two monitor polls): the fault then did not hit a session.
    unseen = "" if observing else " (no order seen running within 300 s)"
    if p.db_outages >= 2:
        await system.database_outage("mid-session" + unseen, p.db_outage)
    for _ in range(p.temporal_kills):
        await system.kill_temporal("sessions observing" + unseen)
    if p.temporal_kills or p.db_outages >= 2:
        await asyncio.sleep(10)
        kill("after the Temporal restart")
    if p.voyager_down > 0:
        fault = await system.voyager_down("observatory PC off")
        t0 = time.monotonic()
        await burst(list(range(first, p.orders)))
        await _wait_status(stack, ids[first:], "held", 120)
        if p.db_outages >= 3:
            await system.database_outage("orders held before submit", p.db_outage)
        kill("Voyager down")
        await asyncio.sleep(max(0.0, p.voyager_down - (time.monotonic() - t0)))
        await system.voyager_up(fault)
    elif first < p.orders:
        await burst(list(range(first, p.orders)))
    while kills < p.worker_kills:
        await asyncio.sleep(20)
        kill("late")
    t0 = time.monotonic()
    await _wait_final(system, ids, p.settle_timeout)
    system.end_periodic_drops()
    return ids, time.monotonic() - t0


async def _counts(system: ChaosSystem, ids: list[int]) -> dict[str, int]:
    """Orders per status; retried while the database comes back."""
    for _ in range(60):
        try:
            return await system.stack.status_counts(ids)
        except (OSError, sa.exc.SQLAlchemyError):
            await asyncio.sleep(1)
    return await system.stack.status_counts(ids)


async def _wait_status(stack, ids: list[int], status: str, timeout: float) -> bool:
    """Until an order of ``ids`` has ``status``; False when none had it within ``timeout`` s."""
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        with contextlib.suppress(OSError, sa.exc.SQLAlchemyError):
            if (await stack.status_counts(ids)).get(status):
                return True
        await asyncio.sleep(0.5)
    progress(f"chaos: no order {status} after {timeout:g} s; going on")
    return False


async def _wait_final(system: ChaosSystem, ids: list[int], timeout: float) -> None:
    until = time.monotonic() + timeout
    last = 0.0
    while time.monotonic() < until:
        counts = await _counts(system, ids)
        done = sum(n for s, n in counts.items() if s in FINAL)
        if done >= len(ids):
            return
        if time.monotonic() - last > 15:
            last = time.monotonic()
            progress(f"chaos: {done}/{len(ids)} terminal " + " ".join(f"{s}={n}" for s, n in sorted(counts.items())))
        await asyncio.sleep(1)


# --------------------------------------------------------------------------- what survived


async def invariants(engine, client: Client, ids: list[int]) -> dict[str, Any]:
    """The promises, measured: statuses, orders accepted (201) with no row (``missing``: their
    ids), holds open on terminal orders, credits captured twice, frames ingested twice, ``stellar
    ledger check``, order workflows failed/terminated/timed out (``workflows_bad``: count per
    status; ``bad_ids``: their orders), repair events, last settlement time."""
    from billing.ledger_check import check_invariants

    final = list(FINAL)
    q = {"ids": ids, "final": final}
    async with engine.connect() as conn:
        statuses = dict((await conn.execute(sa.text(
            'SELECT status, count(*) FROM "order" WHERE id = ANY(:ids) GROUP BY status'), q)).all())
        open_holds = (await conn.execute(sa.text(
            'SELECT count(*) FROM credit_hold h JOIN "order" o ON o.id = h.order_id '
            "WHERE h.status = 'open' AND o.status = ANY(:final) AND o.id = ANY(:ids)"), q)).scalar_one()
        # Captured twice: the capture entries move more held credits than the hold says it captured.
        double_capture = (await conn.execute(sa.text(
            "SELECT count(*) FROM (SELECT h.order_id FROM credit_hold h LEFT JOIN ledger_entry e "
            "ON e.reference_type = 'order' AND e.reference_id = h.order_id::text AND e.kind = 'capture' "
            "WHERE h.order_id = ANY(:ids) GROUP BY h.order_id, h.captured "
            "HAVING coalesce(sum(e.held_before - e.held_after), 0) <> h.captured) x"), q)).scalar_one()
        holds_twice = (await conn.execute(sa.text(
            "SELECT count(*) FROM (SELECT reference_id FROM ledger_entry WHERE kind = 'hold' "
            "AND reference_type = 'order' AND reference_id = ANY(:sids) GROUP BY reference_id, bucket "
            "HAVING count(*) > 1) x"), {"sids": [str(i) for i in ids]})).scalar_one()
        frames_twice = (await conn.execute(sa.text(
            "SELECT count(*) FROM (SELECT order_id, session_guid, filename FROM shot_done "
            "WHERE order_id = ANY(:ids) GROUP BY order_id, session_guid, filename HAVING count(*) > 1) x"),
            q)).scalar_one()
        frames = (await conn.execute(sa.text("SELECT count(*) FROM shot_done WHERE order_id = ANY(:ids)"), q)).scalar_one()
        repairs = (await conn.execute(sa.text(
            "SELECT count(*) FROM order_event WHERE kind = 'repair' AND order_id = ANY(:ids)"), q)).scalar_one()
        last_settled = (await conn.execute(sa.text(
            'SELECT greatest(max(o.finished_at), max(h.resolved_at)) FROM "order" o '
            "LEFT JOIN credit_hold h ON h.order_id = o.id WHERE o.id = ANY(:ids)"), q)).scalar_one()
    violations = await check_invariants(engine)
    bad: dict[str, int] = {}
    bad_ids: list[int] = []
    for i in ids:
        with contextlib.suppress(RPCError):
            st = (await client.get_workflow_handle(f"order-{i}").describe()).status
            if st in (WorkflowExecutionStatus.FAILED, WorkflowExecutionStatus.TERMINATED,
                      WorkflowExecutionStatus.TIMED_OUT, WorkflowExecutionStatus.CANCELED):
                bad[st.name.lower()] = bad.get(st.name.lower(), 0) + 1
                bad_ids.append(i)
    return {
        "statuses": statuses, "not_terminal": sum(n for s, n in statuses.items() if s not in FINAL),
        "open_holds_on_terminal": open_holds, "double_capture": double_capture, "double_hold": holds_twice,
        "frames": frames, "frames_twice": frames_twice, "ledger_violations": [str(v) for v in violations],
        "missing": await missing_orders(engine, ids), "workflows_bad": bad, "bad_ids": bad_ids,
        "repair_events": repairs, "last_settled": last_settled,
    }


async def _drift(system: ChaosSystem) -> int:
    """What the repair sweep would still find (dry run, as ``stellar repair --dry-run``)."""
    from activities.repair import OrderRepair
    from core.voyager_clients import pool_from_settings
    from voyager.robotarget import RoboTarget

    assert system.dep is not None
    settings = system.dep.settings()
    settings = settings.model_copy(update={"repair": settings.repair.model_copy(update={"grace_seconds": 0.0})})
    pool = await pool_from_settings(settings.voyager).start(strict=False)
    try:
        report = await OrderRepair(system.stack.engine, system.stack.client, RoboTarget(pool), settings).run(dry_run=True)
    finally:
        await pool.close()
    return len(report.items)


def promises_kept(inv: dict[str, Any]) -> bool:
    """Every accepted order in the database and terminal, no hold open on a terminal order, nothing
    twice, ledger OK, no order workflow failed or terminated."""
    return (not inv["missing"] and inv["not_terminal"] == 0 and inv["open_holds_on_terminal"] == 0
            and inv["double_capture"] == 0 and inv["double_hold"] == 0 and inv["frames_twice"] == 0
            and not inv["ledger_violations"] and not inv["workflows_bad"])


def _commit() -> str:
    """The code the run used: ``git describe``-style short hash, ``+dirty`` when the tree had changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return f"`{head}`" + (" +uncommitted changes" if dirty else "")


def render(p: ChaosParams, system: ChaosSystem, ids: list[int], inv: dict[str, Any], started: datetime,
           waited: float, commit: str = "") -> str:
    # The periodic drops last the whole run: recovery is measured from the last discrete fault.
    faults = [f for f in system.timeline if f.end is not None and f.when != "whole run"]
    last_fault = max((f.end for f in faults), default=started)
    recovery = (inv["last_settled"] - last_fault).total_seconds() if inv["last_settled"] else math.nan
    differ = [k for k, v in dataclasses.asdict(p).items() if getattr(ChaosParams(), k) != v]
    total = sum(inv["statuses"].values()) or 1
    args = " ".join(f"--{k.replace('_', '-')} {v:g}" if isinstance(v, float) else f"--{k.replace('_', '-')} {v}"
                    for k, v in dataclasses.asdict(p).items())
    lines = [
        "# Chaos benchmark",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC on commit {commit or _commit()}, `python -m bench.chaos {args}`"
        + ("" if not differ else f" — **not the full benchmark: {', '.join(differ)} differ from the defaults**") + ".",
        "",
        f"{len(ids)} orders from {p.customers} Nebula customers through `POST /api/orders` (catalogue targets "
        f"{', '.join(TARGETS)}; every third moon-down, "
        f"{f'every {p.multi_night_every}th' if p.multi_night_every else 'none'} over two nights); PostgreSQL, the Temporal "
        f"dev server (SQLite file), the worker and the API each in its own process; the Voyager simulator at "
        f"{p.speed:g}× in the bench process.",
        "",
        "## Fault timeline",
        "",
        "| fault | when | start (s) | duration (s) |",
        "|---|---|---:|---:|",
    ]
    for f in system.timeline:
        end = f.end or datetime.now(UTC)
        lines.append(f"| {f.what} | {f.when} | {(f.start - started).total_seconds():.0f} | "
                     f"{(end - f.start).total_seconds():.0f} |")
    ok = promises_kept(inv)
    lines += [
        "",
        "## What survived",
        "",
        "| measure | value |",
        "|---|---:|",
        *[f"| orders {s} | {n} ({n / total:.0%}) |" for s, n in sorted(inv["statuses"].items())],
        f"| orders accepted (201) with no row in the database | "
        f"{len(inv['missing'])}{' (ids ' + ', '.join(map(str, inv['missing'])) + ')' if inv['missing'] else ''} |",
        f"| orders not terminal | {inv['not_terminal']} |",
        f"| holds open on terminal orders | {inv['open_holds_on_terminal']} |",
        f"| credits captured twice (orders) | {inv['double_capture']} |",
        f"| credits held twice (orders) | {inv['double_hold']} |",
        f"| frames ingested | {inv['frames']} |",
        f"| frames ingested twice | {inv['frames_twice']} |",
        f"| `stellar ledger check` | {'OK' if not inv['ledger_violations'] else '; '.join(inv['ledger_violations'])} |",
        f"| order workflows failed / terminated / timed out | "
        f"{', '.join(f'{k} {v}' for k, v in inv['workflows_bad'].items()) or '0'} |",
        f"| repairs by the `order-repair` sweep during the run (order events) | {inv['repair_events']} |",
        f"| drift a final `stellar repair --dry-run` finds | {inv['drift_after']} |",
        f"| last fault ended → last settlement | {recovery:.0f} s |",
        f"| waited for the last orders after the scenario | {waited:.0f} s (bound {p.settle_timeout:g} s) |",
        "",
        f"**Promises {'kept' if ok else 'NOT kept'}**: every accepted order recorded and terminal, no hold open "
        "on a terminal order, nothing captured, held or ingested twice, ledger invariants OK, no order workflow "
        "failed or terminated.",
        "",
        "The PostgreSQL stand-in runs with `fsync=off` (no OS crash is simulated) and "
        "`synchronous_commit=on`: a commit it acknowledged survives a process crash, as on a production server.",
        "",
    ]
    if inv.get("evidence"):
        lines += [inv["evidence"], ""]
    return "\n".join(lines)


async def run(p: ChaosParams, tmp: Path) -> tuple[str, dict[str, Any]]:
    """The whole benchmark on a fresh system under ``tmp``; (markdown, invariants)."""
    started, commit = datetime.now(UTC), _commit()  # the code as it was when the run began
    async with open_chaos_system(tmp) as system:
        async with system.stack.deployment(
                "chaos", sim={"speed": p.speed, "state_file": tmp / "voyager-sim.json"},
                repair={"every_minutes": p.repair_every}) as dep:
            system.dep = dep
            ids, waited = await scenario(system, p)
            inv = await invariants(system.stack.engine, system.stack.client, ids)
            inv["drift_after"] = await _drift(system)
            if not promises_kept(inv):
                suspects = sorted(set(inv["missing"]) | set(inv["bad_ids"]))
                logs = [c.log_path for c in (dep.api, dep.worker) if c is not None]
                inv["evidence"] = await evidence(system.stack.engine, system.stack.client, ids, suspects, logs,
                                                 system.pg.data_dir / "postgres.log")
            if inv["not_terminal"]:
                await system.stack.terminate([f"order-{i}" for i in ids])
        return render(p, system, ids, inv, started, waited, commit), inv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in dataclasses.fields(ChaosParams):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
    parser.add_argument("--out", type=Path, default=REPORT, help="markdown report (default bench/chaos.md)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="run in this (new) directory and keep it: PostgreSQL data, Temporal SQLite file and "
                             "child logs stay there for diagnosis (default: a temporary directory, deleted)")
    a = vars(parser.parse_args(argv))
    out = a.pop("out")
    keep = a.pop("keep")
    params = ChaosParams(**a)
    from core.logging import configure_logging

    configure_logging("WARNING")
    stop_on_sigterm()
    with contextlib.ExitStack() as dirs:
        if keep is None:
            tmp = Path(dirs.enter_context(tempfile.TemporaryDirectory(prefix="stellar-chaos-")))
        else:
            keep.mkdir(parents=True)  # a fresh directory: a previous run's data would mix into this one
            tmp = keep.resolve()
        text, inv = asyncio.run(run(params, tmp))
    out.write_text(text)
    print(text)
    return 0 if promises_kept(inv) else 1


if __name__ == "__main__":
    sys.exit(main())
