"""Where one ``POST /api/orders`` spends its time: the API in this process (``create_app`` behind
httpx's ASGI transport, the same settings, database and Temporal server as the bench's child API),
``requests`` orders one at a time while SQLAlchemy event listeners count statements, transactions
and connection checkouts (bench/_sql_count.py) and a stack sampler records where the threads are
(bench/_sampler.py); then as many again under cProfile on a CPU-time clock (bench/_cpu_profile.py):
the CPU one request costs this process (the API and httpx's ASGI client; the Temporal client's Rust
threads and PostgreSQL are not in it), its Python function calls, and where that time goes by
package and by function. bench/api_latency.py prints the result under its table.
"""

from __future__ import annotations

import time
from collections import Counter

import httpx
from temporalio.client import Client

from api.app import create_app
from bench._cpu_profile import cpu_profiled
from bench._sampler import StackSampler, _package
from bench._sql_count import count_sql
from core.settings import Settings


async def profile_post(settings: Settings, client: Client, headers: list[dict[str, str]], body: dict,
                       requests: int = 30) -> tuple[list[str], list[int]]:
    """Returns (markdown lines, ids of the orders created — their workflows are left to the caller)."""
    app = create_app(settings, temporal_client=client)
    created: list[int] = []
    async with app.router.lifespan_context(app):
        engine = app.state.resources.engine
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as http:

            async def post(i: int) -> None:
                r = await http.post("/api/orders", json=body, headers=headers[i % len(headers)])
                if r.status_code != 201:
                    raise RuntimeError(f"POST /api/orders answered {r.status_code}: {r.text[:300]}")
                created.append(r.json()["id"])

            for i in range(3):  # warm-up: prepared statements, nights of the sky computed
                await post(i)
            with count_sql(engine) as counted, StackSampler() as sampler:
                t0 = time.perf_counter()
                for i in range(requests):
                    await post(i)
                elapsed = time.perf_counter() - t0

            async def again() -> None:
                for i in range(requests):
                    await post(i)

            stats = await cpu_profiled(again())
    lines = [
        f"Profile of `POST /api/orders` in the bench process ({requests} requests, one at a time, "
        f"{elapsed / requests * 1e3:.1f} ms each here): SQL per request {counted.per(requests)}.",
        "",
        *(f"* {line}" for line in sampler.summary()),
        f"* {cpu_summary(stats, requests)}",
    ]
    return lines, created


def _where(path: str) -> str:
    if path.startswith("~") or "/lib/python3" in path and "site-packages" not in path:
        return "asyncio/stdlib"
    return _package(path)


def cpu_summary(stats: dict, requests: int, top: int = 8) -> str:
    """One markdown line from a ``pstats`` table of ``requests`` POSTs: CPU and Python function
    calls per request, own time by package and the busiest functions (own time; the profiler's
    own cost inflates both, evenly)."""
    own: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    calls = 0
    for (path, line, name), (_, ncalls, tottime, _, _) in stats.items():
        own[_where(path)] += tottime
        functions[f"{_where(path)}:{path.rsplit('/', 1)[-1]}:{name}"] += tottime
        calls += ncalls
    total = sum(own.values()) or 1.0
    packages = ", ".join(f"{k} {v / total:.0%}" for k, v in own.most_common(top))
    busiest = ", ".join(f"`{k}` {v / total:.0%}" for k, v in functions.most_common(top))
    return (f"CPU in this process under cProfile ({requests} more requests): {total / requests * 1e3:.1f} ms and "
            f"{calls / requests:,.0f} Python function calls per request; own time by package: {packages}; "
            f"busiest functions: {busiest}")
