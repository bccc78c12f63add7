"""Say on the order why it waits: ``waiting for the observatory link since …`` (Voyager away) or
``waiting for site <slug> since …`` (its site worker away, network mode).

Voyager unreachable is a wait, not a failure (docs/order-workflow.md, Failure handling): the Voyager
activities keep retrying while the link is down, and on the first failed attempt they write the
reason into ``Order.status_reason`` (shown by ``GET /api/orders/{id}``). The next status change
replaces it. Best effort: the database may be down too, then only the log says it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from temporalio import activity

from activities._db import db_unavailable
from activities.order_store import lock_order
from models.db import Order
from models.orders import SiteWait

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


# --------------------------------------------------------------------------- the site worker

SITE_WAIT_PREFIX = "waiting for site"


def site_wait_reason(telescope: str, since: datetime) -> str:
    """``waiting for site chile since 2026-01-15 22:14 UTC`` (``since``: aware UTC)."""
    return f"{SITE_WAIT_PREFIX} {telescope} since {since.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


async def note_site_wait(sessionmaker: async_sessionmaker[AsyncSession], order_id: int, telescope: str) -> bool:
    """Record on the order that its site worker does not take its Voyager work (network mode,
    docs/network.md §2), keeping the first ``since``; returns whether the reason was written."""
    log.warning("order.site_unreachable", order_id=order_id, telescope=telescope)
    async with sessionmaker() as session:
        order = await lock_order(session, order_id)
        if order.status_reason.startswith(f"{SITE_WAIT_PREFIX} {telescope} "):
            return False
        order.status_reason = site_wait_reason(telescope, datetime.now(UTC))
        order.updated_at = datetime.now(UTC)
        session.add(order)
        await session.commit()
    return True


async def clear_site_wait(sessionmaker: async_sessionmaker[AsyncSession], order_id: int, task_queue: str) -> None:
    """Called by a Voyager activity as it starts: on a site queue (``site-<slug>``) its site worker
    is back, so a ``waiting for site …`` reason is cleared. Best effort (a database outage leaves it
    for the next status change); one conditional UPDATE, nothing off a site queue."""
    if not task_queue.startswith("site-"):
        return
    try:
        async with sessionmaker() as session:
            await session.exec(  # type: ignore[call-overload]
                update(Order).where(Order.id == order_id, Order.status_reason.startswith(SITE_WAIT_PREFIX + " "))  # type: ignore[union-attr,attr-defined]
                .values(status_reason="", updated_at=datetime.now(UTC)))
            await session.commit()
    except Exception as exc:
        if not db_unavailable(exc):
            raise
        log.warning("order.site_wait_not_cleared", order_id=order_id, error=str(exc))


class SiteWaitActivities:
    """Central side of a site wait: ``OrderWorkflow`` runs :meth:`note_site_wait` (a local
    activity) when its site activity was not picked up in time (``schedule_to_start_timeout``)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    @activity.defn(name="order_store.note_site_wait")
    async def note_site_wait(self, req: SiteWait) -> bool:
        """Write ``waiting for site <slug> since <UTC>`` on the order (first ``since`` kept);
        returns whether it was written. Raises non-retryable ``OrderNotFound``."""
        return await note_site_wait(self.sessionmaker, req.order_id, req.telescope)
