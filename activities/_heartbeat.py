"""Heartbeat in the background while an activity awaits something long (Voyager commands, sleeps).

Heartbeats are how a long activity learns it was cancelled, and how the server notices that its
worker died (``heartbeat_timeout`` in ``workflows/_options.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from temporalio import activity


def heartbeat_interval(default: float = 5.0) -> float:
    """A third of the activity's heartbeat timeout (seconds), or ``default`` when it has none."""
    timeout = activity.info().heartbeat_timeout
    if timeout is None or timeout.total_seconds() <= 0:
        return default
    return max(0.2, timeout.total_seconds() / 3)


@contextlib.asynccontextmanager
async def heartbeating(details: Callable[[], Any] | None = None, *, every: float | None = None) -> AsyncIterator[None]:
    """Heartbeat every ``every`` seconds (default :func:`heartbeat_interval`), with ``details()`` if
    given, for the duration of the ``async with`` body; the first one at once."""
    interval = every if every is not None else heartbeat_interval()

    async def beat() -> None:
        while True:
            if details is None:
                activity.heartbeat()
            else:
                activity.heartbeat(details())
            await asyncio.sleep(interval)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
