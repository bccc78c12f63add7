"""The observatory monitor's own frame ingest: a session it sees change is ingested at once.

A frame's way to the order's event stream used to pass through the order's workflow: the monitor's
signal, the order's workflow task (queued behind every other order's in a burst), the session
watch scheduled, waiting for an activity slot, then polling RoboTarget (bench/report.md, section 1,
"where the frames wait"). The monitor already lists every session of the night on the poll a
``NewFITReady`` wakes, and knows each session's order; so it ingests the frames of a session whose
state changed itself, in the background of its poll, with the very function the watch uses
(``IngestActivities.ingest_session``: ``ON CONFLICT (shot_done_guid) DO NOTHING`` under the order's
row lock, so the monitor and the watch or sweep racing on a frame ingest it once).

While a session runs this is a shortcut: a failure is logged and left to the next kick, the
session's end and the final sweep. When the monitor sees the session end, :meth:`SessionIngests.finish`
ingests its last frames and returns only once every frame Voyager lists is stored (or raises): the
monitor then tells the order its progress, and the order runs no watch of its own
(docs/order-workflow.md, step 3). Nothing here reaches workflow history.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

#: Sessions ingested at once. At most one session runs on a telescope at a time, so a handful covers
#: a burst's just-ended sessions without taking the worker's database pool from the activities.
INGEST_CONCURRENCY = 4


class SessionIngests:
    """Background ingests, at most one task per session at a time.

    ``ingest(order_id, session_guid) -> frames ingested`` (``IngestActivities.ingest_session``).
    :meth:`kick` while that session's ingest runs makes it run once more when done (the frame that
    woke the kick may have been listed after its ``RemoteRoboTargetGetShotDoneBySessionList``)."""

    def __init__(self, ingest: Callable[[int, str], Awaitable[int]], limit: int = INGEST_CONCURRENCY) -> None:
        self._ingest = ingest
        self._gate = asyncio.Semaphore(limit)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self.frames = 0  # ingested by this monitor (the rest by the watches and sweeps)

    def kick(self, order_id: int, session_guid: str) -> None:
        """Ingest the session's new frames soon (returns at once)."""
        if session_guid in self._tasks:
            self._again.add(session_guid)
            return
        self._tasks[session_guid] = asyncio.create_task(self._run(order_id, session_guid),
                                                        name=f"monitor-ingest-{session_guid}")

    async def finish(self, order_id: int, session_guid: str) -> int:
        """Ingest the session's frames not yet stored, now, and return how many were new: after a
        background ingest of it in flight (the ingest's per-session lock serializes the two, so
        each frame is fetched and stored once). Raises what the ingest raises (Voyager, the
        database or the image store unreachable, a refusal)."""
        self._again.discard(session_guid)  # this call lists everything a re-run would
        async with self._gate:
            new = await self._ingest(order_id, session_guid)
        self.frames += new
        return new

    @property
    def running(self) -> int:
        """Sessions with an ingest in flight."""
        return len(self._tasks)

    async def _run(self, order_id: int, session_guid: str) -> None:
        try:
            while True:
                self._again.discard(session_guid)
                try:
                    async with self._gate:
                        new = await self._ingest(order_id, session_guid)
                    self.frames += new  # not ``+= await``: that reads the count before the await
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the order's watch and sweep ingest it anyway
                    log.warning("monitor.ingest_failed", order_id=order_id, session_guid=session_guid, error=str(exc))
                    return
                if session_guid not in self._again:
                    return
        finally:
            self._tasks.pop(session_guid, None)
            self._again.discard(session_guid)

    async def close(self, grace: float = 5.0) -> None:
        """Let the ingests in flight finish for up to ``grace`` seconds, then cancel the rest (a frame
        cut short is stored again by the next ingest of its session: same key, same hash)."""
        await finish_or_cancel(list(self._tasks.values()), grace)


async def finish_or_cancel(tasks: list[asyncio.Task[None]], grace: float) -> None:
    """Wait up to ``grace`` seconds for ``tasks`` to finish, then cancel the rest and wait for them."""
    if not tasks:
        return
    _done, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task
