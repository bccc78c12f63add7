"""Stellar's reader of dashboard events accepts what real Voyager sends (voyager/dashboard.py, §4, §4a)."""

from __future__ import annotations

import pytest

from voyager import dashboard


@pytest.mark.parametrize(("raw", "value"), [
    ("05:35:17", 5 + 35 / 60 + 17 / 3600),
    ("-05° 23' 28\"", -(5 + 23 / 60 + 28 / 3600)),
    ("-00° 30' 00\"", -0.5),
    ("+24 07 00", 24 + 7 / 60),
    ("152° 10' 03\"", 152 + 10 / 60 + 3 / 3600),
    (5.5, 5.5),
    ("12.25", 12.25),
    (-123456789, None),
    (123456789, None),
    ("-123456789", None),
    ("", None),
    ("n/a", None),
    (None, None),
    (True, None),
    ([1], None),
])
def test_numbers_are_read_from_numbers_text_and_sexagesimal(raw, value):
    got = dashboard.number(raw)
    assert got == (pytest.approx(value) if value is not None else None)


def test_formats_round_trip_through_the_reader():
    assert dashboard.hms(5.588) == "05:35:17" and dashboard.number("05:35:17") == pytest.approx(5.588, abs=1 / 7200)
    assert dashboard.dms(-5.39) == "-05° 23' 24\"" and dashboard.dms(152.1675, signed=False) == "152° 10' 03\""
    assert dashboard.dms(0.0001) == "+00° 00' 00\"" and dashboard.duration(-5) == "00:00:00"
    assert dashboard.duration(47 * 60 + 33) == "00:47:33"
    assert dashboard.clock(1768500000) == "18:00:00"


def test_control_data_reads_text_numbers_special_values_and_ignores_the_unknown():
    real = {"Event": "ControlData", "VOYSTAT": 2, "SETUPCONN": True, "SEQNAME": "M42", "SEQREMAIN": "00:47:33",
            "CCDTEMP": -10.1, "CCDSETP": -123456789, "CCDSTAT": 5, "MNTPARK": False, "MNTTRACK": "true",
            "MNTRAJ2000": "05:35:17", "MNTDECJ2000": "-05° 23' 28\"", "MNTALT": 123456789, "MNTAZ": 152.1,
            "MNTPIER": "pierWest", "GUIDESTAT": "2", "SOMETHINGNEW": {"x": 1}}
    snap = dashboard.read_control_data(real)
    assert snap.running and snap.sequence == "M42" and snap.sequence_remaining == pytest.approx(47 * 60 + 33)
    assert snap.ccd_temp == -10.1 and snap.ccd_set_point is None and snap.cooler_state == 5
    assert snap.mount_parked is False and snap.mount_tracking is True and snap.pier == "pierWest"
    assert snap.ra_j2000 == pytest.approx(5.588, abs=1e-3) and snap.dec_j2000 == pytest.approx(-5.391, abs=1e-3)
    assert snap.alt is None and snap.az == 152.1 and snap.guide_status == 2
    # An old-style event with numbers, or an almost empty one, never fails.
    old = dashboard.read_control_data({"VOYSTAT": 1, "MNTRAJ2000": 5.588, "MNTALT": 40.0, "SEQREMAIN": ""})
    assert old.ra_j2000 == 5.588 and old.alt == 40.0 and old.sequence_remaining is None and not old.running
    empty = dashboard.read_control_data({})
    assert empty.voyager_status is None and empty.ra_j2000 is None and empty.sequence is None


def test_weather_reads_safety_and_connection_flags():
    w = dashboard.read_weather({"SMStatus": "UNSAFE", "WSCloud": "CLOUDY", "WSConnected": True, "SMConnected": False})
    assert w.safe is False and w.cloud == "CLOUDY" and w.weather_connected is True and w.safety_connected is False
    assert dashboard.read_weather({"SMStatus": "SAFE"}).safe is True
    blank = dashboard.read_weather({"SMStatus": 3})
    assert blank.safe is None and blank.cloud is None and blank.weather_connected is None


async def test_the_simulator_control_data_reads_back(night_sim):
    sim = await night_sim()
    snap = dashboard.read_control_data(sim.telemetry.control_data(sim.clock.now()))
    assert snap.voyager_status == 1 and snap.mount_parked is True and snap.cooler_state == 5
    assert snap.dec_j2000 == pytest.approx(90.0, abs=0.5)  # parked at the pole
