"""Ephemeris for the scheduler: sun, moon and target altitudes and hour angles, one night at a time.

Astropy is accurate but slow, so each night (local noon to local noon) is sampled once on a
coarse grid (``step`` s, default 3 min), vectorized, and cached. Only astropy's built-in ephemeris
and the IERS tables bundled in ``astropy-iers-data`` are used: downloads are switched off here
(docs/voyager-protocol.md §9: "computed with a real ephemeris"; no network at run time).
"""

from __future__ import annotations

import math
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime

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

    def __init__(self, latitude: float, longitude: float, elevation: float, step: float = 180.0) -> None:
        self.latitude = latitude
        self.longitude = longitude
        self.step = step
        self.location = EarthLocation(lat=latitude * u.deg, lon=longitude * u.deg, height=elevation * u.m)
        # Local mean solar noon in UTC seconds of day: nights are cut there, so one night is one run.
        self._noon = (12.0 - longitude / 15.0) * 3600.0
        self._cache: OrderedDict[float, Night] = OrderedDict()
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
                while len(self._cache) > 8:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(start)
            return night

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

    def max_altitude(self, dec_deg: float) -> float:
        """Highest altitude a declination ever reaches from this site (degrees, at transit)."""
        return 90.0 - abs(self.latitude - dec_deg)


def airmass(alt_deg: float) -> float:
    """Plane-parallel airmass, clamped for low altitudes."""
    return 1.0 / math.sin(math.radians(max(alt_deg, 5.0)))
