"""Round trips per second and p50/p99 latency through ``VoyagerPool`` against the simulator,
beside a bare asyncio line echo over the same loopback (the ceiling), in one run.

    .venv/bin/python -m bench.voyager_pool [--seconds 2] [--pool 4]

One "round trip" through the pool = borrow a connection, send ``RemoteGetStatus`` (UID added),
wait for the JSON-RPC reply AND the UID-matched ``RemoteActionResult``, give the connection back.
The echo ceiling: the same number of connections as the pool, each request takes the next one
round-robin (behind a FIFO lock), writes one request-sized line and reads one line back — no JSON,
no second message, no events. Both servers run in this process, on the same loop, like the pool's.
``main()`` prints a markdown table and returns it.
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

from core.settings import VoyagerSettings
from core.voyager_clients import pool_from_settings
from voyager import protocol
from voyager.simulator import SimulatorConfig, VoyagerSimulator

CONCURRENCY = (1, 8, 64)
WORDS = ["bench1", "bench2", "bench3", "bench4"]
#: Daylight at the default site: the simulator's scheduler stays idle during the measurement.
NOON = datetime(2025, 6, 21, 12, 0, tzinfo=UTC)


async def _measure(op: Callable[[], Awaitable[object]], concurrency: int, seconds: float) -> tuple[float, float, float]:
    """Run ``op`` from ``concurrency`` workers for ``seconds``; return (ops/s, p50 ms, p99 ms)."""
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            await op()
            latencies.append(time.perf_counter() - t0)

    for _ in range(min(20, concurrency)):  # warm-up
        await op()
    t_start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t_start
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return len(latencies) / elapsed, q[49] * 1e3, q[98] * 1e3


async def _echo_ceiling(size: int, line_len: int, concurrency: int, seconds: float) -> tuple[float, float, float]:
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
        return await _measure(op, concurrency, seconds)
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
        finally:
            await pool.close()
            await sim.stop()
    lines = [
        f"Voyager pool ({pool_size} connections, RemoteGetStatus reply + RemoteActionResult) vs bare "
        f"asyncio line echo ({pool_size} connections, {request_len}-byte lines), {seconds:g} s per cell, loopback",
        "",
        "| concurrency | pool rt/s | pool p50 ms | pool p99 ms | echo rt/s | echo p50 ms | echo p99 ms | pool/echo |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c, (prps, p50, p99), (erps, e50, e99) in rows:
        lines.append(
            f"| {c} | {prps:,.0f} | {p50:.2f} | {p99:.2f} | {erps:,.0f} | {e50:.2f} | {e99:.2f} | {prps / erps:.0%} |"
        )
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
