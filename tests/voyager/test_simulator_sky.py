"""Scheduling against the sky, each case checked against astropy directly in the test (docs/voyager-protocol.md §9)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import AltAz, SkyCoord, get_body, get_sun
from astropy.time import Time

from tests.voyager.test_simulator_night import OHP, add_target_with_shots, history



def night_minutes(evening: datetime) -> tuple[np.ndarray, AltAz, np.ndarray]:
    """Minute grid from ``evening`` 12:00 UTC over 24 h: (epochs, frame, dark mask: sun < −18°)."""
    t = Time(evening) + np.arange(0, 24 * 60) * u.min
    frame = AltAz(obstime=t, location=OHP)
    dark = get_sun(t).transform_to(frame).alt.deg < -18
    return t.unix, frame, dark


def alt_of(ra_hours: float, dec: float, frame: AltAz) -> np.ndarray:
    return SkyCoord(ra=ra_hours * 15 * u.deg, dec=dec * u.deg).transform_to(frame).alt.deg


def alt_at(ra_hours: float, dec: float, epoch: float) -> float:
    t = Time(epoch, format="unix")
    return float(SkyCoord(ra=ra_hours * 15 * u.deg, dec=dec * u.deg).transform_to(AltAz(obstime=t, location=OHP)).alt.deg)


async def test_a_target_below_its_minimum_altitude_all_night_is_not_observed(night_sim, raw_client):
    evening = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    ra, dec = 18.0, 10.0  # rises only near dawn in January; culminates at 56° in summer nights
    epochs, frame, dark = night_minutes(evening)
    alt = alt_of(ra, dec, frame)
    assert alt[dark].max() < 30  # astropy: never 30° up while the sky is dark
    assert (alt[dark] > 16).sum() >= 30  # but above 15° for half an hour before dawn

    sim = await night_sim(start_time=evening)
    c = await raw_client(sim)
    await c.login()
    high, _ = await add_target_with_shots(c, [(0, 20, 300)], name="high", ra=ra, dec=dec, C_Mask="B", C_AltMin=30, Priority=4)
    low, _ = await add_target_with_shots(c, [(0, 20, 300)], name="low", ra=ra, dec=dec, C_Mask="B", C_AltMin=15, Priority=1)
    await sim.run_until(evening + timedelta(days=1))

    sessions = await history(c)
    assert {s["refguidtarget"] for _, s, _ in sessions} == {low}
    frames = [d for _, _, done in sessions for d in done]
    assert frames
    for d in frames:  # each exposure, start and end, satisfies the constraints per astropy
        for t in (d["datetimeshot"], d["datetimeshot"] + d["exposure"]):
            assert alt_at(ra, dec, t) >= 15
            i = int((t - epochs[0]) // 60)
            assert dark[i]


async def test_a_moon_down_target_is_not_observed_on_a_moon_up_night(night_sim, raw_client):
    evening = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)  # full moon on 2026-01-03
    epochs, frame, dark = night_minutes(evening)
    moon = get_body("moon", Time(epochs, format="unix"), OHP).transform_to(frame).alt.deg
    assert moon[dark].min() > 0  # astropy: the moon is up during the whole dark night
    ra, dec = 5.588, -5.39
    assert (alt_of(ra, dec, frame)[dark] > 25).sum() > 120  # M42 itself is well placed

    sim = await night_sim(start_time=evening)
    c = await raw_client(sim)
    await c.login()
    flag, _ = await add_target_with_shots(c, [(0, 10, 300)], name="flag", ra=ra, dec=dec, C_MoonDown=True, Priority=4)
    letter, _ = await add_target_with_shots(c, [(0, 10, 300)], name="letter", ra=ra, dec=dec, C_Mask="BK", Priority=4)
    free, _ = await add_target_with_shots(c, [(0, 3, 300)], name="free", ra=ra, dec=dec, Priority=0)
    await sim.run_until(evening + timedelta(days=1))

    sessions = await history(c)
    assert {s["refguidtarget"] for _, s, _ in sessions} == {free}
    assert sum(len(done) for _, _, done in sessions) == 3


async def test_a_moon_down_target_waits_for_moonset(night_sim, raw_client):
    evening = datetime(2026, 1, 8, 12, 0, tzinfo=UTC)  # waning moon, rising around midnight
    epochs, frame, dark = night_minutes(evening)
    moon = get_body("moon", Time(epochs, format="unix"), OHP).transform_to(frame).alt.deg
    ra, dec = 5.588, -5.39
    sim = await night_sim(start_time=evening)
    c = await raw_client(sim)
    await c.login()
    await add_target_with_shots(c, [(0, 40, 300)], name="dark-only", ra=ra, dec=dec, C_MoonDown=True)
    await sim.run_until(evening + timedelta(days=1))
    frames = [d for _, _, done in await history(c) for d in done]
    assert frames
    for d in frames:
        i = int((d["datetimeshot"] - epochs[0]) // 60)
        assert moon[i] < 0 and moon[min(i + 6, len(moon) - 1)] < 0
    assert (moon[dark] > 0).any()  # the moon did rise during the dark night: the rule was exercised


async def test_the_highest_priority_observable_target_goes_first(night_sim, raw_client):
    sim = await night_sim()
    c = await raw_client(sim)
    await c.login()
    normal, _ = await add_target_with_shots(c, [(0, 2, 300)], name="normal", Priority=2)
    first, _ = await add_target_with_shots(c, [(0, 2, 300)], name="first", Priority=4)
    low, _ = await add_target_with_shots(c, [(0, 2, 300)], name="low", Priority=0)
    await sim.run_until(datetime(2026, 1, 16, 12, 0, tzinfo=UTC))
    assert [s["refguidtarget"] for _, s, _ in await history(c)] == [first, normal, low]


@pytest.mark.filterwarnings("ignore:ERFA function:erfa.ErfaWarning", "ignore:Tried to get polar motions")
def test_the_ephemeris_never_touches_the_network(monkeypatch):
    from astropy.utils.data import conf as data_conf

    from voyager.simulator.sky import Sky

    def refuse(self, address):  # any connection attempt is a download attempt here
        raise AssertionError(f"network access to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    with data_conf.set_temp("allow_internet", False):
        sky = Sky(43.9308, 5.7133, 650.0)
        for when in (datetime(2026, 1, 15, tzinfo=UTC), datetime(2031, 7, 1, tzinfo=UTC)):  # inside and past IERS tables
            night = sky.night(when.timestamp())
            assert night.dusk is not None and night.dawn > night.dusk
            assert np.isfinite(sky.moon_alt(night)).all()
            assert np.isfinite(sky.target_alt(night, 5.588, -5.39)).all()
