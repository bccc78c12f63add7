"""An order's progress, recomputed from its ingested frames (``shot_done`` rows).

Shared by the session ingest (after each new frame), the ledger (accepted integration for the
settlement) and the final report, so the three can never disagree. Frames wanted per shot line are
``quantity × repeat`` (``repeat`` = runs of the shot list, one per night; see
docs/order-workflow.md); accepted frames are the ones Voyager did not mark deleted (HFD above the
plan's ``C_HFDMeanLimit`` are deleted and retaken). The computation is one statement,
``activities.order_sql.REFRESH_PROGRESS``.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from activities.order_sql import LOCK_ORDER, PROGRESS_OF, REFRESH_PROGRESS, engine_of, not_found
from models.db import Order, OrderShot
from models.orders import OrderProgress

#: The order's columns the progress writes.
PROGRESS_COLUMNS = ("shots_total", "shots_done", "frames_accepted", "integration_seconds",
                    "requested_integration_seconds", "mean_hfd")


async def order_lines(session: AsyncSession, order_id: int) -> list[OrderShot]:
    result = await session.exec(
        select(OrderShot).where(OrderShot.order_id == order_id).order_by(OrderShot.position, OrderShot.id)
    )
    return list(result.all())


async def progress_now(conn: AsyncConnection, order_id: int, *, write: bool = True) -> OrderProgress:
    """Recompute and store the progress of ``order_id`` on ``conn`` (one statement): per shot line
    ``done``/``accepted``, and the order's totals, ``integration_seconds`` (accepted frames up to
    each line's wanted number × exposure, seconds), requested integration (seconds) and mean HFD of
    the accepted frames. The caller holds the order row (``SELECT … FOR UPDATE``, an earlier
    statement of the transaction) and commits. ``write`` False: computed, stored nowhere (a
    preview). Raises non-retryable ``OrderNotFound``."""
    row = (await conn.execute(REFRESH_PROGRESS if write else PROGRESS_OF, {"order_id": order_id})).first()
    if row is None:
        raise not_found(order_id)
    total, done = int(row.shots_total), int(row.shots_done)
    return OrderProgress(
        order_id=order_id,
        shots_total=total,
        shots_done=done,
        frames_accepted=int(row.frames_accepted),
        frames_rejected=int(row.frames_taken) - int(row.frames_accepted),
        integration_seconds=float(row.integration_seconds),
        requested_integration_seconds=float(row.requested_integration_seconds),
        mean_hfd=row.mean_hfd,
        all_done=total > 0 and done >= total,
    )


async def store_progress(sessionmaker: async_sessionmaker[AsyncSession], order_id: int) -> OrderProgress:
    """:func:`progress_now` in a transaction of its own: the order row locked (serialized with the
    ingest of a frame), then the progress; two statements. Raises non-retryable ``OrderNotFound``."""
    async with engine_of(sessionmaker).begin() as conn:
        if (await conn.execute(LOCK_ORDER, {"order_id": order_id})).first() is None:
            raise not_found(order_id)
        return await progress_now(conn, order_id)


async def refresh_progress(session: AsyncSession, order: Order) -> OrderProgress:
    """:func:`progress_now` in ``session``'s transaction for the locked ``order`` (an ORM row),
    whose progress attributes then hold the stored values (as loaded: the session's flush does not
    write them again)."""
    assert order.id is not None
    progress = await progress_now(await session.connection(), order.id)
    stored = (progress.shots_total, progress.shots_done, progress.frames_accepted, progress.integration_seconds,
              progress.requested_integration_seconds, progress.mean_hfd)
    for name, value in zip(PROGRESS_COLUMNS, stored):
        set_committed_value(order, name, value)
    return progress
