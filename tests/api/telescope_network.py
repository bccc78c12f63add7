"""A telescope network on a database of its own: the seeded telescope (``main``, Haute-Provence, from
the default settings) plus three sites at different latitudes, and an app over it.

The suite shares one PostgreSQL server with every other test: an online telescope in the shared
database would change where their ``any`` orders go, so these tests migrate a scratch database.
Its order ids start far from 1: the Temporal dev server is shared, and ``order-<id>`` workflow ids
must not meet the other suites'.
"""

from __future__ import annotations

import contextlib
import random
from typing import AsyncIterator

import httpx
import sqlalchemy as sa

from api.app import create_app
from core.database import make_engine, make_sessionmaker
from tests.api.conftest import ApiHarness, api_settings, auth, temporal_address
from tests.scratch_db import scratch_database

LRGB = [{"name": n, "index": i} for i, n in enumerate(["L", "R", "G", "B"])]
NARROW = LRGB + [{"name": "Ha", "index": 4}, {"name": "OIII", "index": 5}, {"name": "SII", "index": 6}]


def telescope(slug: str, site_name: str, latitude: float, longitude: float, time_zone: str, **extra) -> dict:
    """An admin create body with a 106 mm refractor and a full-frame camera (3.5° × 2.3° field)."""
    return {"slug": slug, "name": f"{site_name} refractor", "site_name": site_name, "latitude": latitude,
            "longitude": longitude, "elevation": 1000.0, "time_zone": time_zone, "horizon_alt": 15.0,
            "aperture_mm": 106.0, "focal_length_mm": 530.0, "sensor_width_px": 6248, "sensor_height_px": 4176,
            "pixel_size_um": 3.76, "filters": NARROW, "voyager_profile": f"{slug}.v2y", **extra}


SPAIN = telescope("spain", "Sierra de los Filabres", 37.22, -2.55, "Europe/Madrid")
NEW_MEXICO = telescope("new-mexico", "Mayhill", 32.90, -105.53, "America/Denver", filters=LRGB)
CHILE = telescope("chile", "Rio Hurtado", -30.53, -70.85, "America/Santiago", price_multiplier="1.25")


@contextlib.asynccontextmanager
async def network_api(engine, database_url, temporal_env, task_queue, tmp_path) -> AsyncIterator[ApiHarness]:
    """An app over a fresh database migrated to head (seeded telescope ``main`` only)."""
    async with scratch_database(engine, database_url, at_head=True) as url:
        own = make_engine(url)
        try:
            async with own.begin() as conn:
                await conn.execute(sa.text(
                    f'ALTER SEQUENCE order_id_seq RESTART WITH {random.randrange(10**8, 2 * 10**9)}'))
            maker = make_sessionmaker(own)
            settings = api_settings(url, temporal_address(temporal_env), task_queue, tmp_path)
            app = create_app(settings, engine=own, sessionmaker=maker, temporal_client=temporal_env.client)
            async with app.router.lifespan_context(app):
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                             base_url="http://stellar.test") as client:
                    yield ApiHarness(app=app, client=client, settings=settings, sessionmaker=maker, engine=own,
                                     task_queue=task_queue, tmp=tmp_path)
        finally:
            await own.dispose()


async def add_sites(h: ApiHarness, admin_key: str, *bodies: dict) -> None:
    for body in bodies:
        r = await h.client.post("/api/admin/telescopes", json=body, headers=auth(admin_key))
        assert r.status_code == 201, r.text
