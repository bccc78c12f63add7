"""Revision 0011_mosaic upgrades a database that holds an order with its shot lines and frames:
they stay single-field orders (no layout, no panel), and mosaic panels can be added after."""

from __future__ import annotations

import sqlalchemy as sa

from core.database import make_engine
from core.migrate import upgrade_in_thread
from tests.scratch_db import scratch_database


async def test_upgrade_keeps_orders_as_single_field_and_accepts_panels(engine, database_url):
    async with scratch_database(engine, database_url) as url:
        upgrade_in_thread(url, "0010_telescopes")  # the revision before 0011_mosaic
        eng = make_engine(url)
        try:
            async with eng.begin() as conn:
                cid = (await conn.execute(sa.text(
                    "INSERT INTO customer (email, name, created_at) VALUES ('m@example.com', 'M', now()) RETURNING id"
                ))).scalar_one()
                oid = (await conn.execute(sa.text(
                    "INSERT INTO \"order\" (customer_id, plan, status, status_reason, target_name, ra_j2000, dec_j2000,"
                    " pa, priority, c_moon_down, c_hfd_mean_limit, c_alt_min, repeat, cost, credits_held,"
                    " credits_captured, credits_refunded, target_guid, shots_total, shots_done, frames_accepted,"
                    " requested_integration_seconds, integration_seconds, created_at, updated_at)"
                    " VALUES (:c, 'quasar', 'completed', '', 'M42', 5.588, -5.39, 0, 4, true, 2.0, 30, 1, 9, 9, 9, 0,"
                    " 'aaaaaaaa-0000-0000-0000-000000000001', 2, 2, 2, 1200, 1200, now(), now()) RETURNING id"),
                    {"c": cid})).scalar_one()
                await conn.execute(sa.text(
                    "INSERT INTO order_shot (order_id, position, filter, exposure, quantity, bin, shot_guid, done, accepted)"
                    " VALUES (:o, 0, 'Ha', 600, 2, 1, 'bbbbbbbb-0000-0000-0000-000000000001', 2, 2)"), {"o": oid})
                await conn.execute(sa.text(
                    "INSERT INTO shot_done (order_id, session_guid, shot_done_guid, shot_guid, filter, exposure, bin,"
                    " filename, is_deleted, accepted, ingested_at) VALUES (:o, 's1', 'f1',"
                    " 'bbbbbbbb-0000-0000-0000-000000000001', 'Ha', 600, 1, 'a.fit', false, true, now())"), {"o": oid})
            upgrade_in_thread(url, "0011_mosaic")
            async with eng.begin() as conn:
                row = (await conn.execute(sa.text(
                    "SELECT o.mosaic, s.panel_index, s.quantity, o.target_guid FROM \"order\" o"
                    " JOIN order_shot s ON s.order_id = o.id WHERE o.id = :o"), {"o": oid})).one()
                frames = (await conn.execute(sa.text("SELECT count(*) FROM shot_done WHERE order_id = :o"),
                                             {"o": oid})).scalar_one()
                await conn.execute(sa.text(
                    "INSERT INTO order_panel (order_id, panel_index, \"column\", \"row\", name, ra_j2000, dec_j2000)"
                    " VALUES (:o, 0, 1, 1, 'M42 P1-1', 5.6, -5.0)"), {"o": oid})
            assert tuple(row) == (None, None, 2, "aaaaaaaa-0000-0000-0000-000000000001") and frames == 1
            try:  # one row per panel index
                async with eng.begin() as conn:
                    await conn.execute(sa.text(
                        "INSERT INTO order_panel (order_id, panel_index, \"column\", \"row\", name, ra_j2000, dec_j2000)"
                        " VALUES (:o, 0, 1, 1, 'M42 P1-1', 5.6, -5.0)"), {"o": oid})
                raise AssertionError("a second panel 0 was accepted")
            except sa.exc.IntegrityError:
                pass
        finally:
            await eng.dispose()
