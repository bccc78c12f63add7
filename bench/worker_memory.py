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
import sys
import time
import uuid

import psutil

from bench._processes import ChildProcess, cpu_line, cpu_seconds, progress
from bench.ceiling_workflow import BareWaiting
from bench._stack import DAYTIME, BenchStack, run_standalone
from bench.orders_e2e import bounded

ORDER = {"target_name": "M42", "priority": 0, "shots": [{"filter": "L", "exposure": 60, "quantity": 1}]}
WAITING = ("submitted",)
MiB = 1024 * 1024


async def settled_rss(pid: int, seconds: float = 3.0) -> int:
    """RSS (bytes) of ``pid`` after ``seconds`` of quiet: the last of one sample per second."""
    proc = psutil.Process(pid)
    rss = proc.memory_info().rss
    for _ in range(max(1, int(seconds))):
        await asyncio.sleep(1.0)
        rss = proc.memory_info().rss
    return rss


async def bare_ceiling(stack: BenchStack, n: int, concurrency: int = 16, timeout: float = 120.0) -> tuple[int, int, int]:
    """RSS (bytes) of a bare worker process (bench/bare_worker.py): idle, with one and with ``n``
    ``BenchBareWaiting`` workflows waiting (each answered a query, so each ran its first task)."""
    queue = f"bench-bare-{uuid.uuid4().hex[:6]}"
    child = ChildProcess("bare worker", [sys.executable, "-m", "bench.bare_worker", stack.temporal_address,
                                         stack.client.namespace, queue], {}, stack.tmp / f"{queue}.log")
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
        await bounded(concurrency, list(range(1, n)), wait_one)
        full = await settled_rss(child.pid)
    finally:
        await asyncio.to_thread(child.stop)
        await stack.terminate(ids)
    return idle, one, full


async def run(stack: BenchStack, orders: int = 1000, concurrency: int = 16, customers: int = 50,
              timeout: float = 600.0) -> str:
    """Fill the worker with ``orders`` waiting orders; returns the markdown section."""
    orders = max(2, orders)
    customers = max(1, min(customers, orders))
    progress(f"worker memory: starting simulator (paused), worker and API; {orders} orders to wait")
    async with stack.deployment("memory", sim={"speed": 0.0, "start_time": DAYTIME}) as dep:
        assert dep.worker is not None
        people = await stack.customers(customers, credits=math.ceil(orders / customers) + 1)
        idle = await settled_rss(dep.worker.pid)
        first = await dep.post_order(people[0].api_key, ORDER)
        await dep.wait_final([first["id"]], 120, label="memory: first order", statuses=WAITING)
        one = await settled_rss(dep.worker.pid)

        progress(f"worker memory: posting {orders - 1} more orders, {concurrency} at a time")
        cpu0 = cpu_seconds(dep.worker, dep.api)
        t0 = time.perf_counter()

        async def post(i: int) -> int:
            return (await dep.post_order(people[(i + 1) % customers].api_key, ORDER))["id"]

        ids = [first["id"], *await bounded(concurrency, list(range(orders - 1)), post)]
        post_s = time.perf_counter() - t0
        counts = await dep.wait_final(ids, timeout, label="memory: waiting orders", statuses=WAITING)
        fill_s = time.perf_counter() - t0
        cpu = cpu_line(cpu0, cpu_seconds(dep.worker, dep.api), fill_s)
        waiting = counts.get("submitted", 0)
        full = await settled_rss(dep.worker.pid)
        await asyncio.to_thread(dep.worker.stop)  # before terminating: a terminated order would wake its cached workflow
        await stack.terminate([f"order-{i}" for i in ids])

    progress(f"worker memory: ceiling, a bare worker with {orders} bare waiting workflows")
    b_idle, b_one, b_full = await bare_ceiling(stack, orders, concurrency)
    per_order = (full - one) / max(1, waiting - 1)
    per_bare = (b_full - b_one) / max(1, orders - 1)
    ratio = f"{per_order / per_bare:.1f}×" if per_bare > 0 else "n/a (below the RSS noise)"
    statuses = ", ".join(f"{s} {n}" for s, n in sorted(counts.items()))
    return "\n".join([
        f"Worker = `python worker.py` (one process); simulator clock paused at {DAYTIME:%Y-%m-%d %H:%M} UTC so "
        f"orders wait; M42, L 1×60 s; {customers} customers. Ceiling: `python -m bench.bare_worker` (one process, "
        f"same SDK defaults) holding as many bare workflows waiting for a signal.",
        "",
        "| worker state | open workflows | RSS MiB | vs idle |",
        "|---|---:|---:|---:|",
        f"| ceiling: bare worker idle | 0 | {b_idle / MiB:.1f} | ceiling |",
        f"| ceiling: one bare workflow waiting | 1 | {b_one / MiB:.1f} | {(b_one - b_idle) / MiB:+.1f} MiB |",
        f"| ceiling: every bare workflow waiting | {orders} | {b_full / MiB:.1f} | {(b_full - b_idle) / MiB:+.1f} MiB |",
        f"| Stellar worker idle (monitor running, no order) | 0 | {idle / MiB:.1f} | — |",
        f"| one order waiting (workflow sandbox loaded) | 1 | {one / MiB:.1f} | {(one - idle) / MiB:+.1f} MiB |",
        f"| every order waiting for its night | {waiting} | {full / MiB:.1f} | {(full - idle) / MiB:+.1f} MiB |",
        "",
        f"**Per waiting order: {per_order / 1024:.1f} KiB** ((all − one) ÷ {max(1, waiting - 1)}) vs "
        f"{per_bare / 1024:.1f} KiB per bare waiting workflow: **{ratio}** (goal ≤ 2×). "
        f"Statuses when measured: {statuses}. {orders - 1} POSTs took {post_s:.1f} s; all waiting after "
        f"{fill_s:.1f} s. {cpu}.",
    ])


def main(argv: list[str] | None = None) -> str:
    """Run the bench on its own stack; print and return the markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=600.0)
    a = parser.parse_args(argv)
    return run_standalone(run, orders=a.orders, concurrency=a.concurrency, timeout=a.timeout)


if __name__ == "__main__":
    main()
