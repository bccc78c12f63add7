"""The new-order chart agrees with the order check (core.ephemeris) and spans the coming night."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from core.ephemeris import check_visibility
from web.sky_chart import night_curves, night_start, render_svg

OHP = {"latitude": 43.9308, "longitude": 5.7133}
LABELS = {k: k for k in ("title", "target", "moon", "alt_min", "observable")}


def test_the_chart_runs_from_the_last_local_noon():
    now = datetime(2026, 1, 15, 3, 0, tzinfo=timezone.utc)
    start = night_start(now, OHP["longitude"])
    assert start <= now < start + timedelta(days=1)
    assert start.hour == 11 and start.day == 14  # 12:00 local mean time ≈ 11:37 UTC at 5.7° E


def test_m42_in_january_is_observable_on_the_chart_and_for_the_order_check():
    now = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
    c = night_curves(5.588, -5.39, alt_min=30.0, moon_down=False, elevation=650.0, now=now, **OHP)
    windows = c.windows()
    assert windows and all(end > begin for begin, end in windows)
    assert 35 < float(c.target.max()) < 42  # culmination 90 − 43.9 − 5.4 ≈ 40.7°
    vis = check_visibility(5.588, -5.39, alt_min=30.0, start=now, end=now + timedelta(days=1), **OHP)
    assert vis.observable and abs(vis.first_time - windows[0][0]) < timedelta(minutes=30)
    svg = render_svg(c, labels=LABELS)
    assert svg.startswith("<svg") and svg.count('class="observable"') == int(c.observable().sum())


def test_a_far_southern_target_has_no_window():
    now = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
    c = night_curves(0.4, -72.08, alt_min=30.0, moon_down=False, elevation=650.0, now=now, **OHP)
    assert c.windows() == [] and float(c.target.max()) < 0
