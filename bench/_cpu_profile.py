"""cProfile on a CPU-time clock for the benches: what this process spends, not the time it waits for
PostgreSQL, a socket or the machine's other processes (bench/ledger.py, bench/voyager_pool.py)."""

from __future__ import annotations

import cProfile
import pstats
import time
from collections.abc import Awaitable


async def cpu_profiled(work: Awaitable[object]) -> dict:
    """Await ``work`` under cProfile on ``time.process_time``; its ``pstats`` table:
    (file, line, function) → (primitive calls, calls, own s, cumulative s, callers)."""
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    try:
        await work
    finally:
        profiler.disable()
    return pstats.Stats(profiler).stats  # type: ignore[attr-defined]
