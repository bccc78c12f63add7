"""``POST /api/orders`` and ``GET /api/orders/{id}`` latency, p50/p99 at concurrency 1 and 32
(bench report "API latency"), beside a bare FastAPI endpoint doing one PostgreSQL INSERT (and one doing a
one-row SELECT, for the GET), in one run.

    .venv/bin/python -m bench.api_latency [--requests 300] [--concurrency 1 32]

Both apps run the same way: uvicorn, one process each, launched as children of this one, against
the same PostgreSQL with the same SQLAlchemy pool size (``STELLAR_DATABASE__POOL_SIZE``, default
10); the HTTP client (httpx, keep-alive) runs here. ``POST /api/orders`` is the real thing: bearer
key, plan gate, catalogue lookup of M42, observability check, credit check, INSERT order + shot,
start ``OrderWorkflow`` on the Temporal server. No worker polls that task queue, so what is measured
is the API alone, not the API competing with a busy worker (see the end-to-end bench for that). Keys
rotate over 64 customers so the per-key rate limit (600/min) never answers 429. One more row posts
the same body while three more telescopes at other sites (Spain, New Mexico, Chile) are online:
``telescope: any`` then judges four sites per order (api/services/assignment.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable

import httpx
import psutil
import sqlalchemy as sa
from fastapi import FastAPI

from bench._processes import ChildProcess, free_port, progress, settings_env, wait_http
from bench.api_profile import profile_post
from bench._stack import BenchStack, run_standalone
from bench._stats import pct
from models.db import Telescope

ORDER = {"target_name": "M42", "priority": 0, "shots": [{"filter": "L", "exposure": 60, "quantity": 10}]}
KEYS = 64
BARE_TABLE = "bench_bare"
ANY4 = "POST /api/orders, any of 4 online telescopes"
#: Sites of the three telescopes put online beside the bench's own for the ``any`` row (name,
#: latitude, longitude, elevation m, time zone): M42 rises at all four, so each is judged in full.
EXTRA_SITES = (("Sierra de los Filabres", 37.22, -2.55, 2168.0, "Europe/Madrid"),
               ("Mayhill", 32.90, -105.53, 2225.0, "America/Denver"),
               ("Rio Hurtado", -30.53, -70.85, 1710.0, "America/Santiago"))


async def add_extra_telescopes(stack: BenchStack) -> list[int]:
    """Three telescopes at :data:`EXTRA_SITES`, LRGB, written retired (not a candidate yet); returns
    their ids for :func:`set_status`."""
    tag = uuid.uuid4().hex[:6]
    ids = []
    async with stack.sessionmaker() as s:
        for i, (site, lat, lon, elevation, tz) in enumerate(EXTRA_SITES):
            t = Telescope(slug=f"bench-any-{tag}-{i}", name=f"{site} refractor", site_name=site, latitude=lat,
                          longitude=lon, elevation=elevation, time_zone=tz, horizon_alt=15.0, aperture_mm=106.0,
                          focal_length_mm=530.0, sensor_width_px=6248, sensor_height_px=4176, pixel_size_um=3.76,
                          filters=[{"name": n, "index": k} for k, n in enumerate("LRGB")],
                          voyager_profile=f"bench-any-{tag}-{i}.v2y", status="retired")
            s.add(t)
            await s.flush()
            ids.append(t.id)
        await s.commit()
    return ids


async def set_status(stack: BenchStack, ids: list[int], status: str) -> None:
    async with stack.engine.begin() as conn:
        await conn.execute(sa.update(Telescope).where(Telescope.id.in_(ids)).values(status=status))


def cpu_by_process(api: ChildProcess, bare: ChildProcess) -> dict[str, float]:
    """CPU seconds (user + system) used so far by the API, the bare app, PostgreSQL (its ended
    backends included), the Temporal server and this process (the HTTP client): subtract two
    snapshots for a row's share."""
    out = {"API": 0.0, "bare app": 0.0, "PostgreSQL": 0.0, "Temporal server": 0.0, "bench (HTTP client)": 0.0}

    def seconds(p: psutil.Process, ended: bool = False) -> float:
        t = p.cpu_times()
        return t.user + t.system + ((t.children_user + t.children_system) if ended else 0.0)

    out["bench (HTTP client)"] = seconds(psutil.Process())
    for p in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if p.pid == api.pid:
                out["API"] += seconds(p)
            elif p.pid == bare.pid:
                out["bare app"] += seconds(p)
            elif "temporal" in p.name():
                out["Temporal server"] += seconds(p)
            elif "postgres" in p.name():
                out["PostgreSQL"] += seconds(p, ended=True)
    return out


def bare_app() -> FastAPI:
    """The ceiling: ``POST /bare`` inserts one row and returns its id; ``GET /bare/{id}`` reads one.
    ``uvicorn bench.api_latency:bare_app --factory`` with ``STELLAR_DATABASE__URL`` set."""
    from contextlib import asynccontextmanager

    from core.database import make_engine
    from core.settings import get_settings

    db = get_settings().database
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state["engine"] = make_engine(db.effective_url(), db.pool_size, keep_overflow=True)  # as the API's
        yield
        await state["engine"].dispose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/bare", status_code=201)
    async def insert(body: dict) -> dict:
        async with state["engine"].begin() as conn:
            row = await conn.execute(sa.text(f"INSERT INTO {BARE_TABLE} (payload) VALUES (CAST(:p AS jsonb)) RETURNING id"),
                                     {"p": json.dumps(body)})
            return {"id": row.scalar_one()}

    @app.get("/bare/{row_id}")
    async def select(row_id: int) -> dict:
        async with state["engine"].connect() as conn:
            row = (await conn.execute(sa.text(f"SELECT id, payload, created_at FROM {BARE_TABLE} WHERE id = :i"),
                                      {"i": row_id})).one()
            return {"id": row.id, "payload": row.payload, "created_at": row.created_at.isoformat()}

    return app


async def measure(call: Callable[[int], Awaitable[httpx.Response]], n: int, concurrency: int,
                  ok: int, warm_up: int = 10) -> tuple[list[float], float, list[httpx.Response], Counter]:
    """``n`` calls ``call(i)``, ``concurrency`` at a time, after ``min(warm_up, n)`` warm-up calls.
    Returns (latencies s of every call, elapsed s, responses with status ``ok``, other answers
    counted by ``"<status> <error code>"`` or ``"transport <exception>"``)."""
    for i in range(min(warm_up, n)):
        await call(-1 - i)
    latencies: list[float] = []
    responses: list[httpx.Response] = []
    errors: Counter = Counter()
    counter = iter(range(n))

    async def lane() -> None:
        for i in counter:
            t = time.perf_counter()
            try:
                r = await call(i)
            except httpx.HTTPError as exc:  # counted, like an error status: the run goes on
                latencies.append(time.perf_counter() - t)
                errors[f"transport {type(exc).__name__}"] += 1
                continue
            latencies.append(time.perf_counter() - t)
            if r.status_code == ok:
                responses.append(r)
            else:
                try:
                    code = r.json()["error"]["code"]
                except (ValueError, KeyError, TypeError):
                    code = r.text[:40]
                errors[f"{r.status_code} {code}"] += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return latencies, time.perf_counter() - t0, responses, errors


async def run(stack: BenchStack, requests: int = 300, concurrency: tuple[int, ...] = (1, 32),
              pool_size: int | None = None, profile_requests: int | None = None) -> str:
    """Measure every endpoint at every concurrency, then profile ``profile_requests`` POSTs
    (bench/api_profile.py; default min(30, ``requests``)); returns the markdown section. ``pool_size``:
    ``STELLAR_DATABASE__POOL_SIZE`` of both apps (None = the default)."""
    progress(f"api latency: starting the API and the bare app ({requests} requests per cell)")
    async with stack.engine.begin() as conn:
        await conn.execute(sa.text(f"CREATE TABLE IF NOT EXISTS {BARE_TABLE} (id bigserial PRIMARY KEY, "
                                   "payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"))
    rows: list[dict] = []
    created: list[int] = []
    profile: list[str] = []
    database = {"url": stack.database_url, **({"pool_size": pool_size} if pool_size else {})}
    try:
        async with stack.deployment("latency", worker=False, database=database) as dep:
            port = free_port()
            bare = ChildProcess("bare app", [sys.executable, "-m", "uvicorn", "bench.api_latency:bare_app", "--factory",
                                             "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
                                             "--log-level", "warning"],
                                settings_env({"database": database}), dep.base / "bare.log")
            bare.start()
            try:
                await wait_http(bare, f"http://127.0.0.1:{port}/docs")
                people = await stack.customers(KEYS, credits=40)
                extra = await add_extra_telescopes(stack)
                keys = [{"Authorization": f"Bearer {c.api_key}"} for c in people]
                assert dep.http is not None
                api = dep.http
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120.0,
                                             limits=httpx.Limits(max_connections=200)) as bare_http:
                    for c in concurrency:
                        progress(f"api latency: concurrency {c}")
                        owned: list[tuple[int, int]] = []  # (key index, order id) for the GETs
                        bare_ids: list[int] = []

                        async def bare_post(i: int) -> httpx.Response:
                            r = await bare_http.post("/bare", json=ORDER)
                            if r.status_code == 201:
                                bare_ids.append(r.json()["id"])
                            return r

                        async def post(i: int) -> httpx.Response:
                            k = i % KEYS
                            r = await api.post("/api/orders", json=ORDER, headers=keys[k])
                            if r.status_code == 201:
                                owned.append((k, r.json()["id"]))
                            return r

                        async def bare_get(i: int) -> httpx.Response:
                            return await bare_http.get(f"/bare/{bare_ids[i % len(bare_ids)]}")

                        async def get(i: int) -> httpx.Response:
                            k, oid = owned[i % len(owned)]
                            return await api.get(f"/api/orders/{oid}", headers=keys[k])

                        for name, call, ok in (("ceiling: bare POST, one INSERT", bare_post, 201),
                                               ("POST /api/orders", post, 201),
                                               (ANY4, post, 201),
                                               ("ceiling: bare GET, one-row SELECT", bare_get, 200),
                                               ("GET /api/orders/{id}", get, 200)):
                            if call is get and not owned:
                                continue  # no order was created: nothing to read
                            if name == ANY4:  # the three other sites online for this row only
                                await set_status(stack, extra, "online")
                            try:
                                for i in range(min(10, requests)):  # measure()'s warm-up, outside the CPU count
                                    await call(-1 - i)
                                cpu0 = cpu_by_process(dep.api, bare)
                                lat, elapsed, _, errors = await measure(call, requests, c, ok, warm_up=0)
                                cpu = cpu_by_process(dep.api, bare)
                            finally:
                                if name == ANY4:
                                    await set_status(stack, extra, "retired")
                            rows.append({"name": name, "c": c, "n": requests, "elapsed": elapsed, "lat": lat,
                                         "errors": errors, "ceiling": name.startswith("ceiling"),
                                         "cpu": {k: cpu[k] - cpu0[k] for k in cpu}})
                        created += [oid for _, oid in owned]
                progress("api latency: profiling POST /api/orders in this process")
                profile, profiled = await profile_post(dep.settings(), stack.client, keys, ORDER,
                                                       profile_requests or min(30, requests))
                created += profiled
            finally:
                bare.stop()
    finally:
        await stack.terminate([f"order-{i}" for i in created])  # started, never run: no worker on that queue
        async with stack.engine.begin() as conn:
            await conn.execute(sa.text(f"DROP TABLE IF EXISTS {BARE_TABLE}"))

    lines = [
        f"uvicorn, one process per app, same PostgreSQL, SQLAlchemy pools of up to {2 * (pool_size or 10)} "
        f"connections each, kept once opened (the API's engine, core/database.py); {requests} requests per row "
        f"after 10 warm-up requests; client: httpx with keep-alive "
        "in the bench process. POST body: M42 from the catalogue, L 10×60 s.",
        "",
        "| endpoint | concurrency | requests/s | p50 ms | p99 ms | p50 vs ceiling | errors |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    base = None
    for r in rows:
        p50 = pct(r["lat"], 50)
        if r["ceiling"]:
            base, vs = p50, "ceiling"
        else:
            vs = f"{p50 / base:.1f}×" if base else "–"
        errors = ", ".join(f"{n} × {k}" for k, n in r["errors"].most_common()) or "0"
        lines.append(f"| {r['name']} | {r['c']} | {r['n'] / r['elapsed']:,.0f} | {p50 * 1e3:.1f} | "
                     f"{pct(r['lat'], 99) * 1e3:.1f} | {vs} | {errors} |")
    lines += ["", *goals(rows), "", *cpu_table(rows), "", *profile]
    if any(r["errors"] for r in rows):
        lines += ["", "Errors are answers other than 201/200; their time is in the percentiles. "
                  "`503 database_unavailable` is the API's answer to a database error, a pool timeout included "
                  "(SQLAlchemy waits 30 s for a free connection)."]
    return "\n".join(lines)


def cpu_table(rows: list[dict]) -> list[str]:
    """What one request of each POST row at the highest concurrency cost each process, in CPU ms
    (the machine's cores are shared: a row's throughput follows the sum)."""
    last = max((r["c"] for r in rows), default=None)
    picked = [r for r in rows if r["c"] == last and "POST" in r["name"]]
    if not picked:
        return []
    names = [k for k in picked[0]["cpu"] if any(r["cpu"][k] > 0.0005 * r["n"] for r in picked)]
    out = [f"CPU per request at concurrency {last}, by process (ms; the Temporal server's share is the "
           "workflow's start, which the bare INSERT does not do):", "",
           "| endpoint | " + " | ".join(names) + " | all |", "|---|" + "---:|" * (len(names) + 1)]
    for r in picked:
        ms = [r["cpu"][k] / r["n"] * 1e3 for k in names]
        out.append(f"| {r['name']} | " + " | ".join(f"{v:.1f}" for v in ms) + f" | {sum(ms):.1f} |")
    return out


def goals(rows: list[dict]) -> list[str]:
    """The POST rows against their goals (docs of the bench report): p50 at concurrency 1 within 5×
    the bare INSERT's, throughput at the highest concurrency at least 40 % of the bare INSERT's."""
    def cell(name: str, c: int) -> dict | None:
        return next((r for r in rows if r["name"] == name and r["c"] == c), None)

    out = ["| measurement | Stellar | ceiling | ratio | goal |", "|---|---:|---:|---:|---:|"]
    levels = sorted({r["c"] for r in rows})
    if not levels:
        return []
    first, last = levels[0], levels[-1]
    api, bare = cell("POST /api/orders", first), cell("ceiling: bare POST, one INSERT", first)
    if api and bare:
        a, b = pct(api["lat"], 50), pct(bare["lat"], 50)
        out.append(f"| POST /api/orders p50, concurrency {first} | {a * 1e3:.1f} ms | {b * 1e3:.1f} ms | "
                   f"{a / b:.1f}× | ≤ 5× |")
    api, bare = cell("POST /api/orders", last), cell("ceiling: bare POST, one INSERT", last)
    if api and bare:
        a, b = api["n"] / api["elapsed"], bare["n"] / bare["elapsed"]
        out.append(f"| POST /api/orders throughput, concurrency {last} | {a:,.0f}/s | {b:,.0f}/s | {a / b:.0%} | "
                   "≥ 40 % |")
    return out


def main(argv: list[str] | None = None) -> str:
    """Run the bench on its own stack; print and return the markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per endpoint and concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--pool-size", type=int, default=None, help="SQLAlchemy pool size of both apps")
    a = parser.parse_args(argv)
    return run_standalone(run, requests=a.requests, concurrency=tuple(a.concurrency), pool_size=a.pool_size)


if __name__ == "__main__":
    main()
