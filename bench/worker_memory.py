"""Worker resident memory with 1,000 open orders waiting for their night (bench report "Worker memory"), beside the
same worker process idle.

    .venv/bin/python -m bench.worker_memory [--orders 1000] [--concurrency 16]

The worker (``python worker.py``) and the API run as child processes; the Voyager simulator runs
here with its clock paused at midsummer noon (nothing is observable and, paused, it never
fast-forwards), so every order is held, submitted to RoboTarget and then waits on its workflow
condition — the state of an order before its night. Orders (M42, L 1×60 s) are POSTed by 50
customers. The worker's RSS (psutil) is read: idle after start (its observatory monitor running),
with one order waiting (the workflow sandbox loaded once), and with every order waiting. Per order
= (all − one) ÷ (orders − 1). The worker keeps at most 1,000 workflows in its cache (the Temporal
SDK's default ``max_cached_workflows``); past that, evicted workflows use no memory until they wake.

Ceiling: a worker process running nothing but a bare workflow that waits for a signal
(bench/bare_worker.py, same SDK defaults), read the same way with as many workflows waiting, in
the same run: the least the SDK keeps per cached waiting workflow.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench._processes import ChildProcess, cpu_line, cpu_seconds, progress
from bench._stack import DAYTIME, BenchStack, run_standalone
from bench.ceiling_workflow import BareWaiting
from bench.memory_breakdown import HeapDiff, HistorySize, heap_diff, history_size
from bench.orders_e2e import bounded

ORDER = {"target_name": "M42", "priority": 0, "shots": [{"filter": "L", "exposure": 60, "quantity": 1}]}
WAITING = ("submitted",)
MiB = 1024 * 1024
#: Waiting workflows whose history is read for the breakdown (each one a fetch).
HISTORY_SAMPLE = 20


async def settled_rss(pid: int, seconds: float = 3.0) -> int:
    """RSS (bytes) of ``pid`` after ``seconds`` of quiet: the last of one sample per second."""
    proc = psutil.Process(pid)
    rss = proc.memory_info().rss
    for _ in range(max(1, int(seconds))):
        await asyncio.sleep(1.0)
        rss = proc.memory_info().rss
    return rss


async def _snapshot(child: ChildProcess, n: int, timeout: float = 120.0) -> Path:
    """Ask a traced worker (bench/heap_worker.py, bench/bare_worker.py) for heap snapshot ``n``
    (SIGUSR1); returns its path once written."""
    os.kill(child.pid, signal.SIGUSR1)
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout
    while True:
        match = re.search(rf"heap snapshot (\S+heap-{n}\.snap)", child.log_tail(20000))
        if match:
            return Path(match.group(1))
        child.check_alive()
        if loop.time() > until:
            raise RuntimeError(f"{child.name}: no heap snapshot {n} within {timeout:g} s:\n{child.log_tail()}")
        await asyncio.sleep(0.5)


@dataclass
class Filled:
    """One worker filled with waiting workflows: RSS (bytes) idle, with one and with all waiting;
    ``heap``: the Python-heap diff between one and all (traced runs only); ``history``: the
    histories of a sample of the waiting workflows; ``waiting``: how many waited at the end."""

    idle: int
    one: int
    full: int
    waiting: int
    heap: HeapDiff | None = None
    history: HistorySize | None = None
    note: str = ""


async def bare_ceiling(stack: BenchStack, n: int, concurrency: int = 16, timeout: float = 120.0,
                       traced: bool = False) -> Filled:
    """A bare worker process (bench/bare_worker.py) idle, with one and with ``n``
    ``BenchBareWaiting`` workflows waiting (each answered a query, so each ran its first task);
    ``traced``: under tracemalloc, with the heap diff (its RSS then includes tracing's own)."""
    queue = f"bench-bare-{uuid.uuid4().hex[:6]}"
    argv = [sys.executable, "-m", "bench.bare_worker", stack.temporal_address, stack.client.namespace, queue]
    if traced:
        argv.append(str(stack.tmp / f"{queue}-heap"))
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
            handle = await stack.client.start_workflow(BareWaiting.run, i, id=ids[i], task_queue=queue)
            await handle.query(BareWaiting.waiting)

        await wait_one(0)
        one = await settled_rss(child.pid)
        snap_one = await _snapshot(child, 1) if traced else None
        await bounded(concurrency, list(range(1, n)), wait_one)
        full = await settled_rss(child.pid)
        heap = heap_diff(snap_one, await _snapshot(child, 2), n) if snap_one is not None else None
        history = None if traced else await history_size(stack.client, ids[:HISTORY_SAMPLE])
    finally:
        await asyncio.to_thread(child.stop)
        await stack.terminate(ids)
    return Filled(idle, one, full, n, heap, history)


async def fill_orders(stack: BenchStack, orders: int, concurrency: int, customers: int, timeout: float,
                      traced: bool = False) -> Filled:
    """Stellar's worker (``python worker.py``; ``traced``: bench/heap_worker.py, the same worker
    under tracemalloc) idle, with one and with ``orders`` orders waiting for their night."""
    name = "heap" if traced else "memory"
    snapshots = stack.tmp / f"{name}-{uuid.uuid4().hex[:6]}"
    argv = [sys.executable, "-m", "bench.heap_worker", str(snapshots)] if traced else None
    async with stack.deployment(name, sim={"speed": 0.0, "start_time": DAYTIME}, worker_argv=argv) as dep:
        assert dep.worker is not None
        people = await stack.customers(customers, credits=math.ceil(orders / customers) + 1)
        idle = await settled_rss(dep.worker.pid)
        first = await dep.post_order(people[0].api_key, ORDER)
        await dep.wait_final([first["id"]], 120, label=f"{name}: first order", statuses=WAITING)
        one = await settled_rss(dep.worker.pid)
        snap_one = await _snapshot(dep.worker, 1) if traced else None

        progress(f"worker {name}: posting {orders - 1} more orders, {concurrency} at a time")
        cpu0 = cpu_seconds(dep.worker, dep.api)
        t0 = time.perf_counter()

        async def post(i: int) -> int:
            return (await dep.post_order(people[(i + 1) % customers].api_key, ORDER))["id"]

        ids = [first["id"], *await bounded(concurrency, list(range(orders - 1)), post)]
        post_s = time.perf_counter() - t0
        counts = await dep.wait_final(ids, timeout, label=f"{name}: waiting orders", statuses=WAITING)
        fill_s = time.perf_counter() - t0
        cpu = cpu_line(cpu0, cpu_seconds(dep.worker, dep.api), fill_s)
        waiting = counts.get("submitted", 0)
        full = await settled_rss(dep.worker.pid)
        heap = heap_diff(snap_one, await _snapshot(dep.worker, 2), waiting) if snap_one is not None else None
        history = None if traced else await history_size(stack.client, [f"order-{i}" for i in ids[:HISTORY_SAMPLE]])
        await asyncio.to_thread(dep.worker.stop)  # before terminating: a terminated order would wake its cached workflow
        await stack.terminate([f"order-{i}" for i in ids])
    statuses = ", ".join(f"{s} {n}" for s, n in sorted(counts.items()))
    note = (f"Statuses when measured: {statuses}. {orders - 1} POSTs took {post_s:.1f} s; all waiting after "
            f"{fill_s:.1f} s. {cpu}.")
    return Filled(idle, one, full, waiting, heap, history, note)


def _per(f: Filled) -> float:
    """RSS growth (bytes) per waiting workflow past the first."""
    return (f.full - f.one) / max(1, f.waiting - 1)


def breakdown(order: Filled, bare: Filled, order_heap: HeapDiff, bare_heap: HeapDiff) -> list[str]:
    """The markdown of where a waiting order's memory goes, beside a bare waiting workflow's."""
    KiB = 1024
    hist_o, hist_b = order.history, bare.history
    assert hist_o is not None and hist_b is not None
    rss_o, rss_b = _per(order), _per(bare)
    lines = [
        f"Where it goes, per waiting workflow. Python heap: `tracemalloc` snapshot diff between one and "
        f"{order_heap.workflows} waiting in the same worker traced from the first snapshot on (bench/heap_worker.py; bare: "
        f"bench/bare_worker.py traced), a separate fill of its own, so tracing's own memory stays out of the "
        f"RSS rows above. Outside the Python heap = RSS growth − heap growth: the SDK's core (Rust: each "
        f"cached run's state machines and the history it was fed), allocator slack, thread arenas. History: "
        f"the events each workflow's history holds when it waits (protobuf bytes, mean of "
        f"{hist_o.sampled} orders / {hist_b.sampled} bare workflows).",
        "",
        "| per waiting workflow | Stellar order | bare workflow | order − bare |",
        "|---|---:|---:|---:|",
        f"| RSS growth | {rss_o / KiB:.1f} KiB | {rss_b / KiB:.1f} KiB | {(rss_o - rss_b) / KiB:+.1f} KiB |",
        f"| Python heap (tracemalloc) | {order_heap.total / KiB:.1f} KiB | {bare_heap.total / KiB:.1f} KiB | "
        f"{(order_heap.total - bare_heap.total) / KiB:+.1f} KiB |",
        f"| Python heap blocks | {order_heap.blocks:,.0f} | {bare_heap.blocks:,.0f} | "
        f"{order_heap.blocks - bare_heap.blocks:+,.0f} |",
        f"| outside the Python heap (RSS − heap) | {(rss_o - order_heap.total) / KiB:.1f} KiB | "
        f"{(rss_b - bare_heap.total) / KiB:.1f} KiB | "
        f"{((rss_o - order_heap.total) - (rss_b - bare_heap.total)) / KiB:+.1f} KiB |",
        f"| history: events / bytes | {hist_o.events:.0f} / {hist_o.total / KiB:.1f} KiB | "
        f"{hist_b.events:.0f} / {hist_b.total / KiB:.1f} KiB | {(hist_o.total - hist_b.total) / KiB:+.1f} KiB |",
        "",
        "Heap per waiting order by where it was allocated (the innermost Stellar frame, else the library): "
        + ", ".join(f"{k} {v / KiB:.1f} KiB" for k, v in order_heap.by_origin)
        + "; by allocating library: " + ", ".join(f"{k} {v / KiB:.1f} KiB" for k, v in order_heap.by_library)
        + ". Bare workflow by library: " + ", ".join(f"{k} {v / KiB:.1f} KiB" for k, v in bare_heap.by_library) + ".",
        "",
        "History bytes per waiting order by event type: "
        + ", ".join(f"{k} {n:.0f}× {b / KiB:.2f} KiB" for k, n, b in hist_o.by_type) + ".",
    ]
    return lines


async def run(stack: BenchStack, orders: int = 1000, concurrency: int = 16, customers: int = 50,
              timeout: float = 600.0, heap_orders: int = 200) -> str:
    """Fill the worker with ``orders`` waiting orders, then the bare ceiling, then the traced
    passes with ``heap_orders`` each; returns the markdown section."""
    orders = max(2, orders)
    heap_orders = max(2, min(heap_orders, orders))
    customers = max(1, min(customers, orders))
    progress(f"worker memory: starting simulator (paused), worker and API; {orders} orders to wait")
    o = await fill_orders(stack, orders, concurrency, customers, timeout)
    progress(f"worker memory: ceiling, a bare worker with {orders} bare waiting workflows")
    b = await bare_ceiling(stack, orders, concurrency)
    progress(f"worker memory: Python heap, traced workers with {heap_orders} waiting orders / bare workflows")
    o_heap = (await fill_orders(stack, heap_orders, concurrency, min(customers, heap_orders), timeout, traced=True)).heap
    b_heap = (await bare_ceiling(stack, heap_orders, concurrency, traced=True)).heap
    assert o_heap is not None and b_heap is not None
    per_order, per_bare = _per(o), _per(b)
    ratio = f"{per_order / per_bare:.1f}×" if per_bare > 0 else "n/a (below the RSS noise)"
    return "\n".join([
        f"Worker = `python worker.py` (one process); simulator clock paused at {DAYTIME:%Y-%m-%d %H:%M} UTC so "
        f"orders wait; M42, L 1×60 s; {customers} customers. Ceiling: `python -m bench.bare_worker` (one process, "
        f"same SDK defaults) holding as many bare workflows waiting for a signal.",
        "",
        "| worker state | open workflows | RSS MiB | vs idle |",
        "|---|---:|---:|---:|",
        f"| ceiling: bare worker idle | 0 | {b.idle / MiB:.1f} | ceiling |",
        f"| ceiling: one bare workflow waiting | 1 | {b.one / MiB:.1f} | {(b.one - b.idle) / MiB:+.1f} MiB |",
        f"| ceiling: every bare workflow waiting | {orders} | {b.full / MiB:.1f} | {(b.full - b.idle) / MiB:+.1f} MiB |",
        f"| Stellar worker idle (monitor running, no order) | 0 | {o.idle / MiB:.1f} | — |",
        f"| one order waiting (workflow sandbox loaded) | 1 | {o.one / MiB:.1f} | {(o.one - o.idle) / MiB:+.1f} MiB |",
        f"| every order waiting for its night | {o.waiting} | {o.full / MiB:.1f} | {(o.full - o.idle) / MiB:+.1f} MiB |",
        "",
        f"**Per waiting order: {per_order / 1024:.1f} KiB** ((all − one) ÷ {max(1, o.waiting - 1)}) vs "
        f"{per_bare / 1024:.1f} KiB per bare waiting workflow: **{ratio}** (goal ≤ 2×). {o.note}",
        "",
        *breakdown(o, b, o_heap, b_heap),
    ])


def main(argv: list[str] | None = None) -> str:
    """Run the bench on its own stack; print and return the markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--heap-orders", type=int, default=200, help="waiting workflows of the traced passes")
    a = parser.parse_args(argv)
    return run_standalone(run, orders=a.orders, concurrency=a.concurrency, timeout=a.timeout, heap_orders=a.heap_orders)


if __name__ == "__main__":
    main()
