"""Sun and moon altitude at the site, for the demo's display (astropy, bundled IERS data only)."""

from __future__ import annotations

import warnings
from datetime import datetime, timezone
from functools import lru_cache

from astropy.utils import iers

iers.conf.auto_download = False  # never the network at run time
iers.conf.auto_max_age = None

import astropy.units as u  # noqa: E402
from astropy.coordinates import AltAz, EarthLocation, get_body, get_sun  # noqa: E402
from astropy.time import Time  # noqa: E402

from core.settings import SiteSettings  # noqa: E402


@lru_cache(maxsize=4)
def _location(lat: float, lon: float, elev: float) -> EarthLocation:
    return EarthLocation(lat=lat * u.deg, lon=lon * u.deg, height=elev * u.m)


def sun_moon_altitude(site: SiteSettings, when: datetime) -> tuple[float, float]:
    """(sun altitude, moon altitude) in degrees at ``when`` (aware UTC) from ``site``."""
    loc = _location(site.latitude, site.longitude, site.elevation)
    t = Time(when.astimezone(timezone.utc))
    frame = AltAz(obstime=t, location=loc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sun = get_sun(t).transform_to(frame).alt.deg
        moon = get_body("moon", t, loc).transform_to(frame).alt.deg
    return float(sun), float(moon)
