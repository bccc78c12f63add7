"""Revision 0006_retention upgrades a database that already holds an ended order and its frames:
they keep every value, nothing is noticed or expired yet."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from core.database import make_engine
from core.migrate import upgrade_in_thread
from tests.scratch_db import scratch_database

pytestmark = pytest.mark.asyncio


async def test_upgrade_keeps_frames_and_marks_none_expired(engine, database_url):
    async with scratch_database(engine, database_url) as url:
        await _upgrade_with_data(url)


async def _upgrade_with_data(url: str) -> None:
    upgrade_in_thread(url, "0005_guards")  # the revision before 0006_retention
    eng = make_engine(url)
    try:
        async with eng.begin() as conn:
            cid = (await conn.execute(sa.text(
                "INSERT INTO customer (email, name, created_at) VALUES ('old@example.com', '', now()) RETURNING id"
            ))).scalar_one()
            oid = (await conn.execute(sa.text(
                """INSERT INTO "order" (customer_id, plan, status, status_reason, target_name, ra_j2000, dec_j2000,
                   pa, priority, c_moon_down, c_hfd_mean_limit, c_alt_min, repeat, cost, credits_held,
                   credits_captured, credits_refunded, shots_total, shots_done, frames_accepted,
                   requested_integration_seconds, integration_seconds, created_at, updated_at, finished_at)
                   VALUES (:c, 'nebula', 'completed', '', 'M42', 5.58, -5.39, 0, 2, false, 0, 30, 1, 3, 3, 3, 0,
                   1, 1, 1, 60, 60, now(), now(), now() - interval '40 days') RETURNING id"""), {"c": cid})).scalar_one()
            await conn.execute(sa.text(
                """INSERT INTO shot_done (order_id, session_guid, shot_done_guid, filter, exposure, bin, hfd,
                   filename, fits_path, jpg_path, is_deleted, accepted, ingested_at)
                   VALUES (:o, 's', :g, 'Ha', 300, 1, 2.1, 'a.fit', '/x/a.fit', 'a.jpg', false, true, now())"""),
                {"o": oid, "g": str(uuid.uuid4())})
        upgrade_in_thread(url, "0006_retention")
        async with eng.connect() as conn:
            order = (await conn.execute(sa.text(
                'SELECT status, cost, retention_notice_at, frames_expired_at FROM "order" WHERE id = :o'),
                {"o": oid})).one()
            frame = (await conn.execute(sa.text(
                "SELECT filter, hfd, jpg_path, expired_at FROM shot_done WHERE order_id = :o"), {"o": oid})).one()
        assert tuple(order) == ("completed", 3, None, None)
        assert tuple(frame) == ("Ha", 2.1, "a.jpg", None)
    finally:
        await eng.dispose()
