"""One PostgreSQL ``LISTEN order_events`` connection per API process, fanned out to SSE streams.

``order_event`` inserts fire ``NOTIFY order_events, '<order_id>:<event_id>'`` (trigger in the
initial migration). Each SSE stream subscribes to its order and is woken with the event id; it then
reads the rows after the last id it sent, so a lost or coalesced notification loses nothing.
When the LISTEN connection drops, every subscriber is woken (to catch up from the table) and the
hub reconnects on the next subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import AsyncIterator

import asyncpg
import structlog
from sqlalchemy.engine import make_url

log = structlog.get_logger(__name__)

CHANNEL = "order_events"
#: Put on a queue when notifications may have been missed: re-read the table.
RESYNC = 0


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """``postgresql+asyncpg://…`` → ``postgresql://…`` for ``asyncpg.connect``."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class OrderEventHub:
    """Fans ``order_events`` notifications out to per-order ``asyncio.Queue[int]`` (event ids)."""

    def __init__(self, dsn: str, connect_timeout: float = 5.0) -> None:
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()
        self._subscribers: dict[int, set[asyncio.Queue[int]]] = defaultdict(set)

    async def ensure_listening(self) -> None:
        async with self._lock:
            if self._conn is not None and not self._conn.is_closed():
                return
            conn = await asyncpg.connect(self._dsn, timeout=self._connect_timeout)
            conn.add_termination_listener(self._on_terminated)
            await conn.add_listener(CHANNEL, self._on_notify)
            self._conn = conn
            log.info("order_events.listening")

    def _on_notify(self, _conn, _pid, _channel, payload: str) -> None:
        order_part, _, event_part = payload.partition(":")
        try:
            order_id, event_id = int(order_part), int(event_part)
        except ValueError:
            log.warning("order_events.bad_payload", payload=payload)
            return
        for queue in self._subscribers.get(order_id, ()):
            queue.put_nowait(event_id)

    def _on_terminated(self, _conn) -> None:
        log.warning("order_events.connection_lost")
        self._conn = None
        for queues in self._subscribers.values():
            for queue in queues:
                queue.put_nowait(RESYNC)

    @contextlib.asynccontextmanager
    async def subscribe(self, order_id: int) -> AsyncIterator[asyncio.Queue[int]]:
        """A queue receiving event ids of ``order_id`` (``RESYNC`` after a reconnect), while open.

        Raises OSError/asyncpg errors when the database cannot be reached.
        """
        queue: asyncio.Queue[int] = asyncio.Queue()
        self._subscribers[order_id].add(queue)
        try:
            await self.ensure_listening()
            yield queue
        finally:
            subs = self._subscribers.get(order_id)
            if subs is not None:
                subs.discard(queue)
                if not subs:
                    self._subscribers.pop(order_id, None)

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None and not self._conn.is_closed():
                self._conn.remove_termination_listener(self._on_terminated)
                await self._conn.close()
            self._conn = None
