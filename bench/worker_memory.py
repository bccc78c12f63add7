"""Worker resident memory with 1,000 open orders waiting for their night (bench report "Worker memory"), beside the
same worker process idle, and where it goes.

    .venv/bin/python -m bench.worker_memory [--orders 1000] [--concurrency 16]
        [--runner unsandboxed] [--max-cached N]   # variants of the worker, measured, not adopted

The worker (``worker.main``, what ``python worker.py`` runs, started as ``python -m
bench.heap_worker`` for its heap-statistics signal handler) and the API run as child processes; the
Voyager simulator runs here with its clock paused at midsummer noon (nothing is observable and,
paused, it never fast-forwards), so every order is held, submitted to RoboTarget and then waits on
its workflow condition — the state of an order before its night. Orders (M42, L 1×60 s) are POSTed
by 50 customers. The worker's RSS (psutil) is read: idle after start (its observatory monitor
running), with one order waiting (the workflow sandbox loaded once), and with every order waiting;
after each of the last two, the worker's heap statistics (bench/heap_worker.py). Per order =
(all − one) ÷ (orders − 1). The worker keeps at most 1,000 workflows in its cache (the Temporal
SDK's default ``max_cached_workflows``); past that, evicted workflows use no memory until they wake.

Ceiling: a worker process running nothing but a bare workflow that waits for a signal
(bench/bare_worker.py: the worker's own ``Worker`` options and data converter, same hook), read the
same way with as many workflows waiting, in the same run: the least the SDK keeps per cached
waiting workflow. Beside it, the same worker holding as many ``BenchOrderShaped`` workflows: the
commands a waiting order has issued (status upserts, local activities, activities, a timer and two
tasks) with nothing of Stellar's, i.e. what the SDK keeps for a workflow of the order's shape. The
breakdown (bench/memory_breakdown.py) sets the three side by side: Python's small-object heap, the
objects the garbage collector tracks by type, the rest of the RSS (the SDK's Rust core, large
blocks, slack), what a ``malloc_trim`` at the end gives back (allocator slack, not held), the
history bytes each waiting workflow was fed, and the sandbox's own cost per run
(bench/sandbox_cost.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.service import RPCError

from bench._processes import ROOT, ChildProcess, cpu_line, cpu_seconds, progress, settings_env
from bench._stack import DAYTIME, BenchStack, Deployment, run_standalone
from bench.ceiling_workflow import BareWaiting, OrderShaped
from bench.memory_breakdown import HeapDiff, HistorySize, heap_diff, history_size, sandbox_costs
from bench.orders_e2e import bounded

ORDER = {"target_name": "M42", "priority": 0, "shots": [{"filter": "L", "exposure": 60, "quantity": 1}]}
WAITING = ("submitted",)
MiB = 1024 * 1024
#: Goal: RSS per waiting order at most this many times a bare waiting workflow's.
GOAL_TIMES = 2.0
#: Waiting workflows whose history is read for the breakdown (each one a fetch).
HISTORY_SAMPLE = 20
#: Seconds the filled worker is watched with nothing new to do: how its RSS drifts with time alone
#: (the monitor's watch, the pools), which the fill window's growth also holds.
DRIFT_SECONDS = 30


async def settled_rss(pid: int, seconds: float = 3.0) -> int:
    """RSS (bytes) of ``pid`` after ``seconds`` of quiet: the last of one sample per second."""
    proc = psutil.Process(pid)
    rss = proc.memory_info().rss
    for _ in range(max(1, int(seconds))):
        await asyncio.sleep(1.0)
        rss = proc.memory_info().rss
    return rss


async def _stats(child: ChildProcess, n: int, timeout: float = 120.0, trim: bool = False) -> Path:
    """Ask a worker started with the heap hook (bench/heap_worker.py, bench/bare_worker.py) for its
    heap statistics ``n`` (SIGUSR1; with ``trim`` SIGUSR2, which then returns the allocator's free
    pages: the last statistics of a worker); returns their path once written."""
    os.kill(child.pid, signal.SIGUSR2 if trim else signal.SIGUSR1)
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout
    while True:
        match = re.search(rf"heap stats (\S+heap-{n}\.json)", child.log_tail(20000))
        if match:
            return Path(match.group(1))
        child.check_alive()
        if loop.time() > until:
            raise RuntimeError(f"{child.name}: no heap stats {n} within {timeout:g} s:\n{child.log_tail()}")
        await asyncio.sleep(0.5)


@dataclass
class Filled:
    """One worker filled with waiting workflows: RSS (bytes) idle, with one and with all waiting
    (each read before the heap statistics of that moment), ``trimmed``: with all waiting, after
    ``malloc_trim`` (0: not measured); ``heap``: the Python heap's growth between one and all;
    ``history``: the histories of a sample of the waiting workflows; ``waiting``: how many waited at
    the end."""

    idle: int
    one: int
    full: int
    waiting: int
    heap: HeapDiff
    history: HistorySize
    note: str = ""
    trimmed: int = 0
    #: With the work split (``stellar worker --role``): the activities process's RSS (bytes) idle,
    #: with one and with every order waiting; None for one worker process.
    activities: tuple[int, int, int] | None = None


async def bare_ceiling(stack: BenchStack, n: int, concurrency: int = 16, timeout: float = 120.0,
                       shape: type = BareWaiting) -> Filled:
    """A bare worker process (bench/bare_worker.py) idle, with one and with ``n`` ``shape``
    workflows (``BareWaiting`` or ``OrderShaped``) waiting (each answered its ``waiting`` query with
    true, so each ran every task before its wait)."""
    queue = f"bench-{shape.__name__.lower()}-{uuid.uuid4().hex[:6]}"
    argv = [sys.executable, "-m", "bench.bare_worker", stack.temporal_address, stack.client.namespace, queue,
            str(stack.tmp / f"{queue}-heap")]
    child = ChildProcess("bare worker", argv, {}, stack.tmp / f"{queue}.log")
    ids = [f"{queue}-{i}" for i in range(n)]
    child.start()
    try:
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout
        while "bare worker ready" not in child.log_tail():
            child.check_alive()
            if loop.time() > until:
                raise RuntimeError(f"bare worker not ready within {timeout:g} s:\n{child.log_tail()}")
            await asyncio.sleep(0.2)
        idle = await settled_rss(child.pid)

        async def wait_one(i: int) -> None:
            handle = await stack.client.start_workflow(shape.run, i, id=ids[i], task_queue=queue)
            until_waiting = loop.time() + timeout
            while True:  # a query can time out or meet a retried task on a loaded machine; the workflow still runs
                with contextlib.suppress(RPCError):
                    if await handle.query(shape.waiting):
                        return
                if loop.time() > until_waiting:
                    raise RuntimeError(f"{ids[i]} not waiting within {timeout:g} s")
                await asyncio.sleep(0.5)

        await wait_one(0)
        one = await settled_rss(child.pid)
        stats_one = await _stats(child, 1)
        await bounded(concurrency, list(range(1, n)), wait_one)
        full = await settled_rss(child.pid)
        stats_full = await _stats(child, 2, trim=True)
        heap = heap_diff(stats_one, stats_full, n)
        history = await history_size(stack.client, ids[:HISTORY_SAMPLE])
    finally:
        await asyncio.to_thread(child.stop)
        await stack.terminate(ids)
    return Filled(idle, one, full, n, heap, history, trimmed=_trimmed(stats_full))


def _trimmed(stats: Path) -> int:
    """The RSS after ``malloc_trim`` in heap statistics written with ``trim`` (0 if not measured)."""
    return int(json.loads(stats.read_text()).get("rss_trimmed", 0))


async def fill_orders(stack: BenchStack, orders: int, concurrency: int, customers: int, timeout: float,
                      variant: tuple[str, ...] = (), drift_seconds: int = DRIFT_SECONDS, split: bool = False) -> Filled:
    """Stellar's worker (``worker.main`` with the heap hook: ``python -m bench.heap_worker``, with
    ``variant``: its ``--runner``/``--max-cached`` arguments) idle, with one and with ``orders``
    orders waiting for their night. ``split``: the worker measured runs ``--role workflows`` and a
    second process, ``python worker.py --role activities``, runs the activities; its RSS is read
    at the same moments (:attr:`Filled.activities`)."""
    stats_dir = stack.tmp / f"memory-heap-{uuid.uuid4().hex[:6]}"
    role = ("--role", "workflows") if split else ()
    argv = [sys.executable, "-m", "bench.heap_worker", str(stats_dir), *variant, *role]
    async with stack.deployment("memory", sim={"speed": 0.0, "start_time": DAYTIME}, worker_argv=argv) as dep:
        assert dep.worker is not None
        acts = None
        try:
            if split:
                acts = ChildProcess("memory activities worker",
                                    [sys.executable, str(ROOT / "worker.py"), "--role", "activities"],
                                    settings_env(dep.groups), dep.base / "activities-worker.log")
                acts.start()
                await _monitor_watching(stack, dep, acts, timeout)
            return await _fill(stack, dep, acts, orders, concurrency, customers, timeout, drift_seconds)
        finally:
            if acts is not None:
                await asyncio.to_thread(acts.stop)


async def _monitor_watching(stack: BenchStack, dep: Deployment, acts: ChildProcess, timeout: float) -> None:
    """Until the observatory monitor's watch activity runs (in ``acts``, the activities process):
    then both processes are up, as the one worker is once its monitor runs."""
    handle = stack.client.get_workflow_handle(f"observatory-monitor-{dep.telescope}")
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout
    while True:
        acts.check_alive()
        pending = (await handle.describe()).raw_description.pending_activities
        if any(a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED for a in pending):
            return
        if loop.time() > until:
            raise RuntimeError(f"{acts.name}: the monitor's watch not started within {timeout:g} s:\n{acts.log_tail()}")
        await asyncio.sleep(0.5)


async def _fill(stack: BenchStack, dep: Deployment, acts: ChildProcess | None, orders: int, concurrency: int,
                customers: int, timeout: float, drift_seconds: int) -> Filled:
    """:func:`fill_orders` in its running deployment (``acts``: the activities process, when split)."""
    assert dep.worker is not None

    async def rss(seconds: float = 3.0) -> tuple[int, int]:
        """(worker, activities process) RSS, read together after ``seconds`` of quiet."""
        both = await asyncio.gather(settled_rss(dep.worker.pid, seconds),
                                    *([settled_rss(acts.pid, seconds)] if acts else []))
        return both[0], (both[1] if acts else 0)

    people = await stack.customers(customers, credits=math.ceil(orders / customers) + 1)
    idle, acts_idle = await rss()
    first = await dep.post_order(people[0].api_key, ORDER)
    await dep.wait_final([first["id"]], 120, label="memory: first order", statuses=WAITING)
    one, acts_one = await rss()
    stats_one = await _stats(dep.worker, 1)

    progress(f"worker memory: posting {orders - 1} more orders, {concurrency} at a time")
    cpu0 = cpu_seconds(dep.worker, dep.api)
    acts_cpu0 = _cpu(acts)
    t0 = time.perf_counter()

    run = uuid.uuid4().hex[:8]

    async def post(i: int) -> int:
        """One order, sent again under its Idempotency-Key when the connection broke (a loaded
        machine: a kept-alive connection the API closed meanwhile); the replay answers 200."""
        assert dep.http is not None
        headers = {"Authorization": f"Bearer {people[(i + 1) % customers].api_key}", "Idempotency-Key": f"{run}-{i}"}
        for attempt in range(3):
            try:
                r = await dep.http.post("/api/orders", json=ORDER, headers=headers)
            except httpx.TransportError:
                if attempt == 2:
                    raise
                continue
            if r.status_code not in (200, 201):
                raise RuntimeError(f"POST /api/orders answered {r.status_code}: {r.text[:500]}")
            return r.json()["id"]
        raise AssertionError("unreachable")

    ids = [first["id"], *await bounded(concurrency, list(range(orders - 1)), post)]
    post_s = time.perf_counter() - t0
    counts = await dep.wait_final(ids, timeout, label="memory: waiting orders", statuses=WAITING)
    fill_s = time.perf_counter() - t0
    cpu_after = cpu_seconds(dep.worker, dep.api)
    if acts is not None:
        cpu_after["activities worker"] = _cpu(acts) - acts_cpu0
    cpu = cpu_line(cpu0, cpu_after, fill_s)
    waiting = counts.get("submitted", 0)
    full, acts_full = await rss()
    later = await settled_rss(dep.worker.pid, drift_seconds)
    stats_full = await _stats(dep.worker, 2, trim=True)
    heap = heap_diff(stats_one, stats_full, waiting)
    history = await history_size(stack.client, [f"order-{i}" for i in ids[:HISTORY_SAMPLE]])
    await asyncio.to_thread(dep.worker.stop)  # before terminating: a terminated order would wake its cached workflow
    await stack.terminate([f"order-{i}" for i in ids])
    statuses = ", ".join(f"{s} {n}" for s, n in sorted(counts.items()))
    drift = (later - full) / drift_seconds  # bytes a second, nothing new to do
    note = (f"Statuses when measured: {statuses}. {orders - 1} POSTs took {post_s:.1f} s; all waiting after "
            f"{fill_s:.1f} s. {cpu}. Drift with time alone: {later - full:+,} bytes in the {drift_seconds} s after "
            f"the fill with every order waiting; at that rate the {fill_s:.0f} s fill window holds "
            f"{drift * fill_s / max(1, waiting - 1) / 1024:+.1f} KiB per order of it.")
    return Filled(idle, one, full, waiting, heap, history, note, _trimmed(stats_full),
                  (acts_idle, acts_one, acts_full) if acts else None)


def _cpu(child: ChildProcess | None) -> float:
    """CPU seconds (user + system) ``child`` used so far (0 without one)."""
    if child is None or not child.alive():
        return 0.0
    t = psutil.Process(child.pid).cpu_times()
    return t.user + t.system


def _per(f: Filled) -> float:
    """RSS growth (bytes) per waiting workflow past the first."""
    return (f.full - f.one) / max(1, f.waiting - 1)


def shape_verdict(order: float, shaped: float, bare: float) -> str:
    """One sentence (leading space): where ≤ 2× the bare workflow's RSS per waiting workflow has to
    come from, given the bytes per waiting ``order``, order-shaped bare workflow and ``bare`` one."""
    if bare <= 0 or shaped <= 0:
        return ""
    sdk, own = (shaped - bare) / 1024, (order - shaped) / 1024
    if shaped > GOAL_TIMES * bare:
        return (f" The order-shaped bare workflow alone is **{shaped / bare:.1f}×** the bare one, so ≤ {GOAL_TIMES:g}× "
                f"needs fewer commands before the wait; less of Stellar's own state alone cannot get there: of the order's "
                f"{(order - bare) / 1024:+.1f} KiB over the bare workflow, {sdk:+.1f} KiB is what the SDK keeps for "
                f"the order's commands and {own:+.1f} KiB is Stellar's own (order − order-shaped).")
    return (f" The order-shaped bare workflow is {shaped / bare:.1f}× the bare one: ≤ {GOAL_TIMES:g}× is within the "
            f"SDK's reach for the order's commands; the rest, {own:+.1f} KiB, is Stellar's own (order − order-shaped).")


def _slack_per(f: Filled) -> float:
    """What ``malloc_trim`` gave back at the end (free pages of the malloc arenas: allocator slack,
    not held), bytes ÷ the waiting workflows past the first: an upper bound of the slack in each
    one's RSS growth; nan when not measured."""
    return (f.full - f.trimmed) / max(1, f.waiting - 1) if f.trimmed else math.nan


def breakdown(o: Filled, b: Filled, s: Filled | None, sandbox: dict[str, dict[str, dict]] | None,
              w: Filled | None = None) -> list[str]:
    """The markdown of where a waiting order's memory goes, beside (``w``) the same orders in a
    workflows process with the activities in another, a bare waiting workflow's and (``s``) an
    order-shaped bare workflow's; ``sandbox``: bench/sandbox_cost.py's measurement."""
    KiB = 1024
    cols = [o, *([w] if w else []), *([s] if s else []), b]

    def row(label: str, values: list[float], unit: str = "KiB") -> str:
        cells = [f"{v / KiB:.1f} KiB" if unit == "KiB" else f"{v:,.0f}" for v in values]
        diff = values[0] - values[-1]
        return f"| {label} | " + " | ".join(cells) + (f" | {diff / KiB:+.1f} KiB |" if unit == "KiB" else f" | {diff:+,.0f} |")

    lines = [
        f"Where it goes, per waiting workflow past the first, read in the same workers at the same moments "
        f"as the RSS (each worker writes its heap statistics on a signal, after the RSS is read: "
        f"bench/heap_worker.py). pymalloc = bytes in Python's small-object blocks (every allocation ≤ 512 B: "
        f"most objects, small dict tables, short strings); GC objects = what the garbage collector tracks "
        f"(instances, dicts, coroutines, tasks, models…), `sys.getsizeof` each, their own allocation only. "
        f"RSS − pymalloc = the SDK's core (Rust: each cached run's state machines and the history it was fed), "
        f"Python's allocations over 512 B, allocator slack. Slack given back = the RSS the last statistics' "
        f"`malloc_trim` returned (every malloc arena's free pages, Rust's included) ÷ the workflows: at most "
        f"that much of the RSS growth is slack, not held. "
        f"Order-shaped = `BenchOrderShaped` (bench/ceiling_workflow.py): the commands a waiting order has "
        f"issued, with no-op steps, nothing of Stellar's. History: the events a waiting workflow's history "
        f"holds (protobuf bytes, mean of {o.history.sampled} orders / {b.history.sampled} bare workflows).",
        "",
        "| per waiting workflow | Stellar order | " + ("Stellar order (split: workflows process) | " if w else "")
        + ("order-shaped bare | " if s else "") + "bare workflow | order − bare |",
        "|---|---:|" + ("---:|" if w else "") + ("---:|" if s else "") + "---:|---:|",
        row("RSS growth", [_per(f) for f in cols]),
        row("allocator slack given back by malloc_trim", [_slack_per(f) for f in cols]),
        row("pymalloc (Python allocations ≤ 512 B)", [f.heap.pymalloc for f in cols]),
        row("RSS − pymalloc", [_per(f) - f.heap.pymalloc for f in cols]),
        row("GC objects (getsizeof)", [f.heap.object_bytes for f in cols]),
        row("GC objects (count)", [f.heap.objects for f in cols], unit="n"),
        row("Python memory blocks (count)", [f.heap.blocks for f in cols], unit="n"),
        row("history bytes", [f.history.total for f in cols]),
        row("history events", [f.history.events for f in cols], unit="n"),
        "",
        "GC objects that grew most per waiting order: "
        + ", ".join(f"{k} {n:.1f}× {z / KiB:.2f} KiB" for k, n, z in o.heap.by_type)
        + "; per bare workflow: " + ", ".join(f"{k} {n:.1f}× {z / KiB:.2f} KiB" for k, n, z in b.heap.by_type) + ".",
        "",
        "History of a waiting order by event type (events, bytes): "
        + ", ".join(f"{k} {n:.0f}× {z / KiB:.2f} KiB" for k, n, z in o.history.by_type) + ".",
    ]
    if sandbox:
        def cost(wf: str, runner: str) -> str:
            c = sandbox[wf][runner]
            own = f"; imports again {', '.join(c['own_modules'])}" if c["own_modules"] else ""
            return f"{c['bytes'] / KiB:.1f} KiB{own}"

        lines += ["", "The sandbox's own cost per workflow run (bench/sandbox_cost.py: Python memory, traced, of "
                  "creating one workflow instance, no server, no history): "
                  + "; ".join(f"{wf} under the worker's sandbox {cost(wf, 'worker')}, unsandboxed "
                              f"{cost(wf, 'unsandboxed')}, the SDK's default sandbox {cost(wf, 'sdk default sandbox')}"
                              for wf in sandbox) + "."]
    return lines


async def run(stack: BenchStack, orders: int = 1000, concurrency: int = 16, customers: int = 50,
              timeout: float = 600.0, variant: tuple[str, ...] = (), shaped: bool = True,
              sandbox_instances: int = 100, drift_seconds: int = DRIFT_SECONDS, split: bool = True) -> str:
    """Fill the worker with ``orders`` waiting orders (``variant``: bench/heap_worker.py arguments,
    e.g. ``("--runner", "unsandboxed")``), then (``split``) the same orders held by a ``--role
    workflows`` process beside a ``--role activities`` one, then the bare ceiling and (``shaped``)
    the order-shaped one; ``sandbox_instances``: workflow instances bench/sandbox_cost.py creates
    per runner; ``drift_seconds``: how long the filled worker is watched; returns the markdown."""
    orders = max(2, orders)
    customers = max(1, min(customers, orders))
    progress(f"worker memory: starting simulator (paused), worker and API; {orders} orders to wait")
    o = await fill_orders(stack, orders, concurrency, customers, timeout, variant, drift_seconds)
    w = None
    if split:
        progress(f"worker memory: the same with a workflows process and an activities process; {orders} orders")
        w = await fill_orders(stack, orders, concurrency, customers, timeout, variant, drift_seconds, split=True)
    progress(f"worker memory: ceiling, a bare worker with {orders} bare waiting workflows")
    b = await bare_ceiling(stack, orders, concurrency, timeout=timeout)
    s = None
    if shaped:
        progress(f"worker memory: the bare worker with {orders} order-shaped waiting workflows")
        s = await bare_ceiling(stack, orders, concurrency, timeout=timeout, shape=OrderShaped)
    sandbox = await sandbox_costs(sandbox_instances)
    per_order, per_bare = _per(o), _per(b)

    def times(a: float, c: float) -> str:
        return f"{a / c:.1f}×" if c > 0 else "n/a (below the RSS noise)"

    shaped_line = (f" The SDK alone keeps {_per(s) / 1024:.1f} KiB per waiting workflow of the order's shape "
                   f"(order-shaped bare workflow): the order is {times(per_order, _per(s))} that."
                   + shape_verdict(per_order, _per(s), per_bare)
                   if s and _per(s) > 0 else "")
    worker = ("`worker.main` as `python worker.py` runs it" if not variant
              else f"`worker.main` with `{' '.join(variant)}` (a variant, not what `python worker.py` runs)")
    rows = [f"| Stellar worker idle (monitor running, no order) | 0 | {o.idle / MiB:.1f} | — |",
            f"| one order waiting (workflow sandbox loaded) | 1 | {o.one / MiB:.1f} | {(o.one - o.idle) / MiB:+.1f} MiB |",
            f"| every order waiting for its night | {o.waiting} | {o.full / MiB:.1f} | {(o.full - o.idle) / MiB:+.1f} MiB |"]
    split_line = ""
    if w is not None and w.activities:
        a_idle, a_one, a_full = w.activities
        rows += [f"| split: workflows process (`--role workflows`) idle | 0 | {w.idle / MiB:.1f} | — |",
                 f"| split: workflows process, every order waiting | {w.waiting} | {w.full / MiB:.1f} | "
                 f"{(w.full - w.idle) / MiB:+.1f} MiB |",
                 f"| split: its activities process (`--role activities`), every order waiting | {w.waiting} | "
                 f"{a_full / MiB:.1f} | {(a_full - a_idle) / MiB:+.1f} MiB |"]
        verdict = ("most of the one-process growth per order was the activities' high-water"
                   if _per(w) <= 0.8 * per_order else
                   "the growth per order stays with the workflows: it is not the activities' high-water")
        split_line = (f" With the activities in another process (`stellar worker --role workflows` beside "
                      f"`--role activities`, docs/operations.md §5): {_per(w) / 1024:.1f} KiB per waiting order "
                      f"in the workflows process (**{times(_per(w), per_bare)}** the bare one; {w.waiting} waiting "
                      f"when measured), while the activities process grew {(a_full - a_one) / MiB:+.1f} MiB: "
                      f"{verdict}.")
    return "\n".join([
        f"Worker = {worker}, in `python -m bench.heap_worker` (one process; a signal handler writes heap "
        f"statistics); simulator clock paused at {DAYTIME:%Y-%m-%d %H:%M} UTC so orders wait; M42, L 1×60 s; "
        f"{customers} customers. Ceiling: `python -m bench.bare_worker` (one process, the worker's own `Worker` "
        f"options and data converter, its workflow module passed through the sandbox as `workflows` is, same "
        f"hook) holding as many bare workflows waiting for a signal.",
        "",
        "| worker state | open workflows | RSS MiB | vs idle |",
        "|---|---:|---:|---:|",
        f"| ceiling: bare worker idle | 0 | {b.idle / MiB:.1f} | ceiling |",
        f"| ceiling: one bare workflow waiting | 1 | {b.one / MiB:.1f} | {(b.one - b.idle) / MiB:+.1f} MiB |",
        f"| ceiling: every bare workflow waiting | {orders} | {b.full / MiB:.1f} | {(b.full - b.idle) / MiB:+.1f} MiB |",
        *([f"| bare worker, every order-shaped workflow waiting | {orders} | {s.full / MiB:.1f} | "
           f"{(s.full - s.idle) / MiB:+.1f} MiB |"] if s else []),
        *rows,
        "",
        f"**Per waiting order: {per_order / 1024:.1f} KiB** ((all − one) ÷ {max(1, o.waiting - 1)}) vs "
        f"{per_bare / 1024:.1f} KiB per bare waiting workflow: **{times(per_order, per_bare)}** (goal ≤ {GOAL_TIMES:g}×)."
        f"{shaped_line}{split_line} {o.note}",
        "",
        *breakdown(o, b, s, sandbox, w),
    ])


def main(argv: list[str] | None = None) -> str:
    """Run the bench on its own stack; print and return the markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--runner", choices=("sandbox", "unsandboxed"), default="sandbox",
                        help="the worker's workflow runner (a variant to measure; the worker runs the sandbox)")
    parser.add_argument("--max-cached", type=int, default=None,
                        help="the worker's max_cached_workflows (a variant to measure; the worker keeps the SDK's 1,000)")
    parser.add_argument("--no-shaped", action="store_true", help="skip the order-shaped ceiling")
    parser.add_argument("--no-split", action="store_true",
                        help="skip the same orders held by a --role workflows process beside a --role activities one")
    a = parser.parse_args(argv)
    variant = (*(("--runner", a.runner) if a.runner != "sandbox" else ()),
               *(("--max-cached", str(a.max_cached)) if a.max_cached is not None else ()))
    return run_standalone(run, orders=a.orders, concurrency=a.concurrency, timeout=a.timeout, variant=variant,
                          shaped=not a.no_shaped, split=not a.no_split)


if __name__ == "__main__":
    main()
