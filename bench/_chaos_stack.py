"""The chaos benchmark's system and its faults (bench/chaos.py).

Each component in its own process, so each can fail alone: embedded PostgreSQL (its data directory
kept across stops; ``synchronous_commit=on``, so a commit it acknowledged survives a crash of its
processes as on a production server — what the orders' promise is measured against), the Temporal
dev server on a SQLite file (``temporal server start-dev --db-filename``, killed with SIGKILL and
started again on the same file), the worker and the API (child processes, bench/_stack.py). The
Voyager simulator runs in the bench process (the bench drives its faults) on a state file, so a
stop and restart keeps its targets, sessions and frames.
Every fault is recorded with its real start and end on :attr:`ChaosSystem.timeline`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bench._processes import ChildProcess, free_port, progress
from bench._stack import BenchStack, Deployment, start_postgres
from core.database import make_engine
from core.embedded_postgres import EmbeddedPostgres
from core.processes import wait_for_port
from core.temporal import DATA_CONVERTER, dev_server_search_attribute_args, temporal_cli_path


@dataclass
class Fault:
    """One fault: ``what`` (kind), ``when`` (the scenario's moment), real start/end (UTC)."""

    what: str
    when: str
    start: datetime
    end: datetime | None = None


@dataclass
class ChaosSystem:
    """PostgreSQL, Temporal, the deployment (simulator, worker, API) and the fault timeline."""

    pg: EmbeddedPostgres
    temporal: ChildProcess
    temporal_port: int
    stack: BenchStack
    dep: Deployment | None = None
    timeline: list[Fault] = field(default_factory=list)

    def _record(self, what: str, when: str) -> Fault:
        fault = Fault(what, when, datetime.now(UTC))
        self.timeline.append(fault)
        progress(f"fault: {what} ({when})")
        return fault

    # ------------------------------------------------------------------ faults

    def kill_worker(self, when: str) -> None:
        """SIGKILL the worker's process group, then start a new worker at once."""
        assert self.dep is not None and self.dep.worker is not None
        fault = self._record("worker kill -9 and restart", when)
        _kill9(self.dep.worker.proc)
        self.dep.worker.start()
        fault.end = datetime.now(UTC)

    async def kill_temporal(self, when: str, down: float = 5.0) -> None:
        """SIGKILL the Temporal dev server, wait ``down`` seconds, start it on the same SQLite file."""
        fault = self._record("Temporal dev server kill -9 and restart", when)
        _kill9(self.temporal.proc)
        await asyncio.sleep(down)
        self.temporal.start()
        await asyncio.to_thread(wait_for_port, self.temporal_port, 60, self.temporal.proc, "Temporal")
        fault.end = datetime.now(UTC)

    async def database_outage(self, when: str, seconds: float) -> None:
        """Stop PostgreSQL for ``seconds`` (clients are cut), then start it on the same data. The
        timeline's ``when`` says how it stopped (``fast``: a clean shutdown) and in how long."""
        fault = self._record(f"PostgreSQL stopped {seconds:g} s", when)
        t0 = time.monotonic()
        how = await asyncio.to_thread(self.pg.stop)
        fault.when += f" ({how} shutdown in {time.monotonic() - t0:.1f} s)"
        await asyncio.sleep(seconds)
        await asyncio.to_thread(self.pg.start)
        fault.end = datetime.now(UTC)

    async def voyager_down(self, when: str) -> Fault:
        """Stop the simulator (links cut, state saved); :meth:`voyager_up` ends the fault."""
        assert self.dep is not None and self.dep.sim is not None
        fault = self._record("Voyager down", when)
        await self.dep.sim.stop()
        return fault

    async def voyager_up(self, fault: Fault) -> None:
        assert self.dep is not None and self.dep.sim is not None
        await self.dep.sim.restart()
        fault.end = datetime.now(UTC)
        fault.what = f"Voyager down {(fault.end - fault.start).total_seconds():.0f} s"

    async def drop_voyager(self, when: str) -> None:
        """Cut every client link of the simulator once, as a network failure would."""
        assert self.dep is not None and self.dep.sim is not None
        fault = self._record("Voyager drops every connection", when)
        await self.dep.sim.drop_connections()
        fault.end = fault.start

    def periodic_drops(self, interval: float) -> None:
        """The simulator drops every connection every ``interval`` seconds until the end (0 = never)."""
        assert self.dep is not None and self.dep.sim is not None
        if interval > 0:
            self.dep.sim.faults.drop_interval = interval
            self.timeline.append(Fault(f"Voyager drops every connection every {interval:g} s", "whole run",
                                       datetime.now(UTC)))

    def end_periodic_drops(self) -> None:
        assert self.dep is not None and self.dep.sim is not None
        self.dep.sim.faults.drop_interval = 0.0
        for f in self.timeline:
            if f.when == "whole run" and f.end is None:
                f.end = datetime.now(UTC)


def _kill9(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


@contextlib.asynccontextmanager
async def open_chaos_system(tmp: Path) -> AsyncIterator[ChaosSystem]:
    """Start PostgreSQL and the Temporal dev server (each its own process) under ``tmp``; yield the
    system (the caller opens the deployment on ``system.stack``); stop everything."""
    async with contextlib.AsyncExitStack() as exits:
        progress("chaos: starting PostgreSQL (embedded) …")
        pg = await asyncio.to_thread(functools.partial(start_postgres, tmp / "postgres", durable_commits=True))
        exits.callback(pg.stop)
        port, ui = free_port(), free_port()
        temporal = ChildProcess("temporal", [
            temporal_cli_path(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port),
            "--ui-port", str(ui), "--ui-ip", "127.0.0.1", "--db-filename", str(tmp / "temporal.sqlite"),
            "--log-level", "error", "--ui-disable-news-fetch", *dev_server_search_attribute_args()],
            {}, tmp / "temporal.log")
        progress("chaos: starting the Temporal dev server on a SQLite file …")
        temporal.start()
        exits.callback(temporal.stop)
        await asyncio.to_thread(wait_for_port, port, 60, temporal.proc, "Temporal")
        client = await _connect(f"127.0.0.1:{port}")
        engine = make_engine(pg.url(), pool_size=10)
        exits.push_async_callback(engine.dispose)
        stack = BenchStack(pg.url(), WorkflowEnvironment.from_client(client), engine, tmp)
        yield ChaosSystem(pg, temporal, port, stack)


async def _connect(address: str, timeout: float = 60.0) -> Client:
    until = time.monotonic() + timeout
    while True:
        try:
            return await Client.connect(address, data_converter=DATA_CONVERTER)
        except RuntimeError:
            if time.monotonic() > until:
                raise
            await asyncio.sleep(0.5)
