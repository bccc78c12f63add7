"""The simulated mount: where it points, pier side and meridian flip, for dashboard events.

While a session runs the mount tracks the target's J2000 position (the RoboTarget ``RAJ2000``/
``DECJ2000``, Voyager protocol §8); otherwise it is parked at the pole (altitude = site latitude,
azimuth 0). Positions come from astropy at the asked time: apparent (JNow) RA/Dec as the mount's
own ``MNTRA``/``MNTDEC``, and altitude/azimuth without refraction, as the scheduler's ephemeris
(``sky.py``) uses them. A German equatorial mount: east of the meridian (hour angle < 0) the tube
is on the west side of the pier (``pierWest``, ``FlipStatus`` 1: before the flip), past the meridian
it has flipped (``pierEast``, ``FlipStatus`` 3).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import astropy.units as u
from astropy.coordinates import TETE, AltAz, EarthLocation, SkyCoord
from astropy.time import Time

#: RemoteMountStatusGetInfo ``FlipStatus`` (§4a): 0/1 before the flip, 2 flipping, 3 after.
FLIP_NONE, FLIP_BEFORE, FLIP_AFTER = 0, 1, 3
PIER_EAST, PIER_WEST = "pierEast", "pierWest"


@dataclass(frozen=True)
class MountState:
    """Pointing at one instant. RA in hours, Dec/alt/az in degrees; ``hour_angle`` hours in
    [−12, 12); ``time_to_flip`` seconds until the meridian (0 once past it or parked)."""

    parked: bool
    tracking: bool
    ra_j2000: float
    dec_j2000: float
    ra_now: float
    dec_now: float
    alt: float
    az: float
    hour_angle: float
    pier: str
    flip_status: int
    time_to_flip: float


class Mount:
    """Mount model of one site. ``latitude``/``longitude``: degrees (east +); ``elevation``: metres."""

    def __init__(self, latitude: float, longitude: float, elevation: float) -> None:
        self.latitude = latitude
        self._memo: OrderedDict[tuple[float, tuple[float, float] | None], MountState] = OrderedDict()
        self._lock = threading.Lock()
        self.location = EarthLocation(lat=latitude * u.deg, lon=longitude * u.deg, height=elevation * u.m)

    def state(self, t: float, target: tuple[float, float] | None) -> MountState:
        """Where the mount points at ``t`` (epoch s): tracking ``target`` = (RA J2000 hours, Dec
        degrees), or parked when None. Remembered per 0.1 s: on a paused or slow clock every
        ControlData and mount query of the same instant reuses one astropy computation (~0.1 s)."""
        key = (round(t, 1), target)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._compute(t, target)
            with self._lock:
                self._memo[key] = hit
                while len(self._memo) > 64:
                    self._memo.popitem(last=False)
        return hit

    def _compute(self, t: float, target: tuple[float, float] | None) -> MountState:
        when = Time(t, format="unix", scale="utc")
        altaz = AltAz(obstime=when, location=self.location)
        if target is None:
            park = SkyCoord(alt=self.latitude * u.deg, az=0.0 * u.deg, frame=altaz)
            icrs = park.icrs
            ra_j2000, dec_j2000 = float(icrs.ra.hour), float(icrs.dec.deg)
            horizontal = park
        else:
            ra_j2000, dec_j2000 = target
            icrs = SkyCoord(ra=ra_j2000 * 15.0 * u.deg, dec=dec_j2000 * u.deg, frame="icrs")
            horizontal = icrs.transform_to(altaz)
        now = icrs.transform_to(TETE(obstime=when, location=self.location))
        lst = float(when.sidereal_time("apparent", longitude=self.location.lon).hour)
        ha = (lst - float(now.ra.hour) + 12.0) % 24.0 - 12.0
        if target is None:
            pier, flip, to_flip = PIER_EAST, FLIP_NONE, 0.0
        elif ha < 0:
            pier, flip, to_flip = PIER_WEST, FLIP_BEFORE, -ha * 3600.0 / 1.0027379
        else:
            pier, flip, to_flip = PIER_EAST, FLIP_AFTER, 0.0
        return MountState(
            parked=target is None, tracking=target is not None, ra_j2000=ra_j2000, dec_j2000=dec_j2000,
            ra_now=float(now.ra.hour), dec_now=float(now.dec.deg), alt=float(horizontal.alt.deg),
            az=float(horizontal.az.deg), hour_angle=ha, pier=pier, flip_status=flip, time_to_flip=to_flip,
        )
