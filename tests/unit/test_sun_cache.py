"""The feasibility check's sun (core/ephemeris.py): 6-hourly astropy knots on a fixed grid, kept per
32-day block and interpolated, against astropy at every instant — over a year, across block
boundaries, at sites in both hemispheres — and kept, so a second check costs no astropy call."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta

import numpy as np
from astropy import units as u
from astropy.coordinates import AltAz, EarthLocation, get_sun
from astropy.time import Time

from core import ephemeris as eph

YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
#: (latitude, longitude) degrees: Haute-Provence, La Silla, Siding Spring.
SITES = [(43.9308, 5.7133), (-29.2563, -70.7380), (-31.2733, 149.0617)]


def _astropy_sun(times: Time):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_sun(times)


def test_interpolated_sun_is_within_a_hundredth_of_a_degree_of_astropy_over_a_year():
    rng = np.random.default_rng(16)
    offsets = np.sort(rng.uniform(0, 366 * 86400, 1500))
    ra, dec = eph._sun_radec(YEAR_START, float(offsets[-1]), offsets)
    exact = _astropy_sun(Time(YEAR_START) + offsets * u.s)
    ra_error = np.abs((ra - exact.ra.deg + 180.0) % 360.0 - 180.0)  # across RA 0/360
    assert ra_error.max() < 0.01
    assert np.abs(dec - exact.dec.deg).max() < 0.01


def test_a_window_across_block_boundaries_reads_the_same_sun_as_one_inside_a_block():
    block = eph.SUN_BLOCK_DAYS * eph.DAY
    boundary = datetime.fromtimestamp(np.ceil(YEAR_START.timestamp() / block) * block, UTC)
    start = boundary - timedelta(days=3)
    offsets = np.arange(0.0, 6 * 86400, 600.0)
    ra, dec = eph._sun_radec(start, float(offsets[-1]), offsets)
    exact = _astropy_sun(Time(start) + offsets * u.s)
    assert np.abs((ra - exact.ra.deg + 180.0) % 360.0 - 180.0).max() < 0.01
    assert np.abs(dec - exact.dec.deg).max() < 0.01


def test_darkness_from_the_fast_sun_agrees_with_astropy_over_a_year_of_nights_at_three_sites():
    """Sun altitude within 1° (refraction and precession left out, as documented) and the same
    dark / not dark verdict at −18° wherever astropy's sun is more than 1° from it."""
    offsets = np.arange(0.0, 365 * 86400, 3600.0)
    t = Time(YEAR_START) + offsets * u.s
    sun = _astropy_sun(t)
    sun_ra, sun_dec = eph._sun_radec(YEAR_START, float(offsets[-1]), offsets)
    jd = Time(YEAR_START).jd + offsets / 86400.0
    for latitude, longitude in SITES:
        frame = AltAz(obstime=t, location=EarthLocation(lat=latitude * u.deg, lon=longitude * u.deg))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exact = sun.transform_to(frame).alt.deg
        lst = (eph._gmst_hours(jd) + longitude / 15.0) % 24.0
        fast = eph._altitude(latitude, sun_dec, (lst - sun_ra / 15.0 + 12.0) % 24.0 - 12.0)
        assert np.abs(fast - exact).max() < 1.0, (latitude, longitude)
        clear = np.abs(exact - eph.SUN_MAX_ALT) > 1.0
        assert ((fast < eph.SUN_MAX_ALT) == (exact < eph.SUN_MAX_ALT))[clear].all(), (latitude, longitude)


def test_a_second_check_of_the_same_weeks_calls_astropy_for_no_sun():
    start = datetime(2027, 3, 1, 18, tzinfo=UTC)
    kwargs = dict(alt_min=30.0, start=start, end=start + timedelta(days=30), latitude=43.93, longitude=5.71)
    first = eph.check_visibility(5.588, -5.39, **kwargs)
    misses = eph._sun_block.cache_info().misses
    again = eph.check_visibility(5.588, -5.39, **kwargs)
    other_site = eph.check_visibility(10.0, 20.0, **{**kwargs, "latitude": -29.26, "longitude": -70.74})
    assert eph._sun_block.cache_info().misses == misses
    assert again == first and other_site.best_altitude is not None
