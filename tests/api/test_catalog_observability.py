"""Offline catalogue lookup and the fast observability check (against astropy's full transform)."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from api.catalog import UnknownTarget, resolve
from core.ephemeris import check_visibility

OHP = {"latitude": 43.9308, "longitude": 5.7133}


@pytest.mark.parametrize(("name", "canonical", "ra", "dec"), [
    ("M42", "NGC1976", 5.5879, -5.3897),
    ("NGC 7000", "NGC7000", 20.9881, 44.5288),
    ("IC1396", "IC1396", 21.6493, 57.4891),
    ("m 31", "NGC0224", 0.7123, 41.2691),
    ("ngc224", "NGC0224", 0.7123, 41.2691),
])
def test_catalogue_names_resolve_offline(name, canonical, ra, dec):
    entry = resolve(name)
    assert entry.name == canonical
    assert abs(entry.ra_j2000 - ra) < 1e-3 and abs(entry.dec_j2000 - dec) < 1e-3


def test_southern_dec_sign_is_kept_for_small_degrees():
    entry = resolve("IC 434")  # Dec −02°27′: the sign must survive a zero-ish degree field
    assert -2.5 < entry.dec_j2000 < -2.4


@pytest.mark.parametrize("name", ["NGC 99999", "M999", "", "Sh2-155", "M42'; DROP TABLE order;--", "x" * 300])
def test_unknown_names_raise(name):
    with pytest.raises(UnknownTarget):
        resolve(name)


def _astropy_altitudes(ra, dec, times):
    import astropy.units as u
    from astropy.coordinates import AltAz, EarthLocation, SkyCoord, get_sun
    from astropy.time import Time

    t = Time(times)
    loc = EarthLocation(lat=OHP["latitude"] * u.deg, lon=OHP["longitude"] * u.deg, height=650 * u.m)
    frame = AltAz(obstime=t, location=loc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        target = SkyCoord(ra=ra * 15 * u.deg, dec=dec * u.deg).transform_to(frame).alt.deg
        sun = get_sun(t).transform_to(frame).alt.deg
    return target, sun


def test_fast_grid_agrees_with_astropy_within_a_degree():
    from core import ephemeris as obs

    start = datetime(2026, 1, 15, 12, tzinfo=UTC)
    offsets = np.arange(0, 3 * 86400, 1800.0)
    times = [start + timedelta(seconds=float(s)) for s in offsets]
    ra, dec = 5.5879, -5.3897
    exact_target, exact_sun = _astropy_altitudes(ra, dec, times)
    from astropy.time import Time

    lst = (obs._gmst_hours(Time(start).jd + offsets / 86400.0) + OHP["longitude"] / 15.0) % 24.0
    sun_ra, sun_dec = obs._sun_radec(start, float(offsets[-1]), offsets)
    fast_sun = obs._altitude(OHP["latitude"], sun_dec, (lst - sun_ra / 15.0 + 12) % 24 - 12)
    fast_target = obs._altitude(OHP["latitude"], np.full_like(lst, dec), (lst - ra + 12) % 24 - 12)
    # Refraction and precession are left out on purpose: < 1° everywhere that matters.
    assert np.abs(fast_sun - exact_sun).max() < 1.0
    assert np.abs(fast_target - exact_target)[exact_target > 0].max() < 1.0


def test_visibility_of_known_cases():
    jan = datetime(2026, 1, 15, 12, tzinfo=UTC)
    m42 = check_visibility(5.5879, -5.3897, alt_min=30, start=jan, end=jan + timedelta(days=1), **OHP)
    assert m42.observable and 39 < m42.best_altitude < 42
    assert 19 <= m42.first_time.hour <= 22  # M42 passes 30° in the January evening
    assert not check_visibility(5.5879, -5.3897, alt_min=45, start=jan, end=jan + timedelta(days=30), **OHP).observable
    south = check_visibility(6.0, -80.0, alt_min=0, start=jan, end=jan + timedelta(days=365), **OHP)
    assert not south.observable and south.best_altitude < -30
    # In June, M42 is up only in daylight: never observable in the dark.
    june = datetime(2026, 6, 10, tzinfo=UTC)
    assert not check_visibility(5.5879, -5.3897, alt_min=20, start=june, end=june + timedelta(days=7), **OHP).observable
    # An hour-angle window that excludes the meridian passage removes the high part of the night.
    narrow = check_visibility(5.5879, -5.3897, alt_min=38, start=jan, end=jan + timedelta(days=1),
                              ha_start=3.0, ha_end=5.0, **OHP)
    assert not narrow.observable
    assert not check_visibility(1.0, 1.0, alt_min=0, start=jan, end=jan, **OHP).observable
