"""Stellar's worker (``worker.main``, what ``python worker.py`` runs) keeping an account per
activity type: PostgreSQL statements and transactions, and CPU time (bench/orders_e2e.py).

    python -m bench.activity_account STATS_DIR

Every SIGUSR1 writes the totals so far to ``STATS_DIR/account-<n>.json`` (n = 1, 2, …;
:func:`snapshot`); the bench takes one before and one after its window and prints the difference.

How it counts, cheaply enough to stay on during the timed run:

* SQL: SQLAlchemy's ``before_cursor_execute`` and ``begin`` events on every engine of the process
  (bench/_sql_count.py counts alike), charged to the activity whose context runs the statement
  (SQLAlchemy's greenlet carries the asyncio task's context variables).
* CPU: the main thread's CPU time (``time.thread_time``) around every event-loop callback, charged to
  the activity whose context the callback ran in (bench/_loop_account.py keyed by the activity) (an activity is one asyncio task; the callbacks
  of its task steps run in its context). What runs outside any activity's context (the SDK's polls
  and completions, the Voyager pool's reads, the mail sender) is ``(main thread, no activity)``.
  The other threads are read from ``/proc``: the workflow activations run in the SDK's Python
  thread pool, its Rust core in ``tokio-*`` threads.
"""

from __future__ import annotations

import asyncio
import contextvars
import cProfile
import json
import os
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from temporalio import activity

from bench._loop_account import LoopAccount

OUTSIDE = "(main thread, no activity)"
#: Environment variable: where to write the main thread's cProfile between snapshots (see above).
PROFILE_ENV = "BENCH_WORKER_PROFILE"

_statements: defaultdict[str, int] = defaultdict(int)
_transactions: defaultdict[str, int] = defaultdict(int)


def _current() -> str:
    """The running activity's type (``local:`` before a local activity's), else :data:`OUTSIDE`."""
    if not activity.in_activity():
        return OUTSIDE
    info = activity.info()
    return f"local:{info.activity_type}" if info.is_local else info.activity_type


def _on_execute(*_args: Any) -> None:
    _statements[_current()] += 1


def _on_begin(conn: Any, *_args: Any) -> None:
    if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":  # no BEGIN is sent then
        _transactions[_current()] += 1


def _activity_of(context: contextvars.Context) -> str:
    """The activity whose context this is (``local:`` before a local activity's), else :data:`OUTSIDE`."""
    ctx = context.get(activity._current_context)  # the SDK's context variable of the running activity
    if ctx is None:
        return OUTSIDE
    info = ctx.info()
    return f"local:{info.activity_type}" if info.is_local else info.activity_type


#: The main thread's CPU by activity (its ``to_thread`` work is counted with the thread kinds instead).
_cpu = LoopAccount(_activity_of, to_thread=False)


def _threads_cpu() -> dict[str, float]:
    """CPU seconds per kind of thread of this process (``/proc/self/task``): ``main``,
    ``python threads`` (the SDK's workflow-activation pool, ``to_thread``), ``tokio`` (the SDK's Rust
    core) and ``other``."""
    tick = os.sysconf("SC_CLK_TCK")
    out: defaultdict[str, float] = defaultdict(float)
    pid = os.getpid()
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        seconds = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        kind = ("main" if int(task.name) == pid else "tokio" if name.startswith("tokio")
                else "python threads" if name.startswith("python") else "other")
        out[kind] += seconds
    return dict(out)


def snapshot() -> dict[str, Any]:
    """``statements`` / ``transactions`` / ``cpu`` (seconds): activity type → total so far;
    ``threads``: CPU seconds per kind of thread; ``process``: the process's CPU seconds."""
    return {"statements": dict(_statements), "transactions": dict(_transactions), "cpu": _cpu.seconds(),
            "threads": _threads_cpu(), "process": time.process_time()}


def install(directory: Path) -> None:
    """Start counting; SIGUSR1 → write :func:`snapshot` into ``directory`` (atomically)."""
    directory.mkdir(parents=True, exist_ok=True)
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", _on_execute)
    sa.event.listen(sa.engine.Engine, "begin", _on_begin)
    _cpu.install()  # for the process's life
    loop = asyncio.get_running_loop()
    count = 0
    profile_to = os.environ.get(PROFILE_ENV)
    profiler: cProfile.Profile | None = None

    def dump() -> None:
        nonlocal count, profiler
        count += 1
        path = directory / f"account-{count}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(snapshot()))
        if profile_to:  # this handler runs on the main thread, whose profiler it restarts
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(f"{profile_to}-{count}.prof")
            profiler = cProfile.Profile(time.thread_time)
            profiler.enable()
        tmp.replace(path)

    loop.add_signal_handler(signal.SIGUSR1, dump)


async def take(pid: int, directory: Path, n: int, timeout: float = 30.0) -> dict[str, Any]:
    """Ask the worker ``pid`` for its ``n``-th snapshot (SIGUSR1) and read it from ``directory``."""
    path = directory / f"account-{n}.json"
    os.kill(pid, signal.SIGUSR1)
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout
    while not path.exists():
        if loop.time() > until:
            raise RuntimeError(f"the worker wrote no {path.name} within {timeout:g} s")
        await asyncio.sleep(0.1)
    return json.loads(path.read_text())


def difference(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``after`` − ``before``, key by key (the window between two snapshots)."""
    out: dict[str, Any] = {}
    for part in ("statements", "transactions", "cpu", "threads"):
        keys = set(before[part]) | set(after[part])
        out[part] = {k: after[part].get(k, 0) - before[part].get(k, 0) for k in keys}
    out["process"] = after["process"] - before["process"]
    return out


async def main(directory: Path) -> int:
    import worker

    install(directory)
    return await worker.main()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]))))
