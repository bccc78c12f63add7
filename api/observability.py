"""Can a target be observed from the site within a date window? Offline astropy, coarse and fast.

A target is observable when, at some sample of the window, the sun is below ``SUN_MAX_ALT`` (dark
enough for RoboTarget to image), the target is above ``c_alt_min`` and, if given, its hour angle is
inside ``c_ha_start…c_ha_end``. The window is sampled on one vectorized grid of at most
``MAX_SAMPLES`` points (≥ 10 min apart). Astropy gives the sun's position at 6-hour knots; altitudes
come from the hour angle with mean sidereal time (J2000 target coordinates, no precession or
refraction: under half a degree, well inside a go/no-go check). About 10 ms per call.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from astropy.utils import iers

iers.conf.auto_download = False  # bundled IERS tables only: never the network at run time
iers.conf.auto_max_age = None

import astropy.units as u  # noqa: E402
from astropy.coordinates import get_sun  # noqa: E402
from astropy.time import Time  # noqa: E402

#: Sun altitude (degrees) below which frames can be taken: nautical twilight, deliberately lenient.
SUN_MAX_ALT = -12.0
MAX_SAMPLES = 4000
MIN_STEP = timedelta(minutes=10)
MAX_WINDOW = timedelta(days=400)
SUN_KNOT = 6 * 3600.0  # seconds between exact sun positions


@dataclass(frozen=True)
class Visibility:
    """``observable``; ``best_altitude``: highest target altitude (degrees) in dark samples, None if
    the window has no darkness; ``first_time``: first dark sample with the target high enough."""

    observable: bool
    best_altitude: float | None
    first_time: datetime | None


def _gmst_hours(jd: np.ndarray) -> np.ndarray:
    """Greenwich mean sidereal time, hours (IAU 1982 linear term; UT1 ≈ UTC, error ≪ 1 min)."""
    return (18.697374558 + 24.06570982441908 * (jd - 2451545.0)) % 24.0


def _sun_radec(start: datetime, span: float, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sun RA/Dec (degrees) at ``offsets`` s after ``start``: astropy at 6-hourly knots, interpolated
    (the sun moves about 1°/day, so the interpolation error is far below the twilight margin)."""
    knots = np.arange(0.0, span + SUN_KNOT + 1e-9, SUN_KNOT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dates past the bundled IERS predictions: harmless here
        sun = get_sun(Time(start) + knots * u.s)
    ra = np.unwrap(np.radians(sun.ra.deg))
    return np.degrees(np.interp(offsets, knots, ra)) % 360.0, np.interp(offsets, knots, sun.dec.deg)


def _altitude(latitude: float, dec_deg: np.ndarray, hour_angle_h: np.ndarray) -> np.ndarray:
    """Altitude (degrees) from latitude, declination (degrees) and hour angle (hours)."""
    lat, dec = math.radians(latitude), np.radians(dec_deg)
    sin_alt = math.sin(lat) * np.sin(dec) + math.cos(lat) * np.cos(dec) * np.cos(np.radians(hour_angle_h * 15.0))
    return np.degrees(np.arcsin(np.clip(sin_alt, -1.0, 1.0)))


def check_visibility(
    ra_hours: float,
    dec_deg: float,
    *,
    alt_min: float,
    start: datetime,
    end: datetime,
    latitude: float,
    longitude: float,
    ha_start: float | None = None,
    ha_end: float | None = None,
) -> Visibility:
    """Whether the target is observable within ``start…end``.

    ``ra_hours``: J2000 hours 0–24; ``dec_deg``, ``alt_min``, ``latitude``, ``longitude`` (east +):
    degrees (site elevation is irrelevant at this precision); ``start``/``end``: aware UTC
    datetimes (the window is cut to ``MAX_WINDOW``); ``ha_start``/``ha_end``: hours −12…12 (a
    window may wrap through ±12).
    """
    end = min(end, start + MAX_WINDOW)
    if end <= start:
        return Visibility(False, None, None)
    span = (end - start).total_seconds()
    step = max(MIN_STEP.total_seconds(), span / MAX_SAMPLES)
    offsets = np.arange(0.0, span + 1e-9, step)
    jd = Time(start).jd + offsets / 86400.0
    lst = (_gmst_hours(jd) + longitude / 15.0) % 24.0
    sun_ra, sun_dec = _sun_radec(start, span, offsets)
    sun_alt = _altitude(latitude, sun_dec, (lst - sun_ra / 15.0 + 12.0) % 24.0 - 12.0)
    hour_angle = (lst - ra_hours + 12.0) % 24.0 - 12.0
    target_alt = _altitude(latitude, np.full_like(hour_angle, dec_deg), hour_angle)
    dark = sun_alt < SUN_MAX_ALT
    if ha_start is not None and ha_end is not None:
        if ha_start <= ha_end:
            dark &= (hour_angle >= ha_start) & (hour_angle <= ha_end)
        else:
            dark &= (hour_angle >= ha_start) | (hour_angle <= ha_end)
    if not dark.any():
        return Visibility(False, None, None)
    best = float(target_alt[dark].max())
    good = np.flatnonzero(dark & (target_alt >= alt_min))
    if good.size == 0:
        return Visibility(False, round(best, 1), None)
    first = start + timedelta(seconds=float(offsets[good[0]]))
    return Visibility(True, round(best, 1), first)
