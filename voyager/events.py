"""Dashboard event stream on a dedicated connection that survives reconnects (docs/voyager-protocol.md §4).

    async with EventStream(factory, names={"NewJPGReady", "ShotRunning"}) as stream:
        async for event in stream:          # VoyagerEvent
            ...

Events come from a connection in dashboard mode (``RemoteSetDashboardMode`` IsOn,
docs/voyager-protocol.md §4). When the link drops (or Voyager sends ``ShutDown``) the stream reconnects with
jittered exponential back-off and re-enables dashboard mode; events sent while it was down are
lost (Voyager does not replay them), so consumers that must not miss a frame also poll RoboTarget.
``core/voyager_clients.py`` builds a stream from settings.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from voyager.client import VoyagerConnection
from voyager.errors import VoyagerError, VoyagerTimeout
from voyager.pool import backoff_delay
from voyager.types import VoyagerEvent

log = structlog.get_logger(__name__)

_CLOSED = object()


class EventStream:
    """Async iterator of ``VoyagerEvent`` (§4) from a dedicated dashboard connection.

    ``factory``: builds an unconnected connection with dashboard mode on (manager mode is not
    needed); ``names``: keep only these ``Event`` names (None = all but replies, results and
    Polling); ``queue_size``: events buffered for a slow consumer (oldest dropped beyond it);
    ``backoff_base``/``backoff_max``: seconds of the reconnect back-off. ``reconnects`` counts
    links re-opened after the first.
    """

    def __init__(
        self,
        factory: Callable[[], VoyagerConnection],
        *,
        names: set[str] | frozenset[str] | None = None,
        queue_size: int = 1000,
        backoff_base: float = 0.2,
        backoff_max: float = 30.0,
    ) -> None:
        self.names = frozenset(names) if names else None
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self._factory = factory
        self._out: asyncio.Queue[object] = asyncio.Queue(queue_size)
        self._task: asyncio.Task[None] | None = None
        self._conn: VoyagerConnection | None = None
        self._connected = asyncio.Event()
        self._closed = False
        self.reconnects = 0

    async def start(self, timeout: float | None = None) -> EventStream:
        """Start the background connection; with ``timeout`` (seconds) also wait until it is
        connected (raises VoyagerTimeout)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="voyager-event-stream")
        if timeout is not None:
            await self.wait_connected(timeout)
        return self

    async def wait_connected(self, timeout: float) -> None:
        """Wait until the dashboard connection is up. Raises VoyagerTimeout."""
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            raise VoyagerTimeout(f"event stream not connected within {timeout:g} s") from None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def close(self) -> None:
        """Stop the stream: the iterator ends, the connection sends ``disconnect``."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._conn is not None:
            await self._conn.close()
        self._put(_CLOSED)

    async def __aenter__(self) -> EventStream:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> VoyagerEvent:
        if self._closed and self._out.empty():
            raise StopAsyncIteration
        item = await self._out.get()
        if item is _CLOSED:
            self._put(_CLOSED)  # keep the end visible to any other reader
            raise StopAsyncIteration
        assert isinstance(item, VoyagerEvent)
        return item

    async def next(self, timeout: float) -> VoyagerEvent:
        """The next event within ``timeout`` seconds. Raises TimeoutError, StopAsyncIteration."""
        async with asyncio.timeout(timeout):
            return await self.__anext__()

    # ------------------------------------------------------------ background

    async def _run(self) -> None:
        attempt = 0
        opened = 0
        while not self._closed:
            conn = self._factory()
            try:
                await conn.connect()
            except VoyagerError as exc:
                attempt += 1
                log.warning("voyager_events.connect_failed", attempt=attempt, error=str(exc))
                await asyncio.sleep(backoff_delay(attempt, self.backoff_base, self.backoff_max))
                continue
            self._conn = conn
            if opened:
                self.reconnects += 1
                log.info("voyager_events.reconnected", reconnects=self.reconnects)
            opened += 1
            attempt = 0
            queue = conn.subscribe(self._out.maxsize or 1000)
            self._connected.set()
            try:
                while True:
                    msg = await queue.get()
                    if msg is None:
                        break
                    if self.names is None or msg.get("Event") in self.names:
                        self._put(VoyagerEvent.from_message(msg))
            finally:
                self._connected.clear()
                conn.unsubscribe(queue)
                with contextlib.suppress(Exception):
                    await conn.close()
                self._conn = None
            log.warning("voyager_events.link_lost", error=str(conn.broken))
            await asyncio.sleep(backoff_delay(0, self.backoff_base, self.backoff_max))

    def _put(self, item: object) -> None:
        if self._out.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._out.get_nowait()
        self._out.put_nowait(item)
