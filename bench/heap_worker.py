"""Stellar's worker (``worker.main``, what ``python worker.py`` runs) with a heap-snapshot hook:
the Python-heap pass of bench/worker_memory.py.

    python -m bench.heap_worker SNAPSHOT_DIR

The first SIGUSR1 starts ``tracemalloc`` (``FRAMES`` frames a trace) and every SIGUSR1 writes the
heap as traced then to ``SNAPSHOT_DIR/heap-<n>.snap`` (``tracemalloc.Snapshot.dump``, n = 1, 2, …),
printing ``heap snapshot <path>`` once written. Tracing from the first signal on keeps start-up
at its normal speed and still sees every block allocated between two snapshots. Tracing costs
memory of its own (``tracemalloc.get_tracemalloc_memory``), so the RSS of this process is not the
worker's: the RSS rows of the bench come from an untraced ``python worker.py``.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
import tracemalloc
from pathlib import Path

#: Frames kept per allocation: enough to reach the Stellar or SDK code behind a pydantic, asyncio
#: or protobuf allocation.
FRAMES = 10


def install_snapshot_handler(directory: Path) -> None:
    """SIGUSR1 → (start tracing, then) dump a heap snapshot, after a full collection, into
    ``directory``; bench/bare_worker.py uses this too."""
    directory.mkdir(parents=True, exist_ok=True)
    loop = asyncio.get_running_loop()
    count = 0

    def dump() -> None:
        nonlocal count
        if not tracemalloc.is_tracing():
            tracemalloc.start(FRAMES)
        count += 1
        gc.collect()
        path = directory / f"heap-{count}.snap"
        tracemalloc.take_snapshot().dump(str(path))
        print(f"heap snapshot {path}", flush=True)

    loop.add_signal_handler(signal.SIGUSR1, dump)


async def main(directory: Path) -> int:
    import worker

    install_snapshot_handler(directory)
    return await worker.main()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]))))
