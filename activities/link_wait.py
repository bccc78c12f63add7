"""Say on the order why it waits: ``waiting for the observatory link since …``.

Voyager unreachable is a wait, not a failure (docs/order-workflow.md, Failure handling): the Voyager
activities keep retrying while the link is down, and on the first failed attempt they write the
reason into ``Order.status_reason`` (shown by ``GET /api/orders/{id}``). The next status change
replaces it. Best effort: the database may be down too, then only the log says it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from activities._db import db_unavailable
from activities.order_store import lock_order

log = structlog.get_logger(__name__)

LINK_WAIT_PREFIX = "waiting for the observatory link since"


def link_wait_reason(since: datetime) -> str:
    """``waiting for the observatory link since 2026-01-15 22:14 UTC`` (``since``: aware UTC)."""
    return f"{LINK_WAIT_PREFIX} {since.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


async def note_link_down(sessionmaker: async_sessionmaker[AsyncSession], order_id: int, error: Exception) -> None:
    """Record on the order that it waits for Voyager, keeping the first ``since`` of this wait."""
    log.warning("order.voyager_unreachable", order_id=order_id, error=str(error))
    try:
        async with sessionmaker() as session:
            order = await lock_order(session, order_id)
            if order.status_reason.startswith(LINK_WAIT_PREFIX):
                return
            order.status_reason = link_wait_reason(datetime.now(UTC))
            order.updated_at = datetime.now(UTC)
            session.add(order)
            await session.commit()
    except Exception as exc:
        if not db_unavailable(exc):
            raise
        log.warning("order.link_wait_not_recorded", order_id=order_id, error=str(exc))
