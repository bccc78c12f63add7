"""The suite's guard against telescopes left online (tests/online_telescopes.py), on a database of
its own: a telescope left online and one taken out of service are named, and put back."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from core.database import make_engine, make_sessionmaker
from models.db import Telescope
from tests.online_telescopes import online_slugs, restore_and_describe
from tests.scratch_db import scratch_database


def _telescope(slug: str, status: str) -> dict:
    return dict(slug=slug, name=f"{slug} 106", site_name="Chile", latitude=-30.2, longitude=-70.8, elevation=1000.0,
                time_zone="America/Santiago", horizon_alt=10.0, aperture_mm=106.0, focal_length_mm=530.0,
                sensor_width_px=6248, sensor_height_px=4176, pixel_size_um=3.76, filters=[{"name": "L", "index": 0}],
                voyager_profile="P.v2y", status=status)


async def test_the_guard_names_a_telescope_left_online_and_one_taken_out_of_service_and_restores_both(
        engine, database_url):
    async with scratch_database(engine, database_url, at_head=True) as url:
        own = make_engine(url, pool_size=1)
        try:
            at_start = await online_slugs(own)
            assert at_start, "the migrated head seeds an online telescope"
            assert await restore_and_describe(own, at_start, "t::clean") is None

            parked, left = sorted(at_start)[0], f"chile-{uuid.uuid4().hex[:6]}"
            table = Telescope.__table__
            async with make_sessionmaker(own)() as s:
                s.add(Telescope(**_telescope(left, "online")))
                await s.commit()
            async with own.begin() as conn:
                await conn.execute(table.update().where(table.c.slug == parked).values(status="maintenance"))

            problem = await restore_and_describe(own, at_start, "tests/x.py::test_leaky")
            assert problem is not None and problem.startswith("tests/x.py::test_leaky ")
            assert f"left telescope(s) {left} online" in problem and f"took telescope(s) {parked} out" in problem
            assert await online_slugs(own) == at_start  # put back: the next test starts clean
            async with own.connect() as conn:
                assert (await conn.execute(sa.select(table.c.status).where(table.c.slug == left))).scalar_one() \
                    == "retired"
        finally:
            await own.dispose()
