"""The altitude chart of the coming night for the new-order page: target, moon, altitude minimum,
twilight, and the window when the target is observable. Server-rendered SVG (no JavaScript).

Every number comes from ``core.ephemeris`` — the sun, moon and target altitudes of a
:class:`~core.ephemeris.Night` and :func:`~core.ephemeris.observable_cells`, the simulated
telescope's own planner — so the chart, the order check and the telescope agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache

import numpy as np

from core.ephemeris import SUN_MAX_ALT, Constraints, Sky, observable_cells

STEP = timedelta(minutes=10)
SPAN = timedelta(hours=24)
WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 640, 240, 36, 24, 8


@dataclass(frozen=True)
class NightCurves:
    """Samples every ``STEP`` from ``start`` (UTC, local noon): altitudes in degrees;
    ``ok[i]``: the target may be imaged between samples ``i`` and ``i + 1``."""

    start: datetime
    target: np.ndarray
    moon: np.ndarray
    sun: np.ndarray
    ok: np.ndarray
    alt_min: float
    moon_down: bool

    def observable(self) -> np.ndarray:
        return self.ok

    def time_at(self, i: int) -> datetime:
        return self.start + i * STEP

    def windows(self) -> list[tuple[datetime, datetime]]:
        """Observable intervals (start, end) within the chart."""
        out, begin = [], None
        for i, flag in enumerate(self.ok):
            if flag and begin is None:
                begin = i
            if not flag and begin is not None:
                out.append((self.time_at(begin), self.time_at(i)))
                begin = None
        if begin is not None:
            out.append((self.time_at(begin), self.time_at(len(self.ok))))
        return out


@lru_cache(maxsize=4)
def _sky(latitude: float, longitude: float, elevation: float) -> Sky:
    # One Sky per site: its nights (sun, sidereal time, moon) are computed once and shared.
    return Sky(latitude, longitude, elevation, step=STEP.total_seconds(), keep_nights=3)


def night_start(now: datetime, longitude: float) -> datetime:
    """The last local mean noon at or before ``now`` (UTC): the chart runs noon to noon, as the
    ephemeris cuts its nights."""
    noon = now.replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(hours=longitude / 15.0)
    while noon > now:
        noon -= timedelta(days=1)
    while noon + timedelta(days=1) <= now:
        noon += timedelta(days=1)
    return noon


def night_curves(ra_hours: float, dec_deg: float, *, alt_min: float, moon_down: bool, latitude: float,
                 longitude: float, elevation: float, horizon_alt: float = 0.0,
                 now: datetime | None = None) -> NightCurves:
    """Altitudes over the night containing ``now`` (default: the present) at the site (``latitude``,
    ``longitude``: degrees; ``elevation``: metres; ``horizon_alt``: degrees, the site's floor), from
    :class:`core.ephemeris.Sky`. ``ra_hours``: J2000 hours; angles in degrees. The chart's minimum
    altitude is the higher of ``alt_min`` and ``horizon_alt``, as the telescope applies it. A first
    call per night costs astropy time (about 0.1–0.5 s; the process's very first ephemeris call also
    reads the IERS tables, a few seconds): call it off the event loop."""
    sky = _sky(latitude, longitude, elevation)
    night = sky.night((now or datetime.now(timezone.utc)).timestamp())
    target = sky.target_alt(night, ra_hours, dec_deg)
    moon = sky.moon_alt(night)
    ok = observable_cells(sky, night, Constraints(ra_hours=ra_hours, dec_deg=dec_deg, alt_min=alt_min,
                                                  horizon_alt=horizon_alt, moon_down=moon_down))
    return NightCurves(datetime.fromtimestamp(night.start, timezone.utc), np.asarray(target), np.asarray(moon),
                       np.asarray(night.sun_alt), np.asarray(ok), max(alt_min, horizon_alt), moon_down)


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
             f'aria-label="{labels["title"]}" class="sky-chart" data-testid="altitude-chart" '
             f'data-moon-down="{str(c.moon_down).lower()}">',
             f"<title>{labels['title']}</title>"]
    for i in range(n):
        sun = c.sun[i]
        fill = "#dfe9f5" if sun > 0 else ("#8a94a6" if sun > SUN_MAX_ALT else "#1d2433")
        parts.append(f'<rect x="{_x(i, n) - w / 2:.1f}" y="{PAD_TOP}" width="{w + 0.5:.1f}" '
                     f'height="{HEIGHT - PAD_TOP - PAD_BOTTOM}" fill="{fill}"/>')
    for i, ok in enumerate(c.observable()):
        if ok:
            parts.append(f'<rect x="{_x(i, n):.1f}" y="{HEIGHT - PAD_BOTTOM - 6}" width="{w + 0.5:.1f}" '
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
