"""Child processes and machine measurements of the benchmarks: start a child with only the
``STELLAR_*`` settings we give and stop it (with its process group), wait for an HTTP child, read
the CPU time each part of the system used, print progress, stop on SIGTERM like on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from core.processes import free_port, stop_process_group  # noqa: F401  (free_port re-exported for the benches)

ROOT = Path(__file__).resolve().parent.parent


def progress(message: str) -> None:
    """One progress line on stderr (the report goes to stdout and bench/report.md)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- child processes


@dataclass
class ChildProcess:
    """A child started with only the ``STELLAR_*`` variables we give (the caller's are dropped)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("STELLAR_")}
        env.update(self.env)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode if self.proc else '?'}):\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else "(no log)"

    def stop(self, timeout: float = 20.0) -> None:
        """SIGINT to the process group (graceful), SIGKILL after ``timeout`` seconds."""
        stop_process_group(self.proc, timeout)


def _env_text(value: Any) -> str:
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, set)):
        return ",".join(str(v) for v in value)
    return str(value)


def settings_env(groups: dict[str, dict[str, Any]]) -> dict[str, str]:
    """``{"database": {"url": u}}`` → ``{"STELLAR_DATABASE__URL": u, ...}`` plus quiet JSON logs."""
    env = {"STELLAR_LOG_LEVEL": "WARNING", "STELLAR_LOG_JSON": "true"}
    for group, values in groups.items():
        if isinstance(values, dict):
            for key, value in values.items():
                if value is not None:
                    env[f"STELLAR_{group.upper()}__{key.upper()}"] = _env_text(value)
        elif values is not None:
            env[f"STELLAR_{group.upper()}"] = _env_text(values)
    return env


#: :func:`cpu_seconds`' name of this process (the bench's simulator and load generator run in it).
BENCH_PROCESS = "bench process (simulator, client)"


def cpu_seconds(worker: ChildProcess | None = None, api: ChildProcess | None = None) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each part of the system on this machine: the
    worker and API child processes, the Temporal dev server, PostgreSQL and this process (the
    simulator and the load generator). Subtract two snapshots to get a measurement window's."""
    me = psutil.Process()
    own = {"worker": worker.pid if worker and worker.alive() else None,
           "API": api.pid if api and api.alive() else None}
    out = {"worker": 0.0, "API": 0.0, "Temporal server": 0.0, "PostgreSQL": 0.0, BENCH_PROCESS: 0.0}

    def add(key: str, p: psutil.Process) -> None:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            out[key] += t.user + t.system

    add(BENCH_PROCESS, me)
    for p in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if p.pid == own["worker"]:
                add("worker", p)
            elif p.pid == own["API"]:
                add("API", p)
            elif "temporal" in p.name():
                add("Temporal server", p)
            elif "postgres" in p.name():
                add("PostgreSQL", p)
    return out


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """A window's CPU seconds by part: ``after`` − ``before`` (two :func:`cpu_seconds` snapshots)."""
    return {k: after[k] - before.get(k, 0.0) for k in after}


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent running code so far, every process and core (user,
    nice, system, interrupts; not idle, I/O wait or time stolen by the hypervisor); subtract two
    readings for a window's."""
    t = psutil.cpu_times()
    return t.user + t.system + sum(getattr(t, k, 0.0) for k in ("nice", "irq", "softirq"))


def cpu_line(before: dict[str, float], after: dict[str, float], wall: float) -> str:
    """``worker 31.2 s, API 9.8 s, … of 2 × 50.0 s`` for a window's CPU use."""
    used = cpu_used(before, after)
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(used.items(), key=lambda kv: -kv[1]) if v >= 0.05)
    return f"CPU used in the window: {parts} (of {os.cpu_count()} cores × {wall:.1f} s = {os.cpu_count() * wall:.0f} s)"


async def wait_http(child: ChildProcess, url: str, timeout: float = 90.0) -> None:
    """Wait until ``url`` answers (any status below 500) while ``child`` lives."""
    until = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5.0) as client:
        while True:
            child.check_alive()
            try:
                if (await client.get(url)).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > until:
                raise RuntimeError(f"{child.name} did not answer {url} within {timeout:g} s:\n{child.log_tail()}")
            await asyncio.sleep(0.2)


def stop_on_sigterm() -> None:
    """Make SIGTERM stop the run like Ctrl-C, so every child process and server is stopped too."""
    def interrupt(signum, frame) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
