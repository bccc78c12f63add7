"""Child processes of the embedded stack: start, wait until ready, stop cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import structlog

log = structlog.get_logger(__name__)


class StackError(RuntimeError):
    """A component of the stack could not start; the message says which and why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process_group(proc: subprocess.Popen | None, timeout: float = 15.0, sig: int = signal.SIGINT) -> None:
    """Send ``sig`` to ``proc``'s process group (started with ``start_new_session``), SIGKILL after
    ``timeout`` seconds. A process already gone is fine."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except ProcessLookupError:
        pass


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def require_free_port(port: int, what: str, variable: str) -> None:
    if port_in_use(port):
        raise StackError(f"port {port} for {what} is already taken on 127.0.0.1 ({variable}); "
                         "stop what uses it or configure another port")


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen | None = None, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StackError(f"{what} exited with code {proc.returncode} before listening on {port}")
        if port_in_use(port):
            return
        time.sleep(0.1)
    raise StackError(f"{what} did not listen on port {port} within {timeout:.0f}s")


@dataclass
class Child:
    """A started child process with its log file."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    ready: Callable[["Child"], None] | None = None
    proc: subprocess.Popen | None = None
    #: Variables of this process's environment not passed on (names starting with one of these).
    withhold: tuple[str, ...] = ()

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        logf = open(self.log_path, "ab")
        env = {k: v for k, v in os.environ.items() if not (self.withhold and k.startswith(self.withhold))}
        env.update(self.env)
        self.proc = subprocess.Popen(self.argv, stdout=logf, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        log.info("stack.starting", component=self.name, pid=self.proc.pid, log=str(self.log_path))
        if self.ready:
            try:
                self.ready(self)
            except StackError as exc:
                self.stop()
                tail = self.log_path.read_text(errors="replace")[-1500:]
                raise StackError(f"{exc}\n--- last lines of {self.log_path} ---\n{tail}") from None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        stop_process_group(self.proc, timeout)
        log.info("stack.stopped", component=self.name)
