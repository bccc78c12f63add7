"""Round trips per second and p50/p99 latency through ``VoyagerPool`` against the simulator,
beside a bare asyncio line echo over the same loopback (the ceiling), in one run.

    .venv/bin/python -m bench.voyager_pool [--seconds 2] [--pool 4]

One "round trip" through the pool = borrow a connection, send ``RemoteGetStatus`` (UID added),
wait for the JSON-RPC reply AND the UID-matched ``RemoteActionResult``, give the connection back.
The echo ceiling: the same number of connections as the pool, each request takes the next one
round-robin (behind a FIFO lock), writes one request-sized line and reads one line back — no JSON,
no second message, no events.

Fairness: both servers run in this process, on the same loop as their clients, so each row's time
is client *and* server work, measured alike (the echo server's share is one ``readline`` and one
``write``; the simulator's is decoding the request and encoding a result, its reply being a
pre-encoded line). The echo reads through asyncio streams on both sides — a future and a task
wake-up per read — where the pool's client and the simulator read from socket callbacks: the
ceiling is no bare minimum of loop work, which the report's profile paragraph states. Beside the
rates, CPU µs per round trip (this process's CPU time / round trips) moves far less with the load
of a shared machine than the rates do. A short cProfile (CPU-time clock) of the pool and of the echo at the goal's concurrency
then says what one round trip costs each — Python calls, loop callbacks, futures, socket sends,
JSON — and where the pool's time goes: the client (``voyager/`` pool, connection, protocol), the
simulator, JSON, and the event loop with its socket calls.
``main()`` prints the markdown and returns it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._cpu_profile import cpu_profiled
from core.settings import VoyagerSettings
from core.voyager_clients import pool_from_settings
from voyager import protocol
from voyager.simulator import SimulatorConfig, VoyagerSimulator

CONCURRENCY = (1, 8, 64)
#: The goal row (``make bench``): pool round trips at this concurrency ≥ this share of the echo's.
GOAL_CONCURRENCY, GOAL_RATIO = 64, 0.5
WORDS = ["bench1", "bench2", "bench3", "bench4"]
#: Daylight at the default site: the simulator's scheduler stays idle during the measurement.
NOON = datetime(2025, 6, 21, 12, 0, tzinfo=UTC)


async def _measure(
    op: Callable[[], Awaitable[object]], concurrency: int, seconds: float
) -> tuple[float, float, float, float]:
    """Run ``op`` from ``concurrency`` workers for ``seconds``; return (ops/s, p50 ms, p99 ms,
    process CPU µs per op)."""
    latencies: list[float] = []

    async def worker() -> None:
        while time.perf_counter() < stop_at or not latencies:  # one op at least, however slow the machine
            t0 = time.perf_counter()
            await op()
            latencies.append(time.perf_counter() - t0)

    for _ in range(min(20, concurrency)):  # warm-up
        await op()
    stop_at = time.perf_counter() + seconds  # after the warm-up: it is not measured
    t_start, cpu_start = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - t_start, time.process_time() - cpu_start
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return len(latencies) / elapsed, q[49] * 1e3, q[98] * 1e3, cpu / len(latencies) * 1e6


async def _echo_ceiling(size: int, line_len: int, concurrency: int, seconds: float,
                        measure: Callable[..., Awaitable[Any]] | None = None) -> Any:
    """The echo ceiling's (ops/s, p50 ms, p99 ms, CPU µs per op); ``measure`` replaces
    :func:`_measure` (the profile runs the same echo under cProfile)."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(size)]
    locks = [asyncio.Lock() for _ in range(size)]  # FIFO-fair, like the pool's hand-off
    payload = b"x" * (line_len - 2) + b"\r\n"
    turn = iter(range(1 << 62))

    async def op() -> None:
        i = next(turn) % size
        async with locks[i]:
            reader, writer = conns[i]
            writer.write(payload)
            await writer.drain()
            await reader.readline()

    try:
        return await (measure or _measure)(op, concurrency, seconds)
    finally:
        for _, writer in conns:
            writer.close()
        server.close()
        await server.wait_closed()


async def run(seconds: float = 2.0, pool_size: int = 4) -> str:
    """Start an idle simulator, measure pool and echo at each concurrency, return the table."""
    with tempfile.TemporaryDirectory() as tmp:
        sim = VoyagerSimulator(
            SimulatorConfig(
                port=0, username="bench", password="pw", mac_key="K", mac_words=WORDS,
                speed=1.0, start_time=NOON, fit_dir=Path(tmp), state_file=None,
            )
        )
        await sim.start()
        settings = VoyagerSettings(
            host="127.0.0.1", port=sim.port, username="bench", password="pw", mac_key="K",
            mac_words=",".join(WORDS), pool_size=pool_size, pool_acquire_timeout=60,
        )
        pool = pool_from_settings(settings, health_interval=3600)
        await pool.start()
        request_len = len(protocol.encode_request(protocol.M_GET_STATUS, {"UID": protocol.new_uid()}, 1))

        async def through_pool() -> None:
            async with pool.connection() as conn:
                await conn.send_command(protocol.M_GET_STATUS)

        rows = []
        try:
            for c in CONCURRENCY:
                p = await _measure(through_pool, c, seconds)
                e = await _echo_ceiling(pool_size, request_len, c, seconds)
                rows.append((c, p, e))
            profile = await _profile(through_pool, GOAL_CONCURRENCY, min(seconds, 1.0), pool_size, request_len,
                                     {c: (p[3], e[3]) for c, p, e in rows})
        finally:
            await pool.close()
            await sim.stop()
    lines = [
        f"Voyager pool ({pool_size} connections, RemoteGetStatus reply + RemoteActionResult) vs bare "
        f"asyncio line echo ({pool_size} connections, {request_len}-byte lines), {seconds:g} s per cell, loopback; "
        "both servers in this process, on their clients' loop (CPU µs = this process's CPU time per round trip, "
        "client and server together)",
        "",
        "| concurrency | pool rt/s | pool p50 ms | pool p99 ms | pool CPU µs/rt | echo rt/s | echo p50 ms | "
        "echo p99 ms | echo CPU µs/rt | pool/echo | goal |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c, (prps, p50, p99, pcpu), (erps, e50, e99, ecpu) in rows:
        goal = f"≥ {GOAL_RATIO:.0%}" if c == GOAL_CONCURRENCY else "—"
        lines.append(
            f"| {c} | {prps:,.0f} | {p50:.2f} | {p99:.2f} | {pcpu:.0f} | {erps:,.0f} | {e50:.2f} | {e99:.2f} | "
            f"{ecpu:.0f} | {prps / erps:.0%} | {goal} |"
        )
    lines += ["", profile]
    return "\n".join(lines)


#: Profile groups, first match wins: (name, substrings of a function's file or name).
_GROUPS = (
    ("simulator (voyager/simulator)", ("voyager/simulator/",)),
    ("client: pool, connection, protocol (voyager/)", ("voyager/",)),
    ("JSON (orjson / json)", ("orjson", "json/")),
    ("event loop, futures, sockets (asyncio)", ("asyncio", "selectors", "socket", "select.epoll", "_contextvars",
                                                 "Future", "heapq", "collections.deque")),
    ("bench driver", ("bench/",)),
)


#: Per round trip counts read off a profile: (label, match on (file, function)).
_COUNTS = (
    ("Python function calls", None),
    ("loop callbacks scheduled (`call_soon`)", ("base_events.py", "_call_soon")),
    ("futures created", ("base_events.py", "create_future")),
    ("`socket.send` calls", ("~", "<method 'send' of '_socket.socket' objects>")),
    ("JSON encodes + decodes", ("~", "<orjson.")),
)


async def _profiled(op: Callable[[], Awaitable[object]], concurrency: int, seconds: float) -> tuple[dict, int]:
    """``_measure`` under cProfile with a CPU-time clock (the shared machine's other processes do not
    count); returns the raw stats and the round trips made."""
    done = [0]

    async def counted() -> None:
        await op()
        done[0] += 1

    return await cpu_profiled(_measure(counted, concurrency, seconds)), max(done[0], 1)


def _per_round_trip(stats: dict, n: int) -> dict[str, float]:
    out = {}
    for label, match in _COUNTS:
        calls = 0
        for (path, _, name), (_, ncalls, *_rest) in stats.items():
            if match is None or (path.endswith(match[0]) and name.startswith(match[1])):
                calls += ncalls
        out[label] = calls / n
    return out


async def _profile(op: Callable[[], Awaitable[object]], concurrency: int, seconds: float, pool_size: int,
                   request_len: int, cpu: dict[int, tuple[float, float]]) -> str:
    """cProfile pool and echo at ``concurrency`` for ``seconds`` each; markdown: what one round trip
    costs each (calls, loop callbacks, futures, sends), the pool's own time by group, top functions."""
    stats, n = await _profiled(op, concurrency, seconds)
    echo_stats, echo_n = await _echo_ceiling(pool_size, request_len, concurrency, seconds,
                                             measure=lambda o, c, s: _profiled(o, c, s))
    pool_counts, echo_counts = _per_round_trip(stats, n), _per_round_trip(echo_stats, echo_n)
    groups: dict[str, float] = {}
    total = 0.0
    top: list[tuple[float, str]] = []
    for (path, line, name), (_, _, own, _, _) in stats.items():
        total += own
        where = f"{path}:{name}"
        group = next((g for g, keys in _GROUPS if any(k in where for k in keys)), "other (pydantic, builtins, …)")
        groups[group] = groups.get(group, 0.0) + own
        short = path.split("/site-packages/")[-1].split("/lib/python3")[-1].lstrip("/")
        top.append((own, f"`{short.rsplit('/', 2)[-2:][-1] if '/' in short else short}:{line} {name}`"))
    top.sort(reverse=True)
    pool_cpu, echo_cpu = cpu.get(concurrency, (0.0, 0.0))
    lines = [
        f"What one round trip costs at concurrency {concurrency} (cProfile on a CPU-time clock, {seconds:g} s "
        "each; the counts are per round trip, client and server together):",
        "",
        "| per round trip | pool | echo |",
        "|---|---:|---:|",
        f"| CPU µs (unprofiled row above) | {pool_cpu:.0f} | {echo_cpu:.0f} |",
        *(f"| {label} | {pool_counts[label]:.1f} | {echo_counts[label]:.1f} |" for label, _ in _COUNTS),
        "",
        "A pool round trip is two messages back (the reply and the UID-matched result) where the echo returns its "
        "line untouched: the request's encode and decode, the result's encode on the simulator (its success reply "
        "is a pre-encoded line), and two decodes on the client. The loop work differs the other way: the echo "
        "reads through asyncio streams on both sides (a future and a task wake-up per read, on its server as on "
        "its client), while the pool's connection and the simulator's session read from their socket callbacks "
        "(voyager/client.py, voyager/simulator/link.py), so a pool round trip wakes only the borrower and the "
        "borrower next in line; the simulator's reply and result leave in one write at the end of the chunk that "
        "carried the request. What remains is the Python work of each step (framing, matching, the success rules, "
        "the simulator's command table), spread thin:",
        "",
        "| part (pool, own time) | share |",
        "|---|---:|",
        *(f"| {g} | {t / total:.0%} |" for g, t in sorted(groups.items(), key=lambda kv: -kv[1])),
        "",
        "Top functions by own time: " + ", ".join(f"{name} {own / total:.0%}" for own, name in top[:8]) + ".",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    """Run the benchmark, print the markdown table and return it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time per cell")
    parser.add_argument("--pool", type=int, default=4, help="pool size")
    args = parser.parse_args(argv)
    table = asyncio.run(run(args.seconds, args.pool))
    print(table)
    return table


if __name__ == "__main__":
    main()
