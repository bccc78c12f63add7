"""``core.ephemeris.next_window`` against astropy directly: an independent minute-by-minute scan of
sun, moon and target altitudes (and hour angle) must open and close the window where the grid does,
within one grid step plus the scan's minute."""

from __future__ import annotations

from datetime import UTC, datetime

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import AltAz, SkyCoord, get_body, get_sun
from astropy.time import Time

from core.ephemeris import GRID_STEP, Constraints, Sky, next_window

OHP = (43.9308, 5.7133, 650.0)
M42 = (5.588, -5.39)
TOLERANCE = GRID_STEP + 60.0  # the grid's cell plus the reference scan's minute


@pytest.fixture(scope="module")
def sky() -> Sky:
    return Sky(*OHP, keep_nights=60)


def _epoch(*args) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def reference_mask(sky: Sky, c: Constraints, start: float, hours: float) -> tuple[np.ndarray, np.ndarray]:
    """(times, observable) each minute from ``start``, computed with astropy alone."""
    times = start + np.arange(0.0, hours * 3600.0, 60.0)
    t = Time(times, format="unix", scale="utc")
    frame = AltAz(obstime=t, location=sky.location)
    ok = get_sun(t).transform_to(frame).alt.deg < -18.0
    alt = SkyCoord(ra=c.ra_hours * 15 * u.deg, dec=c.dec_deg * u.deg).transform_to(frame).alt.deg
    ok &= (alt >= c.alt_min) & (alt >= c.horizon_alt)
    if c.moon_down:
        ok &= get_body("moon", t, sky.location).transform_to(frame).alt.deg < 0.0
    if c.ha_start is not None and c.ha_end is not None:
        ha = (t.sidereal_time("apparent", longitude=sky.location.lon).hour - c.ra_hours + 12.0) % 24.0 - 12.0
        ok &= (ha >= c.ha_start) & (ha <= c.ha_end)
    return times, ok


def first_run(times: np.ndarray, ok: np.ndarray) -> tuple[float, float]:
    i = int(np.flatnonzero(ok)[0])
    rest = np.flatnonzero(~ok[i:])
    j = i + int(rest[0]) if rest.size else len(ok)
    return float(times[i]), float(times[j - 1]) + 60.0


def test_window_of_m42_opens_and_closes_where_astropy_says(sky):
    c = Constraints(*M42, alt_min=30.0, horizon_alt=10.0)
    start = _epoch(2026, 1, 15, 16)
    window = next_window(sky, c, start)
    assert window is not None
    ref = first_run(*reference_mask(sky, c, start, 20))
    assert abs(window[0] - ref[0]) <= TOLERANCE and abs(window[1] - ref[1]) <= TOLERANCE
    # Asked from inside the window, it starts now and ends at the same place.
    inside = next_window(sky, c, window[0] + 3600.0)
    assert inside == (window[0] + 3600.0, window[1])


def test_moon_down_waits_for_moonset_as_astropy_computes_it(sky):
    start = _epoch(2026, 1, 24, 16)  # near first quarter: the moon sets around midnight
    free = next_window(sky, Constraints(*M42, alt_min=20.0, horizon_alt=10.0), start)
    c = Constraints(*M42, alt_min=20.0, horizon_alt=10.0, moon_down=True)
    window = next_window(sky, c, start)
    assert free is not None and window is not None
    assert window[0] - free[0] > 3 * 3600  # the moon, not darkness or altitude, opens this window
    ref = first_run(*reference_mask(sky, c, start, 20))
    assert abs(window[0] - ref[0]) <= TOLERANCE and abs(window[1] - ref[1]) <= TOLERANCE


def test_a_circumpolar_target_is_observable_from_dusk_to_dawn(sky):
    c = Constraints(2.53, 85.0, alt_min=30.0, horizon_alt=10.0)  # near Polaris: always ~44° high
    start = _epoch(2026, 1, 15, 12)
    window = next_window(sky, c, start)
    times, ok = reference_mask(sky, c, start, 24)
    dark_from, dark_to = first_run(times, ok)
    assert window is not None
    assert abs(window[0] - dark_from) <= TOLERANCE and abs(window[1] - dark_to) <= TOLERANCE
    night = sky.night(start)
    assert window == (night.dusk, night.dawn)  # the whole astronomical night on the grid


def test_a_target_that_never_rises_has_no_window_and_costs_no_night(sky):
    fresh = Sky(*OHP)
    assert next_window(fresh, Constraints(6.0, -60.0, alt_min=0.0, horizon_alt=10.0), _epoch(2026, 1, 15, 16)) is None
    assert next_window(fresh, Constraints(*M42, alt_min=45.0), _epoch(2026, 1, 15, 16)) is None  # culminates ~40.7°
    assert fresh.cached(_epoch(2026, 1, 15, 16)) is None


def test_hour_angle_and_date_windows_narrow_it(sky):
    start = _epoch(2026, 1, 15, 16)
    c = Constraints(*M42, alt_min=20.0, horizon_alt=10.0, ha_start=-1.0, ha_end=1.0)
    window = next_window(sky, c, start)
    ref = first_run(*reference_mask(sky, c, start, 20))
    assert window is not None
    assert abs(window[0] - ref[0]) <= TOLERANCE and abs(window[1] - ref[1]) <= TOLERANCE
    later = _epoch(2026, 1, 20, 0)
    dated = next_window(sky, Constraints(*M42, alt_min=20.0, horizon_alt=10.0, date_start=later), start)
    assert dated is not None and later <= dated[0] < later + 86400
    assert next_window(sky, Constraints(*M42, alt_min=20.0, date_end=start + 3600), start) is None  # ends in daylight


def test_nights_computed_together_equal_the_simulators_night_by_night():
    """The API batches nights (``Sky.nights``); the simulator computes one at a time (``Sky.night``):
    the samples must be the same numbers, or promise and telescope could part at a threshold."""
    batched, single = Sky(*OHP), Sky(*OHP)
    start = _epoch(2026, 1, 24, 16)
    for night in batched.nights(start, 2):
        batched.prepare_target_nights([night], *M42)
        batched.prepare_moon_nights([night])
        one = single.night(night.start + 1)
        assert np.array_equal(night.times, one.times) and np.array_equal(night.sun_alt, one.sun_alt)
        assert (night.dusk, night.dawn) == (one.dusk, one.dawn)
        assert np.array_equal(night.targets[M42], single.target_alt(one, *M42))
        assert np.array_equal(night.moon_alt, single.moon_alt(one))
