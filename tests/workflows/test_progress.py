"""An order's progress recomputed from its frames (``activities.progress.refresh_progress``), on
the real database: per shot line, capped at what the line wants, and the accepted frames' mean HFD
(PostgreSQL's own ``avg`` is the reference)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from activities.order_store import lock_order
from activities.progress import refresh_progress
from core.database import make_sessionmaker
from models.db import OrderShot, ShotDone
from tests.workflows.support import create_customer, create_order


async def test_progress_counts_frames_per_line_and_the_accepted_frames_mean_hfd(engine):
    order_id = await create_order(engine, await create_customer(engine, 0), [
        {"filter": "L", "exposure": 60, "quantity": 2}, {"filter": "R", "exposure": 30, "quantity": 3}])
    sm = make_sessionmaker(engine)
    async with sm() as s:
        lines = (await s.exec(sa.select(OrderShot).where(OrderShot.order_id == order_id)
                              .order_by(OrderShot.position))).scalars().all()  # type: ignore[call-overload]
        guids = [str(uuid.uuid4()), str(uuid.uuid4())]
        for line, guid in zip(lines, guids):
            line.shot_guid = guid
            s.add(line)
        # L: 3 accepted (one more than wanted) and 1 rejected; R: 1 accepted without an HFD, 1 rejected.
        frames = [(guids[0], True, 2.0), (guids[0], True, 2.5), (guids[0], True, 3.1), (guids[0], False, 9.0),
                  (guids[1], True, None), (guids[1], False, 7.0)]
        for guid, accepted, hfd in frames:
            s.add(ShotDone(order_id=order_id, session_guid=str(uuid.uuid4()), shot_done_guid=str(uuid.uuid4()),
                           shot_guid=guid, exposure=60 if guid == guids[0] else 30, hfd=hfd, accepted=accepted,
                           is_deleted=not accepted))
        await s.commit()
    async with sm() as s:
        progress = await refresh_progress(s, await lock_order(s, order_id))
        await s.commit()
    async with engine.connect() as conn:
        expected_hfd = (await conn.execute(sa.text(
            "SELECT round(avg(hfd)::numeric, 3) FROM shot_done WHERE order_id = :o AND accepted"), {"o": order_id})).scalar()
        done = dict((await conn.execute(sa.text(
            "SELECT filter, done || '/' || accepted FROM order_shot WHERE order_id = :o"), {"o": order_id})).all())
    assert progress.shots_total == 5 and progress.shots_done == 2 + 1
    assert progress.frames_accepted == 4 and progress.frames_rejected == 2 and not progress.all_done
    assert progress.integration_seconds == 2 * 60 + 1 * 30
    assert progress.mean_hfd == float(expected_hfd) == round((2.0 + 2.5 + 3.1) / 3, 3)
    assert done == {"L": "4/3", "R": "2/1"}


async def test_progress_of_an_order_without_frames_has_no_mean_hfd(engine):
    order_id = await create_order(engine, await create_customer(engine, 0), [{"filter": "L", "exposure": 60, "quantity": 1}])
    async with make_sessionmaker(engine)() as s:
        progress = await refresh_progress(s, await lock_order(s, order_id))
        await s.commit()
    assert progress.mean_hfd is None and progress.shots_done == 0 and progress.shots_total == 1
