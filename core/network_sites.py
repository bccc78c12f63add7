"""The three simulated observatories of the embedded network (``stellar demo``, ``stellar dev
--network``; docs/network.md §5): southern Spain, New Mexico and Chile, at different longitudes and
on both sides of the equator, so that one night's sky differs between them and the southern sky
(e.g. NGC 5139, Dec −47°) is reachable only from Chile.

:func:`ensure_network_telescopes` writes their telescope rows (optics, filters and profile from the
settings, as the seed telescope) unless they exist; the stack then starts, per site, a simulator
on ``voyager.port + offset`` and a ``stellar site-worker`` process.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.settings import Settings


@dataclass(frozen=True)
class NetworkSite:
    """``latitude``/``longitude``: degrees (north, east positive); ``elevation``: metres;
    ``port_offset``: its simulator listens on ``voyager.port + port_offset``."""

    slug: str
    name: str
    site_name: str
    latitude: float
    longitude: float
    elevation: float
    time_zone: str
    port_offset: int


NETWORK_SITES: tuple[NetworkSite, ...] = (
    NetworkSite("spain", "Southern Spain 106", "Southern Spain", 37.2, -2.5, 1700.0, "Europe/Madrid", 0),
    NetworkSite("new-mexico", "New Mexico 106", "New Mexico", 32.9, -105.5, 2200.0, "America/Denver", 1),
    NetworkSite("chile", "Chile 106", "Chile", -30.2, -70.8, 1700.0, "America/Santiago", 2),
)


def site_env(site: NetworkSite, settings: Settings) -> dict[str, str]:
    """The ``STELLAR_SITE__*`` / ``STELLAR_VOYAGER__PORT`` of ``site``'s simulator and site worker."""
    return {
        "STELLAR_SITE__NAME": site.site_name, "STELLAR_SITE__LATITUDE": str(site.latitude),
        "STELLAR_SITE__LONGITUDE": str(site.longitude), "STELLAR_SITE__ELEVATION": str(site.elevation),
        "STELLAR_SITE__TIME_ZONE": site.time_zone,
        "STELLAR_VOYAGER__PORT": str(settings.voyager.port + site.port_offset),
    }


async def ensure_network_telescopes(database_url: str, settings: Settings) -> list[str]:
    """Insert the rows of :data:`NETWORK_SITES` that are missing (an existing row is left as an
    operator may have changed it); returns their slugs."""
    from sqlalchemy import func
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    from core.database import make_engine
    from models.db import Telescope

    optics = settings.optics
    filters = [{"name": f, "index": i} for i, f in enumerate(settings.api.filter_list())]
    engine = make_engine(database_url, 2)
    try:
        async with engine.begin() as conn:
            for s in NETWORK_SITES:
                await conn.execute(pg_insert(Telescope.__table__).values(
                    slug=s.slug, name=s.name, site_name=s.site_name, latitude=s.latitude, longitude=s.longitude,
                    elevation=s.elevation, time_zone=s.time_zone, horizon_alt=settings.site.horizon_alt,
                    aperture_mm=optics.aperture_mm, focal_length_mm=optics.focal_length_mm,
                    sensor_width_px=optics.sensor_width_px, sensor_height_px=optics.sensor_height_px,
                    pixel_size_um=optics.pixel_size_um, filters=filters, voyager_profile=settings.voyager.profile_name,
                    price_multiplier=1, host_share_percent=0, status="online", created_at=func.now(),
                    updated_at=func.now(),
                ).on_conflict_do_nothing(index_elements=["slug"]))
    finally:
        await engine.dispose()
    return [s.slug for s in NETWORK_SITES]
