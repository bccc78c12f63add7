"""The night's status changes of an order (``running`` ⇄ ``submitted``), written outside its workflow.

A workflow step per change would cost a local-activity marker and a billable action each, twice a
night; the observatory monitor writes them instead as it sees the session run and end (and, for
orders started before the monitor closed sessions, their session watch: docs/order-workflow.md,
step 3). Only an order that is ``submitted`` or ``running`` moves: a write arriving after an abort
or the deadline never overwrites ``settling`` or a final status.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from activities.order_store import lock_order, status_event
from models.orders import OrderStatus

log = structlog.get_logger(__name__)

def running_reason(session_guid: str) -> str:
    """The reason of ``running`` for one session, as the order workflow words it (workflows/order.py)."""
    return f"session {session_guid}"


#: Reasons of the ``submitted`` status after a session that ended with shots left (+ its exit text):
#: a multi-night order (``IsRepeat``) waits for a later night, a one-night order for the rest of
#: its night (docs/order-workflow.md, step 4).
WAITING_NEXT_NIGHT = "waiting for the next night"
WAITING_REST_OF_NIGHT = "waiting for the rest of the night"


def waiting_reason(is_repeat: bool, exit_text: str) -> str:
    """The reason of ``submitted`` after a session ended with shots left: ``"<waiting> (<exit text>)"``."""
    return f"{WAITING_NEXT_NIGHT if is_repeat else WAITING_REST_OF_NIGHT} ({exit_text})"


#: The statuses the night moves between.
NIGHT_STATUSES = (OrderStatus.SUBMITTED.value, OrderStatus.RUNNING.value)


async def move_night_status(sessionmaker: async_sessionmaker[AsyncSession], order_id: int, status: OrderStatus,
                            reason: str) -> bool:
    """Set ``status`` (``running`` or ``submitted``) with ``reason`` and its ``status`` OrderEvent,
    once; returns True when it changed. Nothing happens when the order already has ``status`` or is
    no longer ``submitted``/``running``. Raises what the database raises (the watch waits outages out)."""
    async with sessionmaker() as session:
        order = await lock_order(session, order_id)
        if order.status == status.value or order.status not in NIGHT_STATUSES:
            return False
        order.status, order.status_reason, order.updated_at = status.value, reason, datetime.now(UTC)
        session.add(order)
        session.add(status_event(order, status, reason, final=False))
        await session.commit()
    log.info("order.status_changed", order_id=order_id, status=status.value)
    return True
