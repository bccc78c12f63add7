"""Orders completed per second end to end (bench report "Orders end to end"), beside a bare two-activity workflow.

    .venv/bin/python -m bench.orders_e2e [--orders 200] [--customers 50] [--concurrency 16] [--speed 600]

System under test: ``orders`` small orders (M42 from the catalogue, L 1×1 s, priority 0) from
``customers`` customers (credits granted through the ledger), POSTed ``concurrency`` at a time to
the API (uvicorn, child process), which starts ``OrderWorkflow``; the worker (child process) holds
the credits, submits the target to the Voyager simulator (in this process, clock started just
before a good M42 night, ``speed`` simulated seconds per real second, fast-forward on), the
observatory monitor signals the session, the frame is ingested, the order settled and finalized.
Measured from the first POST to the last order's ``finished_at``. One warm-up order runs first and
is not counted.

Profile: the median time each order spent between its status changes (``order_event`` rows:
created → held → submitted → running → settling → final), and frame taken → SSE event delivered
(bench/frame_latency.py) on up to ``SSE_SAMPLE`` orders, each followed by an SSE stream opened
right after its POST; per order, each activity's runs and what the worker spent on it — SQL
statements, transactions, main-thread CPU — and the worker's CPU by thread (the worker runs under
bench/activity_account.py, which keeps that account at the cost of two clock reads per event-loop
callback).

Ceiling: the same number of ``BenchTwoActivities`` workflows (bench/ceiling_workflow.py), started
``concurrency`` at a time on the same Temporal server, run by a worker in this process.
The simulated telescope is a serial resource too: its floor is orders × (exposure + 30 s
overhead) / speed, printed beside.

CPU budget (bench/e2e_budget.py): both runs' CPU by process, per settled order and per bare workflow,
what that CPU alone allows on this machine, the Temporal server's CPU per history event and billable
action, and why the order's rate is not at its goal when it is not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Worker

from bench import activity_account
from bench._loop_account import LoopAccount, part
from bench._processes import cpu_line, progress
from bench._stack import FINAL, M42_EVENING, BenchStack, run_standalone
from bench._stats import pct
from bench.ceiling_workflow import TwoActivities, noop
from bench.e2e_budget import CpuWindow, add_histories, budget
from bench.frame_latency import SSE_GOAL, WAIT_STAGES, fetch_histories, frame_latency, frame_waits, waits_table
from bench.history import LOCAL_ACTIVITY_MARKER
from core.settings import VoyagerSettings

ORDER = {"target_name": "M42", "priority": 0, "shots": [{"filter": "L", "exposure": 1, "quantity": 1}]}
SHOT_OVERHEAD = 30.0  # the simulator's default simulated seconds per frame on top of the exposure
#: Orders whose frames are followed to their SSE stream (every k-th order; more streams load the API).
SSE_SAMPLE = 50
#: The status milestones of an order, in order; "final" is its ``finished_at``.
MILESTONES = ("pending", "held", "submitted", "running", "settling", "final")


async def bounded(concurrency: int, items: list, fn) -> list:
    """``fn(item)`` for every item, ``concurrency`` at a time, results in order."""
    it = iter(enumerate(items))
    out: list = [None] * len(items)

    async def lane() -> None:
        for i, item in it:
            out[i] = await fn(item)

    await asyncio.gather(*(lane() for _ in range(min(concurrency, len(items)) or 1)))
    return out


async def ceiling(stack: BenchStack, n: int, concurrency: int,
                  account: LoopAccount) -> tuple[float, list[float], CpuWindow, list[WorkflowHistory]]:
    """Run ``n`` two-activity workflows; returns (seconds from first start to last result, latencies,
    the CPU window of those runs, the histories of up to :data:`SSE_SAMPLE` of them). The worker
    runs in this process, its work charged to the part ``worker`` of ``account``."""
    queue = f"bench-ceiling-{uuid.uuid4().hex[:6]}"
    async with contextlib.AsyncExitStack() as running:
        with part("worker"):  # the worker's tasks keep the part; the client's calls below do not
            await running.enter_async_context(
                Worker(stack.client, task_queue=queue, workflows=[TwoActivities], activities=[noop]))
        await stack.client.execute_workflow(TwoActivities.run, 0, id=f"{queue}-warmup", task_queue=queue)

        async def one(i: int) -> float:
            t = time.perf_counter()
            handle = await stack.client.start_workflow(TwoActivities.run, i, id=f"{queue}-{i}", task_queue=queue)
            await handle.result()
            return time.perf_counter() - t

        window = CpuWindow(account)
        t0 = time.perf_counter()
        latencies = await bounded(concurrency, list(range(n)), one)
        elapsed = time.perf_counter() - t0
        window.stop()
        sample = range(min(n, SSE_SAMPLE))
        histories = await bounded(8, list(sample), lambda i: stack.client.get_workflow_handle(
            f"{queue}-{i}").fetch_history())
        return elapsed, latencies, window, histories


async def run(stack: BenchStack, orders: int = 200, customers: int = 50, concurrency: int = 16,
              speed: float = 600.0, timeout: float = 480.0, voyager_pool: int | None = None) -> str:
    """Run the bench on ``stack``; returns its markdown section. ``voyager_pool``: the worker's
    ``STELLAR_VOYAGER__POOL_SIZE`` (None = the default)."""
    customers = max(1, min(customers, orders))
    with LoopAccount() as loop_cpu:  # the bench process's CPU by part: the simulator's, the client's
        return await _run(stack, loop_cpu, orders, customers, concurrency, speed, timeout, voyager_pool)


async def _run(stack: BenchStack, loop_cpu: LoopAccount, orders: int, customers: int, concurrency: int,
               speed: float, timeout: float, voyager_pool: int | None) -> str:
    progress(f"orders e2e: starting simulator, worker and API ({orders} orders, {customers} customers)")
    account_dir = Path(tempfile.mkdtemp(prefix="stellar-e2e-account-"))
    worker_argv = [sys.executable, "-m", "bench.activity_account", str(account_dir)]
    async with stack.deployment("e2e", sim={"speed": speed}, voyager={"pool_size": voyager_pool},
                                worker_argv=worker_argv) as dep, \
            frame_latency(VoyagerSettings(**{k: v for k, v in dep.groups["voyager"].items() if v is not None})) as frames:
        assert dep.http is not None
        people = await stack.customers(customers, credits=math.ceil(orders / customers) + 2)
        warm = await dep.post_order(people[0].api_key, ORDER)
        await dep.wait_final([warm["id"]], 120, label="warm-up order")

        progress(f"orders e2e: posting {orders} orders, {concurrency} at a time")
        wall0 = datetime.now(UTC)
        window = CpuWindow(loop_cpu, dep.worker, dep.api)
        assert dep.worker is not None
        account0 = await activity_account.take(dep.worker.pid, account_dir, 1)
        xacts0 = await transactions(stack)
        t0 = time.perf_counter()
        every = max(1, math.ceil(orders / SSE_SAMPLE))
        followed: list[int] = []

        async def post(i: int) -> tuple[int, float]:
            t = time.perf_counter()
            key = people[i % customers].api_key
            body = await dep.post_order(key, ORDER)
            elapsed = time.perf_counter() - t
            if i % every == 0:
                frames.follow(dep.http, key, body["id"])
                followed.append(body["id"])
            return body["id"], elapsed

        posted = await bounded(concurrency, list(range(orders)), post)
        post_s = time.perf_counter() - t0
        ids = [i for i, _ in posted]
        counts = await dep.wait_final(ids, timeout, label="orders e2e")
        window.stop()
        cpu = cpu_line(window.before, window.after, time.perf_counter() - t0)
        account = activity_account.difference(account0, await activity_account.take(dep.worker.pid, account_dir, 2))
        xacts = await transactions(stack) - xacts0
        async with stack.engine.connect() as conn:
            rows = (await conn.execute(sa.text(
                'SELECT status, created_at, finished_at FROM "order" WHERE id = ANY(:ids)'), {"ids": ids})).all()
            phases = await phase_profile(conn, ids)
        if sum(counts.get(s, 0) for s in FINAL) < orders:  # timed out: stop what still runs
            await stack.terminate([f"order-{i}" for i in ids])
        await frames.close()
        histories = await fetch_histories(stack.client, followed)
        waits = await frame_waits(frames, stack.engine, histories)
    sse = frames.latencies()
    shutil.rmtree(account_dir, ignore_errors=True)

    finished = [r for r in rows if r.finished_at is not None]
    elapsed = max((r.finished_at - wall0).total_seconds() for r in finished) if finished else math.nan
    latencies = [(r.finished_at - r.created_at).total_seconds() for r in finished]

    progress(f"orders e2e: ceiling, {orders} bare two-activity workflows")
    c_elapsed, c_lat, c_window, c_histories = await ceiling(stack, orders, concurrency, loop_cpu)

    rate = len(finished) / elapsed if finished else 0.0
    c_rate = orders / c_elapsed
    floor = orders * (ORDER["shots"][0]["exposure"] + SHOT_OVERHEAD) / speed
    order_cost = window.cost("Stellar order", len(finished), rate, simulator=True)
    ceiling_cost = c_window.cost("ceiling: bare workflow, 2 no-op activities (its worker in the bench process)",
                                 orders, c_rate, simulator=False)
    add_histories(order_cost, list(histories.values()))
    add_histories(ceiling_cost, c_histories)
    monitor_ms = sum(v for k, v in account["cpu"].items() if k.startswith("monitor.")) * 1e3 / max(orders, 1)
    post_lat = [s for _, s in posted]
    statuses = ", ".join(f"{s} {n}" for s, n in sorted(counts.items()))
    return "\n".join([
        f"{orders} orders (M42, L 1×1 s) from {customers} customers, POSTed {concurrency} at a time; "
        f"simulator at {speed:g}× from {M42_EVENING:%Y-%m-%d %H:%M} UTC; worker and API in their own processes.",
        "",
        "| run | orders settled | wall s | orders/s | per-order p50 s | per-order p99 s | vs ceiling |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| ceiling: bare workflow, 2 no-op activities | {orders} | {c_elapsed:.1f} | {c_rate:.1f} | "
        f"{pct(c_lat, 50):.2f} | {pct(c_lat, 99):.2f} | ceiling |",
        f"| Stellar order: API → hold → Voyager → session → ingest → settle | {len(finished)} | {elapsed:.1f} | "
        f"{rate:.1f} | {pct(latencies, 50):.2f} | {pct(latencies, 99):.2f} | {rate / c_rate:.0%} |",
        "",
        f"Final statuses: {statuses}. The {orders} POSTs took {post_s:.1f} s "
        f"({orders / post_s:.0f}/s; p50 {pct(post_lat, 50) * 1e3:.0f} ms, p99 {pct(post_lat, 99) * 1e3:.0f} ms). "
        f"Per-order time: POST → `finished_at`. "
        f"The simulated telescope alone needs ≥ {floor:.1f} s for "
        f"{orders} frames of (1 + {SHOT_OVERHEAD:g}) s at {speed:g}× (one session at a time).",
        "",
        cpu + ".",
        "",
        "Where an order's time goes (median seconds between its status changes, orders counted in brackets; "
        "`running` is absent when the monitor first saw the session already ended):",
        "",
        "| " + " | ".join(f"{a} → {b}" for a, b in phases) + " |",
        "|" + "---:|" * len(phases),
        "| " + " | ".join(f"{v:.2f} ({n})" if n else "–" for v, n in phases.values()) + " |",
        "",
        f"**Frame taken → SSE event delivered**: p50 **{pct(sse, 50):.2f} s**, p99 **{pct(sse, 99):.2f} s**, "
        f"max {max(sse, default=math.nan):.2f} s over {len(sse)} frames of {len(frames.streams)} orders followed "
        f"(every {every}th order; goal ≤ {SSE_GOAL:g} s). Taken = the simulator's `NewFITReady`, delivered = the "
        f"`progress` event on `GET /api/orders/{{id}}/events` (bench/frame_latency.py)"
        + (f"; {frames.stream_errors} streams broke." if frames.stream_errors else "."),
        "",
        f"Where those frames wait ({len(waits[WAIT_STAGES[0][0]])} frames; the instants come from the orders' "
        "workflow histories and the `shot_done` rows, bench/frame_latency.py):",
        "",
        *waits_table(waits),
        "",
        *history_profile(histories),
        *account_table(histories, account, orders),
        f"PostgreSQL transactions committed in the window (worker, API, monitor and this bench's polls): "
        f"{xacts:,} ({xacts / max(orders, 1):.0f} an order).",
        "",
        *budget(order_cost, ceiling_cost, os.cpu_count() or 1, orders / floor, monitor_ms),
    ]).rstrip()


async def transactions(stack: BenchStack) -> int:
    """Transactions committed or rolled back in the bench database so far (``pg_stat_database``)."""
    async with stack.engine.connect() as conn:
        return int((await conn.execute(sa.text(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"))).scalar())


def history_counts(histories: dict[int, WorkflowHistory]) -> tuple[int, int, Counter, Counter, Counter]:
    """Over ``histories``: (events, workflow tasks completed, workflow tasks timed out or failed by
    kind, activities scheduled by type, local activities by type)."""
    events = wfts = 0
    wft_lost: Counter = Counter()  # workflow tasks that timed out or failed: each is done again
    acts: Counter = Counter()
    locals_: Counter = Counter()
    for h in histories.values():
        for e in h.events:
            events += 1
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                wfts += 1
            elif e.event_type in (EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT, EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED):
                wft_lost[EventType.Name(e.event_type).removeprefix("EVENT_TYPE_WORKFLOW_TASK_").lower()] += 1
            elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                acts[e.activity_task_scheduled_event_attributes.activity_type.name] += 1
            elif e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
                attrs = e.marker_recorded_event_attributes
                if attrs.marker_name == LOCAL_ACTIVITY_MARKER:  # not a patch (version) marker
                    locals_[_local_activity_name(attrs)] += 1
    return events, wfts, wft_lost, acts, locals_


def history_profile(histories: dict[int, WorkflowHistory]) -> list[str]:
    """Markdown lines: what the followed orders asked of Temporal and of the worker, per order:
    history events, workflow tasks, activities and local activities by name."""
    if not histories:
        return []
    n = len(histories)
    events, wfts, wft_lost, acts, locals_ = history_counts(histories)

    def per(c: Counter) -> str:
        return ", ".join(f"`{k}` {v / n:.1f}" for k, v in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))

    return [f"Per order (mean of the {n} followed orders' histories): {events / n:.1f} history events, "
            f"{wfts / n:.1f} workflow tasks completed ({per(wft_lost) or 'none'} timed out or failed, each then run "
            f"again); {sum(acts.values()) / n:.1f} activities ({per(acts)}); "
            f"{sum(locals_.values()) / n:.1f} local activities ({per(locals_)}).", ""]


def account_table(histories: dict[int, WorkflowHistory], account: dict, orders: int) -> list[str]:
    """Markdown lines: per order, each activity's runs (from the followed orders' histories) and
    what the worker spent on it in the window (bench/activity_account.py): PostgreSQL statements,
    transactions, main-thread CPU; then the worker's CPU outside activities, by thread."""
    if orders <= 0:
        return []
    n = max(len(histories), 1)
    _events, _wfts, _lost, acts, locals_ = history_counts(histories)
    runs = {**{k: v / n for k, v in acts.items()}, **{f"local:{k}": v / n for k, v in locals_.items()}}
    keys = sorted(set(account["statements"]) | set(account["transactions"]) | set(account["cpu"]) | set(runs),
                  key=lambda k: (k == activity_account.OUTSIDE, -account["cpu"].get(k, 0.0), k))
    lines = ["Per order, what the worker spent on each activity in the window (totals ÷ orders posted; runs from "
             "the followed orders' histories; `local:` a local activity; CPU = the worker's main thread while the "
             "activity's task ran, bench/activity_account.py):", "",
             "| activity | runs | SQL statements | transactions | CPU ms |", "|---|---:|---:|---:|---:|"]
    for k in keys:
        if not (account["statements"].get(k) or account["cpu"].get(k, 0.0) > 0.0005 * orders or k in runs):
            continue
        label = f"`{k}`" if k != activity_account.OUTSIDE else k
        lines.append(f"| {label} | {runs[k]:.1f} |" if k in runs else f"| {label} | – |")
        lines[-1] += (f" {account['statements'].get(k, 0) / orders:.1f} | {account['transactions'].get(k, 0) / orders:.1f} |"
                      f" {account['cpu'].get(k, 0.0) * 1e3 / orders:.1f} |")
    total_sql = sum(account["statements"].values()) / orders
    total_tx = sum(account["transactions"].values()) / orders
    threads = account["threads"]
    lines.append(f"| **all (main thread)** | | **{total_sql:.1f}** | **{total_tx:.1f}** | "
                 f"**{threads.get('main', 0.0) * 1e3 / orders:.1f}** |")
    lines += ["", "The worker's CPU per order by thread: "
              + ", ".join(f"{kind} {sec * 1e3 / orders:.1f} ms" for kind, sec in
                          sorted(threads.items(), key=lambda kv: -kv[1]))
              + f" (process {account['process'] * 1e3 / orders:.1f} ms; `python threads`: the SDK's "
              "workflow activations and `to_thread` work, `tokio`: the SDK's Rust core).", ""]
    return lines


def _local_activity_name(attrs) -> str:
    """The activity type a local-activity marker records ("?" when it cannot be read)."""
    try:
        return json.loads(attrs.details["data"].payloads[0].data).get("activity_type", "?")
    except (KeyError, IndexError, ValueError, AttributeError):
        return "?"


async def phase_profile(conn, ids: list[int]) -> dict[tuple[str, str], tuple[float, int]]:
    """(from, to) milestone → (median seconds, orders that passed both) over ``ids``, from the
    orders' ``status`` events and ``finished_at``: each consecutive pair, and submitted → settling
    (waiting for the telescope and the session, whether or not ``running`` was recorded)."""
    marks: dict[int, dict[str, datetime]] = {}
    for r in (await conn.execute(sa.text(
            "SELECT order_id, payload->>'status' AS status, min(created_at) AS at FROM order_event "
            "WHERE kind = 'status' AND order_id = ANY(:ids) GROUP BY 1, 2"), {"ids": ids})).all():
        marks.setdefault(r.order_id, {})[r.status if r.status in MILESTONES else "final"] = r.at
    for r in (await conn.execute(sa.text(
            'SELECT id, created_at, finished_at FROM "order" WHERE id = ANY(:ids)'), {"ids": ids})).all():
        m = marks.setdefault(r.id, {})
        m["pending"] = r.created_at
        if r.finished_at is not None:
            m["final"] = r.finished_at
    pairs = [*zip(MILESTONES, MILESTONES[1:]), ("submitted", "settling")]
    out: dict[tuple[str, str], tuple[float, int]] = {}
    for a, b in pairs:
        spans = [(m[b] - m[a]).total_seconds() for m in marks.values() if a in m and b in m]
        out[(a, b)] = (statistics.median(spans) if spans else math.nan, len(spans))
    return out


def main(argv: list[str] | None = None) -> str:
    """Run the bench on its own stack; print and return the markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--speed", type=float, default=600.0, help="simulated seconds per real second")
    parser.add_argument("--timeout", type=float, default=480.0, help="seconds to wait for the orders to settle")
    parser.add_argument("--voyager-pool", type=int, default=None, help="the worker's Voyager pool size")
    a = parser.parse_args(argv)
    return run_standalone(run, orders=a.orders, customers=a.customers, concurrency=a.concurrency,
                          speed=a.speed, timeout=a.timeout, voyager_pool=a.voyager_pool)


if __name__ == "__main__":
    main()
