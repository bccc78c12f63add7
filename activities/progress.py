"""An order's progress, recomputed from its ingested frames (``shot_done`` rows).

Shared by the session ingest (after each new frame), the ledger (accepted integration for the
settlement) and the final report, so the three can never disagree. Frames wanted per shot line are
``quantity × repeat`` (``repeat`` = runs of the shot list, one per night; see
docs/order-workflow.md); accepted frames are the ones Voyager did not mark deleted (HFD above the
plan's ``C_HFDMeanLimit`` are deleted and retaken).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from activities._db import sql
from models.db import Order, OrderShot, ShotDone
from models.orders import OrderProgress


def wanted(line: OrderShot, order: Order) -> int:
    """Frames the order wants of ``line``: quantity × repeat."""
    return int(line.quantity) * max(1, int(order.repeat or 1))


async def order_lines(session: AsyncSession, order_id: int) -> list[OrderShot]:
    result = await session.exec(
        select(OrderShot).where(OrderShot.order_id == order_id).order_by(OrderShot.position, OrderShot.id)
    )
    return list(result.all())


def requested_seconds(order: Order, lines: list[OrderShot]) -> float:
    """Requested integration (s): Σ exposure × wanted frames."""
    return float(sum(float(line.exposure) * wanted(line, order) for line in lines))


async def refresh_progress(session: AsyncSession, order: Order) -> OrderProgress:
    """Recompute ``OrderShot.done/accepted`` and the order's progress columns in ``session``.

    The caller holds the order row (``SELECT … FOR UPDATE``) and commits. ``integration_seconds``
    counts accepted frames up to each line's wanted number.
    """
    assert order.id is not None
    lines = await order_lines(session, order.id)
    accepted = ShotDone.accepted.is_(True)  # type: ignore[union-attr]
    # One statement: per shot line its frames and accepted frames, and the sum and count of the
    # accepted frames' HFD, from which the order's mean HFD follows (avg = Σ sums ÷ Σ counts).
    stats = (
        await sql(session,
            sa.select(
                ShotDone.shot_guid,
                sa.func.count(),
                sa.func.count().filter(accepted),
                sa.func.sum(ShotDone.hfd).filter(accepted),
                sa.func.count(ShotDone.hfd).filter(accepted),
            )
            .where(ShotDone.order_id == order.id)
            .group_by(ShotDone.shot_guid)
        )
    ).all()
    per_shot = {guid: (int(done), int(acc)) for guid, done, acc, _sum, _n in stats}
    hfd_n = sum(int(n) for *_, n in stats)
    hfd = sum(float(total or 0.0) for *_, total, _n in stats) / hfd_n if hfd_n else None
    total = done_capped = accepted_all = taken_all = 0
    integration = 0.0
    for line in lines:
        done, acc = per_shot.get(line.shot_guid, (0, 0)) if line.shot_guid else (0, 0)
        line.done, line.accepted = done, acc
        session.add(line)
        want = wanted(line, order)
        total += want
        done_capped += min(acc, want)
        accepted_all += acc
        taken_all += done
        integration += float(line.exposure) * min(acc, want)
    requested = requested_seconds(order, lines)
    order.shots_total = total
    order.shots_done = done_capped
    order.frames_accepted = accepted_all
    order.integration_seconds = integration
    order.requested_integration_seconds = requested
    order.mean_hfd = round(float(hfd), 3) if hfd is not None else None
    session.add(order)
    return OrderProgress(
        order_id=order.id,
        shots_total=total,
        shots_done=done_capped,
        frames_accepted=accepted_all,
        frames_rejected=taken_all - accepted_all,
        integration_seconds=integration,
        requested_integration_seconds=requested,
        mean_hfd=order.mean_hfd,
        all_done=total > 0 and done_capped >= total,
    )
