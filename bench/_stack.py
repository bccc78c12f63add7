"""Shared setup of the system benchmarks (orders_e2e, history, api_latency, worker_memory).

Per run (:func:`open_stack`): one embedded PostgreSQL (migrated, temporary directory, free port)
unless a URL is given, and one Temporal dev server (``WorkflowEnvironment.start_local`` with
Stellar's search attributes and data converter) unless an environment is given (the tests pass
theirs). Per bench (:meth:`BenchStack.deployment`): the Voyager simulator in this process (the
bench drives its clock), and the worker (``python worker.py``) and the API (uvicorn) as child
processes configured through ``STELLAR_*`` variables — as they run in production, each in its own
process — on a task queue and telescope name of their own. Everything started is stopped when the
``async with`` ends; child logs stay under the run's temporary directory until then. Process
helpers (children, CPU time, progress): bench/_processes.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from api.services.customers import NewCustomer, create_customer
from bench import _loop_account as loop_account
from bench._processes import ROOT, ChildProcess, free_port, progress, settings_env, stop_on_sigterm, wait_http
from billing.ledger import Ledger
from core.database import make_engine, make_sessionmaker
from core.embedded_postgres import EmbeddedPostgres
from core.migrate import upgrade_in_thread
from core.settings import Settings, load_settings
from core.temporal import DATA_CONVERTER, SEARCH_ATTRIBUTES, temporal_cli_path
from voyager.simulator import SimulatorConfig, VoyagerSimulator

SIM_USER, SIM_PASSWORD, SIM_MAC_KEY = "bench", "bench-pw", "BENCH-MAC"
SIM_WORDS = ["Bench", "Stellar", "Orion", "Night"]
#: Late afternoon at the OHP, three days before the new moon of 2026-01-18: a long dark night
#: follows and M42 (RA 5.588 h, Dec −5.39°) is above 30° from about 20:00 to 01:30 UTC.
M42_EVENING = datetime(2026, 1, 15, 16, 0, tzinfo=UTC)
#: Midsummer noon at the OHP: nothing is observable for hours.
DAYTIME = datetime(2025, 6, 21, 12, 0, tzinfo=UTC)
FINAL = ("completed", "partial", "aborted", "expired", "failed", "rejected")


def start_postgres(root: Path, *, durable_commits: bool = False) -> EmbeddedPostgres:
    """Start a migrated embedded PostgreSQL under ``root`` on a free port (blocking); ``.url()``.
    ``durable_commits``: an acknowledged commit survives a crash (core/embedded_postgres.py)."""
    pg = EmbeddedPostgres(root, free_port(), database="stellar_bench", durable_commits=durable_commits)
    pg.start()
    try:
        upgrade_in_thread(pg.url())
    except BaseException:
        pg.stop()
        raise
    return pg


# --------------------------------------------------------------------------- deployment


@dataclass
class Deployment:
    """One bench's system: ``sim`` (in-process), ``worker`` and ``api`` child processes, ``http``
    (an httpx client on the API), all on ``task_queue`` / telescope ``telescope``; logs in ``base``."""

    name: str
    stack: BenchStack
    groups: dict[str, dict[str, Any]]
    base: Path  # scratch directory: child logs, images
    sim: VoyagerSimulator | None = None
    worker: ChildProcess | None = None
    api: ChildProcess | None = None
    api_url: str = ""
    http: httpx.AsyncClient | None = None

    @property
    def task_queue(self) -> str:
        return self.groups["temporal"]["task_queue"]

    @property
    def telescope(self) -> str:
        return self.groups["orders"]["telescope"]

    def settings(self) -> Settings:
        return load_settings(**{k: v for k, v in self.groups.items() if k not in ("log_level", "log_json")})

    async def post_order(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/orders``; raises RuntimeError unless 201."""
        assert self.http is not None
        r = await self.http.post("/api/orders", json=body, headers={"Authorization": f"Bearer {key}"})
        if r.status_code != 201:
            raise RuntimeError(f"POST /api/orders answered {r.status_code}: {r.text[:500]}")
        return r.json()

    async def wait_final(self, order_ids: list[int], timeout: float, *, label: str = "orders",
                         statuses: Iterable[str] = FINAL, every: float = 5.0) -> dict[str, int]:
        """Poll the database until every order's status is in ``statuses`` (or ``timeout`` seconds
        pass); prints progress every ``every`` s; returns the count per status."""
        wanted = set(statuses)
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout
        last = loop.time()
        while True:
            counts = await self.stack.status_counts(order_ids)
            done = sum(n for s, n in counts.items() if s in wanted)
            if done >= len(order_ids) or loop.time() > until:
                return counts
            if self.worker is not None:
                self.worker.check_alive()
            if loop.time() - last >= every:
                last = loop.time()
                progress(f"{label}: {done}/{len(order_ids)} " + " ".join(f"{s}={n}" for s, n in sorted(counts.items())))
            await asyncio.sleep(0.2)


@dataclass
class BenchStack:
    """PostgreSQL + Temporal for one run. ``tmp``: scratch directory of the run."""

    database_url: str
    temporal: WorkflowEnvironment
    engine: AsyncEngine
    tmp: Path
    sessionmaker: Any = field(init=False)

    def __post_init__(self) -> None:
        self.sessionmaker = make_sessionmaker(self.engine)

    @property
    def client(self) -> Client:
        return self.temporal.client

    @property
    def temporal_address(self) -> str:
        return self.client.service_client.config.target_host

    # ------------------------------------------------------------------ data

    async def customers(self, n: int, *, credits: int, plan: str = "nebula") -> list[NewCustomer]:
        """``n`` customers with an API key and an active ``plan``; ``credits`` pack credits each,
        granted through the ledger."""
        ledger = Ledger(self.engine)
        tag = uuid.uuid4().hex[:8]
        sem = asyncio.Semaphore(8)

        async def one(i: int) -> NewCustomer:
            async with sem:
                c = await create_customer(self.sessionmaker, email=f"bench-{tag}-{i}@example.com",
                                          name=f"Bench {i}", plan=plan)
                if credits:
                    await ledger.grant(c.customer_id, credits, "pack", f"bench-grant:{tag}:{i}", "admin", "bench",
                                       actor="bench", reason="bench credits")
                return c

        return list(await asyncio.gather(*(one(i) for i in range(n))))

    async def status_counts(self, order_ids: list[int]) -> dict[str, int]:
        """Orders of ``order_ids`` per status, from the database."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.text(
                'SELECT status, count(*) FROM "order" WHERE id = ANY(:ids) GROUP BY status'), {"ids": order_ids})
            return {status: n for status, n in rows}

    async def terminate(self, workflow_ids: Iterable[str]) -> None:
        """Terminate open workflows (bench teardown); already closed ones are skipped."""
        sem = asyncio.Semaphore(16)

        async def one(wid: str) -> None:
            async with sem:
                with contextlib.suppress(RPCError):
                    await self.client.get_workflow_handle(wid).terminate("bench teardown")

        await asyncio.gather(*(one(w) for w in workflow_ids))

    # ------------------------------------------------------------------ deployment

    @contextlib.asynccontextmanager
    async def deployment(self, name: str, *, sim: dict[str, Any] | None = None, worker: bool = True,
                         api: bool = True, orders: dict[str, Any] | None = None,
                         database: dict[str, Any] | None = None,
                         voyager: dict[str, Any] | None = None,
                         repair: dict[str, Any] | None = None,
                         worker_argv: list[str] | None = None) -> AsyncIterator[Deployment]:
        """Start the simulator (``sim``: SimulatorConfig overrides; None = no simulator), then the
        worker and the API as child processes; yield the :class:`Deployment`; stop them all.
        ``worker_argv``: how the worker is started (default ``python worker.py``).
        ``orders``/``database``/``voyager``/``repair``: settings of those groups for the children
        (no repair schedule unless ``repair`` asks: the tests share a database between benches)."""
        run = uuid.uuid4().hex[:6]
        base = self.tmp / f"{name}-{run}"
        groups: dict[str, dict[str, Any]] = {
            "state_dir": base / "state",  # type: ignore[dict-item]
            "database": {"url": self.database_url, **(database or {})},
            "temporal": {"address": self.temporal_address, "task_queue": f"bench-{name}-{run}"},
            "images": {"jpg_dir": base / "jpg", "fit_dir": base / "fits"},
            "image_store": {"local_dir": base / "image-store"},
            "orders": {"telescope": f"bench-{name}-{run}", **(orders or {})},
            "voyager": {"port": 1},  # nothing listens there unless a simulator is started
            "repair": {"every_minutes": 0, **(repair or {})},
        }
        dep = Deployment(name, self, groups, base)
        async with contextlib.AsyncExitStack() as exits:
            try:
                await self._start(dep, exits, sim=sim, worker=worker, api=api, voyager=voyager,
                                  worker_argv=worker_argv)
                yield dep
            except Exception:
                for child in (dep.worker, dep.api):  # a crashed child says why in its log
                    if child is not None and child.proc is not None and not child.alive():
                        progress(f"{child.name} exited; log tail:\n{child.log_tail()}")
                raise

    async def _start(self, dep: Deployment, exits: contextlib.AsyncExitStack, *, sim: dict[str, Any] | None,
                     worker: bool, api: bool, voyager: dict[str, Any] | None,
                     worker_argv: list[str] | None = None) -> None:
        """Start what :meth:`deployment` asked for, registering each stop on ``exits``."""
        groups, name, base = dep.groups, dep.name, dep.base
        if sim is not None:
            cfg = SimulatorConfig(**{
                "port": 0, "username": SIM_USER, "password": SIM_PASSWORD, "mac_key": SIM_MAC_KEY,
                "mac_words": list(SIM_WORDS), "speed": 600.0, "start_time": M42_EVENING, "state_file": None,
                "fit_dir": base / "fits", "seed": 7, "frame_width": 200, "frame_height": 150, **sim})
            dep.sim = VoyagerSimulator(cfg)
            with loop_account.part("simulator"):  # its tasks and connections: the simulator's CPU
                await dep.sim.start()
            exits.push_async_callback(dep.sim.stop)
            groups["voyager"] = {"host": "127.0.0.1", "port": dep.sim.port, "username": cfg.username,
                                 "password": cfg.password, "mac_key": cfg.mac_key, "mac_words": ",".join(cfg.mac_words),
                                 "profile_name": cfg.profile_name, **(voyager or {})}
        if worker:
            dep.worker = ChildProcess(f"{name} worker", worker_argv or [sys.executable, str(ROOT / "worker.py")],
                                      settings_env(groups), base / "worker.log")
            exits.push_async_callback(asyncio.to_thread, dep.worker.stop)
            dep.worker.start()
            await self._wait_monitor(dep)
            exits.push_async_callback(self.terminate, [f"observatory-monitor-{dep.telescope}"])
        if api:
            port = free_port()
            groups["api"] = {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"}
            dep.api = ChildProcess(f"{name} api", [
                sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
                "--port", str(port), "--no-access-log", "--log-level", "warning"],
                settings_env(groups), base / "api.log")
            exits.push_async_callback(asyncio.to_thread, dep.api.stop)
            dep.api.start()
            dep.api_url = f"http://127.0.0.1:{port}"
            await wait_http(dep.api, f"{dep.api_url}/api/subscriptions/plans")
            # Idle connections are dropped well before uvicorn closes them (its keep-alive is 5 s, httpx's
            # default expiry too): a POST sent on a connection the API is closing fails with ReadError.
            dep.http = httpx.AsyncClient(base_url=dep.api_url, timeout=120.0,
                                         limits=httpx.Limits(max_connections=200, max_keepalive_connections=200,
                                                             keepalive_expiry=2.0))
            exits.push_async_callback(dep.http.aclose)

    async def _wait_monitor(self, dep: Deployment, timeout: float = 90.0) -> None:
        """The worker is ready once its observatory monitor workflow exists (it starts it at boot)."""
        assert dep.worker is not None
        handle = self.client.get_workflow_handle(f"observatory-monitor-{dep.telescope}")
        until = time.monotonic() + timeout
        while True:
            dep.worker.check_alive()
            try:
                await handle.describe()
                return
            except RPCError:
                if time.monotonic() > until:
                    raise RuntimeError(f"{dep.worker.name} not ready after {timeout:g} s:\n{dep.worker.log_tail()}")
            await asyncio.sleep(0.3)


@contextlib.asynccontextmanager
async def open_stack(database_url: str | None = None, temporal: WorkflowEnvironment | None = None,
                     tmp: Path | None = None) -> AsyncIterator[BenchStack]:
    """PostgreSQL (``database_url``, else embedded) and Temporal (``temporal``, else a dev server)
    for one run; what this function started, it stops."""
    async with contextlib.AsyncExitStack() as exits:
        if tmp is None:
            tmp = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="stellar-bench-")))
        if database_url is None:
            progress("starting PostgreSQL (embedded) …")
            pg = await asyncio.to_thread(start_postgres, tmp / "postgres")
            exits.callback(pg.stop)
            database_url = pg.url()
        if temporal is None:
            progress("starting the Temporal dev server …")
            temporal = await WorkflowEnvironment.start_local(
                data_converter=DATA_CONVERTER, search_attributes=SEARCH_ATTRIBUTES,
                dev_server_existing_path=temporal_cli_path(), dev_server_log_level="error")
            exits.push_async_callback(temporal.shutdown)
        engine = make_engine(database_url, pool_size=20)
        exits.push_async_callback(engine.dispose)
        yield BenchStack(database_url, temporal, engine, tmp)


def run_standalone(coro_fn, **kwargs) -> str:
    """Run ``await coro_fn(stack, **kwargs)`` on a fresh stack (each bench's own ``main``); print
    and return its markdown."""
    from core.logging import configure_logging

    configure_logging("WARNING")
    stop_on_sigterm()

    async def go() -> str:
        async with open_stack() as stack:
            return await coro_fn(stack, **kwargs)

    text = asyncio.run(go())
    print(text)
    return text
