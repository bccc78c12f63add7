"""Server-Sent Events of one order, fed by PostgreSQL LISTEN/NOTIFY through ``OrderEventHub``.

Stream: ``retry:``, then every ``order_event`` row after ``Last-Event-ID`` (replay), then live
rows as their notifications arrive, each as ``id: <row id>`` / ``event: <kind>`` / ``data: <json>``.
While idle a ``: heartbeat`` comment goes out every ``api.sse_heartbeat_seconds``. The stream ends
once the order has reached a final status and every event up to it was sent.
"""

from __future__ import annotations

import asyncio
import json
from typing import AsyncIterator

import structlog
from sqlmodel import select

from api.event_hub import RESYNC
from api.resources import Resources
from models.db import Order, OrderEvent
from models.orders import FINAL_STATUSES

log = structlog.get_logger(__name__)

_FINAL = {s.value for s in FINAL_STATUSES}
RETRY_MS = 3000


def format_event(row: OrderEvent) -> str:
    """One SSE message. ``data`` = {order_id, kind, created_at, **payload}."""
    data = {"order_id": row.order_id, "kind": row.kind, "created_at": row.created_at.isoformat(),
            **(row.payload or {})}
    return f"id: {row.id}\nevent: {row.kind}\ndata: {json.dumps(data, default=str)}\n\n"


async def _rows_after(res: Resources, order_id: int, after: int) -> tuple[list[OrderEvent], str]:
    """Event rows after id ``after`` (ascending) and the order's current status.

    The status is read first: a final status commits with its event (``finalize_order``), and each
    statement sees what was committed before it started, so a final status read here guarantees its
    event is among the rows. Read the other way round, a commit between the two statements would end
    the stream without its last event."""
    async with res.sessionmaker() as session:
        status = await session.scalar(select(Order.status).where(Order.id == order_id))
        rows = list((await session.exec(
            select(OrderEvent).where(OrderEvent.order_id == order_id, OrderEvent.id > after).order_by(OrderEvent.id)
        )).all())
    return rows, status or ""


async def order_events(res: Resources, order_id: int, last_event_id: int) -> AsyncIterator[str]:
    """The SSE text of ``order_id`` after ``last_event_id`` (0 = from the start)."""
    heartbeat = res.settings.api.sse_heartbeat_seconds
    last = last_event_id
    log.info("order_stream.opened", order_id=order_id, last_event_id=last_event_id)
    try:
        # Subscribe before the replay query, so nothing committed in between is missed.
        async with res.events.subscribe(order_id) as queue:
            yield f"retry: {RETRY_MS}\n\n"
            while True:
                rows, status = await _rows_after(res, order_id, last)
                for row in rows:
                    yield format_event(row)
                    last = row.id
                if status in _FINAL:
                    return
                try:
                    async with asyncio.timeout(heartbeat):
                        event_id = await queue.get()
                except asyncio.TimeoutError:
                    yield ": heartbeat\n\n"
                    continue
                if event_id == RESYNC:
                    await res.events.ensure_listening()
                # Drain what else arrived: one catch-up query covers them all.
                while not queue.empty():
                    queue.get_nowait()
    finally:
        log.info("order_stream.closed", order_id=order_id, last_event_id=last)
