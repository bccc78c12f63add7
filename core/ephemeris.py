"""The ephemeris of Stellar: sun, moon, twilight and target altitudes from the observatory site.

One module, so that what the API promises (an order's target is observable in its window), what
the simulated telescope does (it images only when the target is observable) and what the demo shows
(the sun and the moon at a frame's time) rest on the same astronomy (docs/voyager-protocol.md §9):

* :data:`ASTRO_TWILIGHT` — darkness means the sun below −18°, for all three;
* :func:`sun_moon_altitude` — sun and moon altitude at one instant (the demo);
* :func:`check_visibility` — a fast go/no-go scan of a whole date window (the API's feasibility
  check): astropy's sun at 6-hour knots (computed once per 32-day block and kept), altitudes from
  hour angles with mean sidereal time, about 1 ms per call once the blocks are kept (astropy's
  ``get_sun`` was most of the former 10–50 ms) for windows up to :data:`MAX_WINDOW`;
* :class:`Sky` / :class:`Night` — one night at a time on a grid (default 3 min), sun, moon and
  target altitudes vectorized and cached (the simulator's scheduler, ``voyager/simulator/sky.py``);
* :class:`Constraints` / :func:`observable_cells` — where on a night's grid a target may be imaged
  under its constraints (altitude minimum, hour-angle window, moon-down, date window): the
  simulator's planner images only there;
* :func:`next_window` — the next such interval from an instant (an order's "when will it run"),
  on the same grids, so the API's promise and the simulated telescope agree;
* :func:`airmass`.

Only astropy's built-in ephemeris and the IERS tables bundled in ``astropy-iers-data`` are used:
downloads are switched off at import (no network at run time). Units: angles in degrees, right
ascension and hour angles in hours (J2000), times as epoch seconds or aware UTC datetimes.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

import numpy as np
from astropy.utils import iers

iers.conf.auto_download = False  # the bundled astropy-iers-data tables only; never the network
iers.conf.auto_max_age = None

import astropy.units as u  # noqa: E402
from astropy.coordinates import AltAz, EarthLocation, SkyCoord, get_body, get_sun  # noqa: E402
from astropy.time import Time  # noqa: E402
from erfa import ErfaWarning  # noqa: E402

# Dates past the bundled tables (a fast clock gets there) only extrapolate UT1 and polar motion:
# harmless at the simulator's precision, so these two warnings are silenced process-wide. Filters
# are installed once here rather than with catch_warnings, which is not thread-safe.
warnings.filterwarnings("ignore", category=ErfaWarning, message=".*dubious year.*")
warnings.filterwarnings("ignore", message=".*(polar motions|IERS).*")

DAY = 86400.0
#: Seconds between ephemeris samples of a night (the simulator's scheduling grid; the API uses the same).
GRID_STEP = 180.0
#: Astronomical twilight: the sun is this far below the horizon (degrees).
ASTRO_TWILIGHT = -18.0


@dataclass
class Night:
    """One night's samples. ``times``: epoch s (``step`` apart, local noon → next local noon).

    ``sun_alt``/``moon_alt``: degrees; ``lst``: local apparent sidereal time, hours.
    ``dusk``/``dawn``: first/last sample with the sun below −18° (None: no astronomical night).
    """

    start: float
    step: float
    date: str
    times: np.ndarray
    sun_alt: np.ndarray
    lst: np.ndarray
    frame: AltAz
    dusk: float | None
    dawn: float | None
    moon_alt: np.ndarray | None = None
    targets: dict[tuple[float, float], np.ndarray] = field(default_factory=dict)

    @property
    def end(self) -> float:
        return self.start + DAY

    def index(self, t: float) -> int:
        """Grid cell holding ``t`` (clamped to the night)."""
        return int(min(max((t - self.start) // self.step, 0), len(self.times) - 2))

    def dark(self) -> np.ndarray:
        return self.sun_alt < ASTRO_TWILIGHT

    def hour_angle(self, ra_hours: float) -> np.ndarray:
        """Hour angle of ``ra_hours`` (J2000, hours) at each sample, hours in [−12, 12)."""
        return (self.lst - ra_hours + 12.0) % 24.0 - 12.0


class Sky:
    """Ephemeris of one site. ``latitude``/``longitude``: degrees (east +); ``elevation``: metres."""

    def __init__(self, latitude: float, longitude: float, elevation: float, step: float = GRID_STEP,
                 keep_nights: int = 8) -> None:
        self.latitude = latitude
        self.longitude = longitude
        self.elevation = elevation
        self.step = step
        self.location = EarthLocation(lat=latitude * u.deg, lon=longitude * u.deg, height=elevation * u.m)
        # Local mean solar noon in UTC seconds of day: nights are cut there, so one night is one run.
        self._noon = (12.0 - longitude / 15.0) * 3600.0
        self._cache: OrderedDict[float, Night] = OrderedDict()
        self._keep = keep_nights
        self._lock = threading.RLock()

    # ------------------------------------------------------------ nights

    def night_start(self, t: float) -> float:
        """Epoch s of the local noon opening the night that contains ``t``."""
        return math.floor((t - self._noon) / DAY) * DAY + self._noon

    def night_date(self, t: float) -> str:
        """``YYYY-MM-DD``: the local date of the evening of the night containing ``t``."""
        noon = self.night_start(t) + self.longitude / 15.0 * 3600.0
        return datetime.fromtimestamp(noon, tz=UTC).strftime("%Y-%m-%d")

    def night(self, t: float) -> Night:
        """The night containing ``t``, computed once and cached (a few nights are kept)."""
        start = self.night_start(t)
        with self._lock:
            night = self._cache.get(start)
            if night is None:
                night = self._compute(start)
                self._cache[start] = night
                while len(self._cache) > self._keep:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(start)
            return night

    def nights(self, t: float, count: int) -> list[Night]:
        """``count`` consecutive nights from the one containing ``t``. Those not cached yet are
        computed together — sun and sidereal time in one vectorized astropy call over all their
        samples (a call has a large fixed cost) — then kept like
        :meth:`night`'s (``count`` must not exceed the nights kept)."""
        first = self.night_start(t)
        starts = [first + k * DAY for k in range(count)]
        with self._lock:
            missing = [s for s in starts if s not in self._cache]
            if missing:
                for night in self._compute_many(missing):
                    self._cache[night.start] = night
            for s in starts:
                self._cache.move_to_end(s)
            while len(self._cache) > max(self._keep, count):
                self._cache.popitem(last=False)
            return [self._cache[s] for s in starts]

    def cached(self, t: float) -> Night | None:
        """The night containing ``t`` if already computed (never computes; cheap on the event loop)."""
        return self._cache.get(self.night_start(t))

    def _compute(self, start: float) -> Night:
        n = int(round(DAY / self.step)) + 1
        times = start + np.arange(n) * self.step
        t = Time(times, format="unix", scale="utc")
        frame = AltAz(obstime=t, location=self.location)
        sun = get_sun(t).transform_to(frame).alt.deg
        lst = t.sidereal_time("apparent", longitude=self.location.lon).hour
        dark = np.nonzero(sun < ASTRO_TWILIGHT)[0]
        dusk = float(times[dark[0]]) if len(dark) else None
        dawn = float(times[dark[-1]]) if len(dark) else None
        return Night(start, self.step, self.night_date(start + 1), times, sun, lst, frame, dusk, dawn)

    def _compute_many(self, starts: list[float]) -> list[Night]:
        n = int(round(DAY / self.step)) + 1
        times = (np.asarray(starts)[:, None] + np.arange(n)[None, :] * self.step).ravel()
        t = Time(times, format="unix", scale="utc")
        frame = AltAz(obstime=t, location=self.location)
        sun = get_sun(t).transform_to(frame).alt.deg
        lst = t.sidereal_time("apparent", longitude=self.location.lon).hour
        out = []
        for k, start in enumerate(starts):
            cut = slice(k * n, (k + 1) * n)
            dark = np.nonzero(sun[cut] < ASTRO_TWILIGHT)[0]
            ts = times[cut]
            out.append(Night(start, self.step, self.night_date(start + 1), ts, sun[cut], lst[cut], frame[cut],
                             float(ts[dark[0]]) if len(dark) else None, float(ts[dark[-1]]) if len(dark) else None))
        return out

    # ------------------------------------------------------------ bodies

    def moon_alt(self, night: Night) -> np.ndarray:
        """Topocentric moon altitude (degrees) at each sample of ``night`` (computed once)."""
        with self._lock:
            if night.moon_alt is None:
                t = night.frame.obstime
                night.moon_alt = get_body("moon", t, self.location).transform_to(night.frame).alt.deg
            return night.moon_alt

    def target_alt(self, night: Night, ra_hours: float, dec_deg: float) -> np.ndarray:
        """Altitude (degrees, refraction ignored) of a J2000 position at each sample of ``night``."""
        self.prepare_targets(night, [(ra_hours, dec_deg)])
        return night.targets[(ra_hours, dec_deg)]

    def prepare_targets(self, night: Night, coords: list[tuple[float, float]]) -> None:
        """Compute, in one vectorized call, the altitudes of the ``(ra_hours, dec_deg)`` not cached yet."""
        with self._lock:
            missing = sorted({c for c in coords if c not in night.targets})
            if not missing:
                return
            ra = np.array([c[0] for c in missing]) * 15.0
            dec = np.array([c[1] for c in missing])
            sky = SkyCoord(ra=ra * u.deg, dec=dec * u.deg, frame="icrs")
            alt = sky[:, None].transform_to(night.frame[None, :]).alt.deg
            for i, c in enumerate(missing):
                night.targets[c] = np.asarray(alt[i])

    def prepare_moon_nights(self, nights: list[Night]) -> None:
        """Compute, in one vectorized call, the moon altitudes of the ``nights`` that lack them (as
        :meth:`moon_alt` would)."""
        with self._lock:
            todo = [n for n in nights if n.moon_alt is None]
            if not todo:
                return
            t = Time(np.concatenate([n.times for n in todo]), format="unix", scale="utc")
            alt = get_body("moon", t, self.location).transform_to(AltAz(obstime=t, location=self.location)).alt.deg
            at = 0
            for n in todo:
                n.moon_alt = np.asarray(alt[at:at + len(n.times)])
                at += len(n.times)

    def prepare_target_nights(self, nights: list[Night], ra_hours: float, dec_deg: float) -> None:
        """Compute, in one vectorized call over all their samples, the altitudes of one J2000
        position on the ``nights`` that do not have it yet (as :meth:`target_alt` would)."""
        key = (ra_hours, dec_deg)
        with self._lock:
            todo = [n for n in nights if key not in n.targets]
            if not todo:
                return
            t = Time(np.concatenate([n.times for n in todo]), format="unix", scale="utc")
            sky = SkyCoord(ra=ra_hours * 15.0 * u.deg, dec=dec_deg * u.deg, frame="icrs")
            alt = sky.transform_to(AltAz(obstime=t, location=self.location)).alt.deg
            at = 0
            for n in todo:
                n.targets[key] = np.asarray(alt[at:at + len(n.times)])
                at += len(n.times)

    def max_altitude(self, dec_deg: float) -> float:
        """Highest altitude a declination ever reaches from this site (degrees, at transit)."""
        return 90.0 - abs(self.latitude - dec_deg)


# ------------------------------------------------------------ constraints on a night's grid


@dataclass(frozen=True)
class Constraints:
    """What a target needs to be imaged. ``ra_hours``: J2000 hours 0–24; ``dec_deg``, ``alt_min``,
    ``horizon_alt``: degrees (``horizon_alt``: the site's floor, whatever ``alt_min``);
    ``ha_start``/``ha_end``: hours −12…12 or None (a start after the end wraps through ±12 h);
    ``moon_down``: the moon below 0°; ``date_start``/``date_end``: epoch s or None (open)."""

    ra_hours: float
    dec_deg: float
    alt_min: float = 0.0
    horizon_alt: float = 0.0
    ha_start: float | None = None
    ha_end: float | None = None
    moon_down: bool = False
    date_start: float | None = None
    date_end: float | None = None

    def could_ever_rise(self, sky: "Sky") -> bool:
        """False when the declination never climbs above the floor from ``sky``'s site."""
        return sky.max_altitude(self.dec_deg) >= max(self.alt_min, self.horizon_alt)


def observable_cells(sky: Sky, night: Night, c: Constraints) -> np.ndarray:
    """Boolean per grid cell of ``night`` (len = samples − 1): the target may be imaged during that
    cell, i.e. at both of its ends the sun is below :data:`ASTRO_TWILIGHT` and every constraint of
    ``c`` holds (docs/voyager-protocol.md §8–§9)."""
    alt = sky.target_alt(night, c.ra_hours, c.dec_deg)
    ok = night.dark() & (alt >= c.horizon_alt) & (alt >= c.alt_min)
    ha = night.hour_angle(c.ra_hours)
    if c.ha_start is not None and c.ha_end is not None and c.ha_start > c.ha_end:
        ok &= (ha >= c.ha_start) | (ha <= c.ha_end)
    else:
        if c.ha_start is not None:
            ok &= ha >= c.ha_start
        if c.ha_end is not None:
            ok &= ha <= c.ha_end
    if c.moon_down:
        ok &= sky.moon_alt(night) < 0.0
    if c.date_start:
        ok &= night.times >= c.date_start
    if c.date_end:
        ok &= night.times <= c.date_end
    return ok[:-1] & ok[1:]


#: Nights :func:`next_window` looks ahead at most (a moon-down target waits at most about a lunation).
MAX_NIGHTS_AHEAD = 45
#: Nights computed per vectorized astropy call while looking ahead (most windows are in the first).
NIGHTS_PER_BATCH = 8


def next_window(sky: Sky, c: Constraints, after: float, *, max_nights: int = MAX_NIGHTS_AHEAD
                ) -> tuple[float, float] | None:
    """The next interval (start, end: epoch s) at or after ``after`` (epoch s) in which the target
    of ``c`` is observable: a run of consecutive :func:`observable_cells`. ``start`` is ``after``
    itself when that falls inside an observable cell (what the simulator's scheduler does), else the
    start of the first observable cell; ``end`` is the end of the run (it never crosses the night's
    local noon). None when no such interval lies within ``max_nights`` nights, before
    ``c.date_end``, or ever (a target that never rises above its floor). Nights and the target's
    altitudes are computed :data:`NIGHTS_PER_BATCH` nights per vectorized call and kept by ``sky``
    (:meth:`Sky.nights`, :meth:`Sky.prepare_target_nights`)."""
    if not c.could_ever_rise(sky):
        return None
    if c.date_start and c.date_start > after:
        after = c.date_start
    t = after
    scanned = 0
    while scanned < max_nights:
        if c.date_end and t > c.date_end:
            return None
        # Tonight alone first (where most windows are), then several nights per call.
        count = min(1 if scanned == 0 else NIGHTS_PER_BATCH, max_nights - scanned)
        batch = sky.nights(t, count)
        sky.prepare_target_nights(batch, c.ra_hours, c.dec_deg)
        if c.moon_down:
            sky.prepare_moon_nights(batch)
        for night in batch:
            if c.date_end and night.start > c.date_end:
                return None
            cells = observable_cells(sky, night, c)
            i = night.index(after) if after > night.start else 0
            good = np.flatnonzero(cells[i:])
            if good.size:
                first = i + int(good[0])
                stop = np.flatnonzero(~cells[first:])
                last = first + (int(stop[0]) if stop.size else len(cells) - first)
                return max(after, night.start + first * night.step), night.start + last * night.step
        scanned += count
        t = batch[-1].end
    return None


def airmass(alt_deg: float) -> float:
    """Plane-parallel airmass, clamped for low altitudes."""
    return 1.0 / math.sin(math.radians(max(alt_deg, 5.0)))


# ------------------------------------------------------------ one instant


@lru_cache(maxsize=4)
def _location(latitude: float, longitude: float, elevation: float) -> EarthLocation:
    return EarthLocation(lat=latitude * u.deg, lon=longitude * u.deg, height=elevation * u.m)


def sun_moon_altitude(when: datetime, *, latitude: float, longitude: float, elevation: float) -> tuple[float, float]:
    """(sun altitude, moon altitude), degrees, at ``when`` (aware datetime) from the site
    (``latitude``/``longitude`` degrees, east +; ``elevation`` metres). The moon is topocentric,
    as in :meth:`Sky.moon_alt`."""
    loc = _location(latitude, longitude, elevation)
    t = Time(when.astimezone(timezone.utc))
    frame = AltAz(obstime=t, location=loc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sun = get_sun(t).transform_to(frame).alt.deg
        moon = get_body("moon", t, loc).transform_to(frame).alt.deg
    return float(sun), float(moon)


# ------------------------------------------------------------ a whole window, fast

#: Sun altitude (degrees) below which frames can be taken: the simulator's darkness, so the API
#: never promises a target the telescope would not image.
SUN_MAX_ALT = ASTRO_TWILIGHT
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


#: Days of sun positions computed per astropy call and kept (:func:`_sun_block`).
SUN_BLOCK_DAYS = 32


@lru_cache(maxsize=128)  # 128 blocks: 11 years of sun positions, a few hundred KiB
def _sun_block(index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sun (epoch s, RA degrees, Dec degrees) at the :data:`SUN_KNOT` knots of block ``index`` —
    ``SUN_BLOCK_DAYS`` days from epoch 0, both ends included — from astropy (apparent, geocentric).
    The sun is the same for every site and target, so the API computes each block once per process
    instead of once per request."""
    per = int(SUN_BLOCK_DAYS * DAY / SUN_KNOT)
    epochs = (index * per + np.arange(per + 1)) * SUN_KNOT
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dates past the bundled IERS predictions: harmless here
        sun = get_sun(Time(epochs, format="unix", scale="utc"))
    return epochs, np.asarray(sun.ra.deg), np.asarray(sun.dec.deg)


def _sun_radec(start: datetime, span: float, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sun RA/Dec (degrees) at ``offsets`` s after ``start``: astropy at 6-hourly knots on a fixed
    grid (kept per :data:`SUN_BLOCK_DAYS` block, :func:`_sun_block`), interpolated (the sun moves
    about 1°/day: the interpolation error is below 0.01°, tests/unit/test_sun_cache.py)."""
    t0 = start.timestamp()
    block = SUN_BLOCK_DAYS * DAY
    blocks = [_sun_block(i) for i in range(math.floor(t0 / block), math.floor((t0 + span) / block) + 1)]
    # Consecutive blocks share their boundary knot: keep it once.
    epochs = np.concatenate([b[0][:-1] for b in blocks[:-1]] + [blocks[-1][0]])
    ra = np.concatenate([b[1][:-1] for b in blocks[:-1]] + [blocks[-1][1]])
    dec = np.concatenate([b[2][:-1] for b in blocks[:-1]] + [blocks[-1][2]])
    at = t0 + offsets
    ra_unwrapped = np.unwrap(np.radians(ra))
    return np.degrees(np.interp(at, epochs, ra_unwrapped)) % 360.0, np.interp(at, epochs, dec)


def _altitude(latitude: float, dec_deg: np.ndarray, hour_angle_h: np.ndarray) -> np.ndarray:
    """Altitude (degrees) from latitude, declination (degrees) and hour angle (hours)."""
    lat, dec = math.radians(latitude), np.radians(dec_deg)
    sin_alt = math.sin(lat) * np.sin(dec) + math.cos(lat) * np.cos(dec) * np.cos(np.radians(hour_angle_h * 15.0))
    return np.degrees(np.arcsin(np.clip(sin_alt, -1.0, 1.0)))


#: Julian date of the Unix epoch (UTC).
_UNIX_EPOCH_JD = 2440587.5


def visibility_grid(start: datetime, end: datetime) -> tuple[float, float, int] | None:
    """The samples :func:`check_visibility` takes in ``start…end`` (aware datetimes): (first sample,
    epoch s; step, s; count), or None for an empty window. The window is cut to :data:`MAX_WINDOW`;
    the step is at least :data:`MIN_STEP`, at most ``span / MAX_SAMPLES`` rounded up to whole minutes,
    and samples sit on multiples of the step since the epoch: the grid — hence the answer — is the
    same for every ``start`` between two samples, which lets callers keep answers
    (api/services/sky_verdicts.py). A window holding no multiple of the step is sampled at its start."""
    end = min(end, start + MAX_WINDOW)
    if end <= start:
        return None
    t0, t1 = start.timestamp(), end.timestamp()
    step = math.ceil(max(MIN_STEP.total_seconds(), (t1 - t0) / MAX_SAMPLES) / 60.0) * 60.0
    first = math.ceil(t0 / step) * step
    if first > t1:
        return t0, step, 1
    return first, step, int((t1 - first) // step) + 1


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
    """Whether the target is observable within ``start…end``: at some sample the sun is below
    :data:`SUN_MAX_ALT`, the target at least ``alt_min`` high and, if given, its hour angle inside
    ``ha_start…ha_end``.

    ``ra_hours``: J2000 hours 0–24; ``dec_deg``, ``alt_min``, ``latitude``, ``longitude`` (east +):
    degrees (site elevation is irrelevant at this precision); ``start``/``end``: aware UTC
    datetimes (the window is cut to ``MAX_WINDOW`` and sampled on at most ``MAX_SAMPLES`` + 1 points,
    at least ``MIN_STEP`` apart, on the fixed grid of :func:`visibility_grid`); ``ha_start``/``ha_end``: hours −12…12 (a window may wrap through
    ±12). Precession and refraction are left out: under half a degree, well inside a go/no-go check.
    """
    grid = visibility_grid(start, end)
    if grid is None:
        return Visibility(False, None, None)
    first_sample, step, samples = grid
    offsets = np.arange(samples) * step
    start = datetime.fromtimestamp(first_sample, UTC)
    jd = first_sample / DAY + _UNIX_EPOCH_JD + offsets / DAY
    lst = (_gmst_hours(jd) + longitude / 15.0) % 24.0
    sun_ra, sun_dec = _sun_radec(start, float(offsets[-1]), offsets)
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
