"""Revision 0008_customer_sets upgrades a database holding orders at 0007_web: each customer's
default Set (until now only ``order.set_guid``) becomes a ``customer_set`` row, already in Voyager
(synced); the orders keep every value and ``set_id`` NULL (= the default Set)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.database import make_engine
from core.migrate import upgrade_in_thread
from models.customer_sets import default_set_guid
from tests.scratch_db import scratch_database

pytestmark = pytest.mark.asyncio

_ORDER = """INSERT INTO "order" (customer_id, plan, status, status_reason, target_name, ra_j2000, dec_j2000,
   pa, priority, c_moon_down, c_hfd_mean_limit, c_alt_min, repeat, cost, credits_held, credits_captured,
   credits_refunded, shots_total, shots_done, frames_accepted, requested_integration_seconds,
   integration_seconds, set_guid, created_at, updated_at)
   VALUES (:c, 'quasar', :status, '', 'M42', 5.58, -5.39, 0, 2, true, 0, 30, 1, 3, 3, 0, 0, 1, 0, 0, 60, 0,
   :g, now(), now()) RETURNING id"""


async def test_default_sets_of_existing_orders_become_rows(engine, database_url):
    async with scratch_database(engine, database_url) as url:
        upgrade_in_thread(url, "0007_web")  # the revision before 0008_customer_sets
        eng = make_engine(url)
        try:
            async with eng.begin() as conn:
                ids = []
                for email in ("a@example.com", "b@example.com", "c@example.com"):
                    ids.append((await conn.execute(sa.text(
                        "INSERT INTO customer (email, name, created_at) VALUES (:e, '', now()) RETURNING id"),
                        {"e": email})).scalar_one())
                a, b, c = ids
                orders = [
                    (await conn.execute(sa.text(_ORDER), {"c": a, "status": "submitted", "g": default_set_guid(a)})).scalar_one(),
                    (await conn.execute(sa.text(_ORDER), {"c": a, "status": "completed", "g": default_set_guid(a)})).scalar_one(),
                    (await conn.execute(sa.text(_ORDER), {"c": b, "status": "pending", "g": None})).scalar_one(),
                ]
            upgrade_in_thread(url, "0008_customer_sets")
            async with eng.connect() as conn:
                sets = (await conn.execute(sa.text(
                    "SELECT customer_id, guid, name, tag, is_default, paused, version, synced_version, deleted_at "
                    "FROM customer_set ORDER BY customer_id"))).all()
                kept = (await conn.execute(sa.text(
                    'SELECT status, set_guid, set_id FROM "order" WHERE id = ANY(:ids) ORDER BY id'),
                    {"ids": orders})).all()
            # Customer b never reached Voyager (no set_guid yet), c never ordered: no row for them.
            assert [tuple(r) for r in sets] == [
                (a, default_set_guid(a), f"User_{a}", f"user_{a}", True, False, 1, 1, None)]
            assert [tuple(r) for r in kept] == [
                ("submitted", default_set_guid(a), None), ("completed", default_set_guid(a), None),
                ("pending", None, None)]
            assert c not in {r[0] for r in sets}
            async with eng.begin() as conn:  # one default per customer, one live name per customer
                with pytest.raises(sa.exc.IntegrityError):
                    await conn.execute(sa.text(
                        "INSERT INTO customer_set (customer_id, guid, name, tag, is_default, paused, version, "
                        "synced_version, created_at, updated_at) VALUES (:c, 'x', 'Other', 'user', true, false, "
                        "1, 0, now(), now())"), {"c": a})
        finally:
            await eng.dispose()
