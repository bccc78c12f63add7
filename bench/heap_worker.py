"""Stellar's worker (``worker.main``, what ``python worker.py`` runs) with a heap-statistics hook:
where a waiting order's memory goes (bench/worker_memory.py).

    python -m bench.heap_worker STATS_DIR

Every SIGUSR1 writes the Python heap's statistics as they are then (after a full collection) to
``STATS_DIR/heap-<n>.json`` (n = 1, 2, …; :func:`heap_stats`) and prints ``heap stats <path>``.
Nothing is traced between two signals, so the worker runs at its normal speed and its RSS is the
one the bench reads (``tracemalloc`` was tried: traced, the worker's first workflow tasks took
15–60 s on the loaded 2-core machine and timed out).
"""

from __future__ import annotations

import asyncio
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


def heap_stats() -> dict[str, Any]:
    """``pymalloc_bytes`` (see :func:`_pymalloc_bytes`), ``blocks`` (``sys.getallocatedblocks``),
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
    return {"pymalloc_bytes": _pymalloc_bytes(), "blocks": sys.getallocatedblocks(), "by_type": by_type}


def install_stats_handler(directory: Path) -> None:
    """SIGUSR1 → write :func:`heap_stats` into ``directory``; bench/bare_worker.py uses this too."""
    directory.mkdir(parents=True, exist_ok=True)
    loop = asyncio.get_running_loop()
    count = 0

    def dump() -> None:
        nonlocal count
        count += 1
        path = directory / f"heap-{count}.json"
        path.write_text(json.dumps(heap_stats()))
        print(f"heap stats {path}", flush=True)

    loop.add_signal_handler(signal.SIGUSR1, dump)


async def main(directory: Path) -> int:
    import worker

    install_stats_handler(directory)
    return await worker.main()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]))))
