"""The altitude chart of the coming night for the new-order page: target, moon, altitude minimum,
twilight, and the window when the target is observable. Server-rendered SVG (no JavaScript).

Positions come from astropy (``AltAz`` at the site; sun and moon from its built-in ephemeris, no
download: ``core.ephemeris`` switches IERS downloads off). Darkness is the sun below
``core.ephemeris.SUN_MAX_ALT`` — the threshold the order check uses, so the chart and the
refusal agree.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from core.ephemeris import SUN_MAX_ALT  # also turns IERS downloads off before astropy is used

import astropy.units as u  # noqa: E402
from astropy.coordinates import AltAz, EarthLocation, SkyCoord, get_body, get_sun  # noqa: E402
from astropy.time import Time  # noqa: E402

STEP = timedelta(minutes=10)
SPAN = timedelta(hours=24)
WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 640, 240, 36, 24, 8


@dataclass(frozen=True)
class NightCurves:
    """Samples every ``STEP`` from ``start`` (UTC): altitudes in degrees."""

    start: datetime
    target: np.ndarray
    moon: np.ndarray
    sun: np.ndarray
    alt_min: float
    moon_down: bool

    def observable(self) -> np.ndarray:
        ok = (self.sun < SUN_MAX_ALT) & (self.target >= self.alt_min)
        if self.moon_down:
            ok &= self.moon < 0.0
        return ok

    def time_at(self, i: int) -> datetime:
        return self.start + i * STEP

    def windows(self) -> list[tuple[datetime, datetime]]:
        """Observable intervals (start, end) within the chart."""
        ok, out, begin = self.observable(), [], None
        for i, flag in enumerate(ok):
            if flag and begin is None:
                begin = i
            if not flag and begin is not None:
                out.append((self.time_at(begin), self.time_at(i)))
                begin = None
        if begin is not None:
            out.append((self.time_at(begin), self.time_at(len(ok) - 1)))
        return out


def night_start(now: datetime, longitude: float) -> datetime:
    """The last local mean noon at or before ``now`` (UTC): the chart runs noon to noon."""
    noon = now.replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(hours=longitude / 15.0)
    while noon > now:
        noon -= timedelta(days=1)
    while noon + timedelta(days=1) <= now:
        noon += timedelta(days=1)
    return noon


def night_curves(ra_hours: float, dec_deg: float, *, alt_min: float, moon_down: bool, latitude: float,
                 longitude: float, elevation: float, now: datetime | None = None) -> NightCurves:
    """Altitudes over the coming night. ``ra_hours``: J2000 hours; angles in degrees; ``elevation``:
    metres. About 0.1 s (astropy), so call it off the event loop."""
    start = night_start(now or datetime.now(timezone.utc), longitude)
    n = int(SPAN / STEP) + 1
    times = Time(start) + np.arange(n) * STEP.total_seconds() * u.s
    frame = AltAz(obstime=times, location=EarthLocation(lat=latitude * u.deg, lon=longitude * u.deg,
                                                        height=elevation * u.m))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dates past the bundled IERS tables: harmless at chart precision
        target = SkyCoord(ra=ra_hours * 15.0 * u.deg, dec=dec_deg * u.deg).transform_to(frame).alt.deg
        moon = get_body("moon", times).transform_to(frame).alt.deg
        sun = get_sun(times).transform_to(frame).alt.deg
    return NightCurves(start, np.asarray(target), np.asarray(moon), np.asarray(sun), alt_min, moon_down)


def _x(i: int, n: int) -> float:
    return PAD_LEFT + (WIDTH - PAD_LEFT - 4) * i / (n - 1)


def _y(alt: float) -> float:
    return PAD_TOP + (HEIGHT - PAD_TOP - PAD_BOTTOM) * (1 - max(0.0, min(90.0, alt)) / 90.0)


def _polyline(values: np.ndarray) -> str:
    n = len(values)
    return " ".join(f"{_x(i, n):.1f},{_y(float(v)):.1f}" for i, v in enumerate(values))


def render_svg(c: NightCurves, *, labels: dict[str, str]) -> str:
    """The chart as an inline ``<svg>``. ``labels``: translated ``title``, ``target``, ``moon``,
    ``alt_min``, ``observable``. Day is light, twilight grey, darkness dark; green = observable."""
    n = len(c.target)
    w = (WIDTH - PAD_LEFT - 4) / (n - 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{labels["title"]}" class="sky-chart" data-testid="altitude-chart">',
             f"<title>{labels['title']}</title>"]
    for i in range(n):
        sun = c.sun[i]
        fill = "#dfe9f5" if sun > 0 else ("#8a94a6" if sun > SUN_MAX_ALT else "#1d2433")
        parts.append(f'<rect x="{_x(i, n) - w / 2:.1f}" y="{PAD_TOP}" width="{w + 0.5:.1f}" '
                     f'height="{HEIGHT - PAD_TOP - PAD_BOTTOM}" fill="{fill}"/>')
    for i, ok in enumerate(c.observable()):
        if ok:
            parts.append(f'<rect x="{_x(i, n) - w / 2:.1f}" y="{HEIGHT - PAD_BOTTOM - 6}" width="{w + 0.5:.1f}" '
                         f'height="6" fill="#3fbf5f" class="observable"/>')
    for alt in (0, 30, 60, 90):
        parts.append(f'<text x="2" y="{_y(alt) + 4:.1f}" font-size="10" fill="#333">{alt}°</text>')
    for i in range(0, n, 18):  # every 3 h
        t = c.time_at(i)
        parts.append(f'<text x="{_x(i, n) - 12:.1f}" y="{HEIGHT - 6}" font-size="10" fill="#333">'
                     f"{t:%H:%M}</text>")
    parts.append(f'<line x1="{PAD_LEFT}" x2="{WIDTH - 4}" y1="{_y(c.alt_min):.1f}" y2="{_y(c.alt_min):.1f}" '
                 f'stroke="#e05050" stroke-dasharray="6 4"><title>{labels["alt_min"]}</title></line>')
    parts.append(f'<polyline points="{_polyline(c.moon)}" fill="none" stroke="#f0e0a0" stroke-width="2" '
                 f'stroke-dasharray="4 3"><title>{labels["moon"]}</title></polyline>')
    parts.append(f'<polyline points="{_polyline(c.target)}" fill="none" stroke="#5fb0ff" stroke-width="3">'
                 f'<title>{labels["target"]}</title></polyline>')
    parts.append("</svg>")
    return "".join(parts)
