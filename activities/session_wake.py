"""Wake the session watches of a worker when Voyager announces a frame or a state change.

One dashboard connection per worker process (``voyager.events.EventStream``), opened with the first
session watch and shared by all of them, whatever the number of orders observing. Each
``NewFITReady`` (a frame was written, after RoboTarget listed it as *shot done*) or ``Signal`` (a
session started, stopped or ended: docs/voyager-protocol.md §4, §7) sets every subscriber's
``asyncio.Event``; the watch then polls RoboTarget at once instead of on its slow safety poll.
Events sent while the link is down are lost (Voyager does not replay them): the safety poll is what
guarantees that no frame or session end is missed, the events only make it quick.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import structlog

from voyager.events import EventStream

log = structlog.get_logger(__name__)

#: Dashboard events after which a session watch polls at once: a frame was written (``NewFITReady``),
#: the scheduler's state changed (``Signal``: running, shot started, stopped, idle, error), Voyager
#: shuts down (``ShutDown``). Not ``NewJPGReady``: the same moment as ``NewFITReady``, with the image.
WAKE_EVENTS = frozenset({"NewFITReady", "Signal", "ShutDown"})


class SessionWake:
    """Fans dashboard events out to the session watches of this process.

    ``stream_factory``: builds an unstarted :class:`EventStream` (``core.voyager_clients.
    event_stream_from_settings``); None = no events (every watch relies on its safety poll). The
    connection opens with the first watch and stays open (it reconnects by itself) until
    :meth:`close`, which the worker calls when it stops: watches come and go every session, and a
    connection opened and closed with each would race its own close."""

    def __init__(self, stream_factory: Callable[[], EventStream] | None) -> None:
        self._factory = stream_factory
        self._subscribers: set[asyncio.Event] = set()
        self._task: asyncio.Task[None] | None = None
        self.events_seen = 0

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Event]:
        """An ``asyncio.Event`` set on every wake event while the ``async with`` body runs (the
        caller clears it before each poll)."""
        woken = asyncio.Event()
        self._subscribers.add(woken)
        if self._factory is not None and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._listen(), name="session-wake")
        try:
            yield woken
        finally:
            self._subscribers.discard(woken)

    async def close(self) -> None:
        """Close the dashboard connection (idempotent)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen(self) -> None:
        assert self._factory is not None
        try:
            async with self._factory() as stream:
                async for _event in stream:
                    self.events_seen += 1
                    for woken in self._subscribers:
                        woken.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the watches still poll; a broken stream only slows them
            log.warning("session_wake.stream_failed", error=str(exc))
