"""Stellar's worker (``worker.main``, what ``python worker.py`` runs) with a heap-statistics hook:
where a waiting order's memory goes (bench/worker_memory.py).

    python -m bench.heap_worker STATS_DIR [--role workflows] [--runner unsandboxed] [--max-cached N]

Every SIGUSR1 writes the Python heap's statistics as they are then (after a full collection) to
``STATS_DIR/heap-<n>.json`` (n = 1, 2, …; :func:`heap_stats`) and prints ``heap stats <path>``;
SIGUSR2 does the same after returning the allocator's free pages to the system (``malloc_trim``),
so the RSS read before and after tells retained memory from allocator slack. ``--runner
unsandboxed`` / ``--max-cached N`` run the worker with the SDK's ``UnsandboxedWorkflowRunner`` /
a smaller workflow cache instead of ``worker.worker_options``' (variants the bench measures, not
what the worker runs); ``--role``: the worker's ``--role`` (``worker.ROLES``).
Nothing is traced between two signals, so the worker runs at its normal speed and its RSS is the
one the bench reads (``tracemalloc`` was tried: traced, the worker's first workflow tasks took
15–60 s on the loaded 2-core machine and timed out).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import gc
import json
import os
import re
import signal
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any


def _pymalloc_bytes() -> int:
    """Bytes in the blocks pymalloc has handed out (every Python allocation of ≤ 512 bytes: most
    objects, small dict tables, short strings), from ``sys._debugmallocstats`` (it writes to the C
    stderr, so fd 2 is sent to a file meanwhile)."""
    with tempfile.TemporaryFile() as out:
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode(errors="replace")
    match = re.search(r"# bytes in allocated blocks\s*=\s*([\d,]+)", text)
    return int(match.group(1).replace(",", "")) if match else 0


def _rss() -> int:
    """This process's resident set size, bytes (``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _malloc_trim() -> bool:
    """glibc's ``malloc_trim(0)``: give every arena's free pages back to the system (the SDK's Rust
    core allocates with the same malloc); False where there is no glibc."""
    name = ctypes.util.find_library("c")
    try:
        return bool(name) and ctypes.CDLL(name).malloc_trim(0) >= 0
    except (OSError, AttributeError):
        return False


def heap_stats(trim: bool = False) -> dict[str, Any]:
    """``rss`` (bytes, after a full collection) and, with ``trim``, ``rss_trimmed`` (after
    :func:`_malloc_trim`); ``pymalloc_bytes`` (see :func:`_pymalloc_bytes`), ``blocks`` (``sys.getallocatedblocks``),
    and ``by_type``: type name → [objects, bytes] of the objects the garbage collector tracks
    (containers: instances, dicts, lists, coroutines, tasks, pydantic models…; ``sys.getsizeof``,
    each object's own allocation, not what it refers to)."""
    gc.collect()
    by_type: dict[str, list[int]] = {}
    counts: Counter = Counter()
    sizes: Counter = Counter()
    for obj in gc.get_objects():
        kind = type(obj)
        name = f"{kind.__module__}.{kind.__qualname__}" if kind.__module__ != "builtins" else kind.__qualname__
        counts[name] += 1
        try:
            sizes[name] += sys.getsizeof(obj)
        except Exception:  # noqa: BLE001 - a proxy whose __sizeof__ refuses: counted, not sized
            pass
    for name in counts:
        by_type[name] = [counts[name], sizes[name]]
    stats: dict[str, Any] = {"rss": _rss(), "pymalloc_bytes": _pymalloc_bytes(), "blocks": sys.getallocatedblocks(),
                             "by_type": by_type}
    if trim and _malloc_trim():
        stats["rss_trimmed"] = _rss()
    return stats


def install_stats_handler(directory: Path) -> None:
    """SIGUSR1 → write :func:`heap_stats` into ``directory``, SIGUSR2 → the same with ``trim``;
    bench/bare_worker.py uses this too."""
    directory.mkdir(parents=True, exist_ok=True)
    loop = asyncio.get_running_loop()
    count = 0

    def dump(trim: bool) -> None:
        nonlocal count
        count += 1
        path = directory / f"heap-{count}.json"
        path.write_text(json.dumps(heap_stats(trim)))
        print(f"heap stats {path}", flush=True)

    loop.add_signal_handler(signal.SIGUSR1, dump, False)
    loop.add_signal_handler(signal.SIGUSR2, dump, True)


def _variant(runner: str, max_cached: int | None) -> None:
    """Make ``worker.worker_options`` return the variant asked for (see the module docstring)."""
    import worker
    from temporalio.worker import UnsandboxedWorkflowRunner

    production = worker.worker_options

    def options(*extra_passthrough: str) -> dict[str, Any]:
        opts = production(*extra_passthrough)
        if runner == "unsandboxed":
            opts["workflow_runner"] = UnsandboxedWorkflowRunner()
        if max_cached is not None:
            opts["max_cached_workflows"] = max_cached
        return opts

    worker.worker_options = options  # type: ignore[assignment]


async def main(directory: Path, runner: str = "sandbox", max_cached: int | None = None, role: str = "all") -> int:
    import worker

    _variant(runner, max_cached)
    install_stats_handler(directory)
    return await worker.main(role)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stats_dir", type=Path)
    parser.add_argument("--runner", choices=("sandbox", "unsandboxed"), default="sandbox")
    parser.add_argument("--max-cached", type=int, default=None)
    parser.add_argument("--role", default="all")
    a = parser.parse_args()
    sys.exit(asyncio.run(main(a.stats_dir, a.runner, a.max_cached, a.role)))
