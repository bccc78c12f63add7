"""Revision 0010_telescopes upgrades a database holding orders: one telescope is seeded from the
settings, every existing order points at it with multiplier 1 and keeps every value."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.database import make_engine
from core.migrate import upgrade_in_thread
from core.settings import get_settings
from tests.scratch_db import scratch_database

pytestmark = pytest.mark.asyncio


async def test_upgrade_seeds_the_configured_telescope_and_points_orders_at_it(engine, database_url):
    async with scratch_database(engine, database_url) as url:
        upgrade_in_thread(url, "0009_mail")  # the revision before 0010_telescopes
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
                       requested_integration_seconds, integration_seconds, created_at, updated_at)
                       VALUES (:c, 'nebula', 'held', '', 'M42', 5.58, -5.39, 0, 2, false, 0, 30, 1, 9, 9, 0, 0,
                       40, 0, 0, 12000, 0, now(), now()) RETURNING id"""), {"c": cid})).scalar_one()
            upgrade_in_thread(url, "0010_telescopes")
            async with eng.connect() as conn:
                scopes = (await conn.execute(sa.text(
                    "SELECT id, slug, site_name, latitude, longitude, horizon_alt, filters, voyager_profile, "
                    "price_multiplier, status, focal_length_mm FROM telescope"))).all()
                row = (await conn.execute(sa.text(
                    'SELECT status, cost, credits_held, telescope_id, price_multiplier, assignment_reason '
                    'FROM "order" WHERE id = :o'), {"o": oid})).one()
        finally:
            await eng.dispose()
    s = get_settings()
    [(tid, slug, site, lat, lon, horizon, filters, profile, multiplier, status, focal)] = scopes
    assert (slug, site, lat, lon, horizon) == (s.orders.telescope, s.site.name, s.site.latitude, s.site.longitude,
                                               s.site.horizon_alt)
    assert [f["name"] for f in filters] == s.api.filter_list() and [f["index"] for f in filters] == \
        list(range(len(filters)))
    assert (profile, str(multiplier), status, focal) == (s.voyager.profile_name, "1.0000", "online",
                                                         s.optics.focal_length_mm)
    assert tuple(row) == ("held", 9, 9, tid, 1, "")
