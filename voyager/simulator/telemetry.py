"""Dashboard telemetry of the simulator: ``ControlData`` and ``WeatherAndSafetyMonitorData`` (docs/voyager-protocol.md §4, §4a).

Built from the simulated state at a simulated time: the mount (``mount.py``) tracks the running
session's target or is parked; sequence times are those of the running session (``SEQSTART`` its
start, ``SEQEND`` its expected end: the frames it still has to take, each ``Exposure`` +
``shot_overhead``; ``SEQREMAIN`` the difference), as ``"HH:MM:SS"`` UTC; the camera's cooler holds
its set point with a power that follows the night's temperature; the focuser's temperature is the
night's temperature and its position follows it (temperature compensation). Every field of §4a is
always present with one type; ``docs/voyager-protocol.md`` ("Dashboard events the simulator sends")
lists them.
"""

from __future__ import annotations

import math
from typing import Any

from voyager import dashboard, wire
from voyager.simulator.config import SimulatorConfig
from voyager.simulator.frames import seeded_rng
from voyager.simulator.mount import Mount, MountState
from voyager.simulator.planner import Planner
from voyager.simulator.scheduler import Scheduler, weather_fields
from voyager.simulator.sky import ASTRO_TWILIGHT, Sky
from voyager.simulator.store import Store

OFF = dashboard.OFF
F, SH = wire.TARGET_FIELDS, wire.ADD_SHOT_PARAMS
#: Camera cooler set point (°C) and ControlData ``CCDSTAT`` 5 = COOLED (§4a).
SET_POINT = -10.0
COOLED = 5
#: Focuser: position at 0 °C (steps) and temperature coefficient (steps per °C).
FOCUS_ZERO, FOCUS_PER_DEGREE = 21000, -18
#: VOYSTAT (§4): 1 idle, 2 run.
IDLE, RUN = 1, 2


class Telemetry:
    """The dashboard readings of one running simulator, from the parts it reads: ``config``
    (``shot_overhead``), ``seed`` (per-night temperature, guiding noise), ``sky``, ``mount``,
    ``store``, ``scheduler`` (the running session) and ``planner`` (quotas, cloud onsets).
    Times are simulated epoch seconds."""

    def __init__(self, config: SimulatorConfig, seed: int, sky: Sky, mount: Mount, store: Store,
                 scheduler: Scheduler, planner: Planner) -> None:
        self.config, self.seed, self.sky, self.mount = config, seed, sky, mount
        self.store, self.scheduler, self.planner = store, scheduler, planner

    def night_temperature(self, t: float) -> float:
        """Ambient temperature (°C) at ``t``: a per-night level, cooling by ~6 °C from evening to dawn."""
        start = self.sky.night_start(t)
        level = 6.0 + float(seeded_rng(self.seed, "temperature", start).normal(0.0, 3.0))
        hours = (t - start) / 3600.0  # 0 at local noon
        return round(level + 4.0 * math.cos(2 * math.pi * (hours - 3.0) / 24.0), 2)

    def tracked(self) -> tuple[float, float] | None:
        """(RA J2000 hours, Dec degrees) of the running session's target; None when idle (parked)."""
        act = self.scheduler.active
        target = self.store.targets.get(act.target_guid) if act else None
        return (float(target[F["ra_j2000"]]), float(target[F["dec_j2000"]])) if target is not None else None

    def sequence_times(self, t: float) -> tuple[float, float] | None:
        """(start, expected end) of the running session, epoch s; None when idle."""
        act = self.scheduler.active
        target = self.store.targets.get(act.target_guid) if act else None
        if act is None or target is None:
            return None
        start = float(act.session[wire.SESSION_ITEM["start"]])
        overhead = self.config.shot_overhead
        left = 0.0
        quotas = self.planner.quotas(target, act.night.date)
        for shot in self.store.shots_of(target[F["guid"]]):
            n = quotas.get(shot[SH["guid"]], 0)
            if act.frame is not None and act.frame.shot_guid == shot[SH["guid"]] and n > 0:
                n -= 1  # the frame in progress counts below, from its own end
            left += n * (float(shot[SH["exposure"]]) + overhead)
        end = (act.frame.end if act.frame is not None else t) + left
        return start, max(end, t)

    def control_data(self, t: float, mount: MountState | None = None) -> dict[str, Any]:
        """``ControlData`` fields at simulated time ``t`` (every §4a field). ``mount``: the mount's state
        at ``t`` if already computed (astropy takes ~10 ms; the server computes it off the event loop)."""
        act = self.scheduler.active
        target = self.store.targets.get(act.target_guid) if act else None
        running = target is not None
        frame = act.frame if act else None
        coords = self.tracked()
        if mount is None or (None if mount.parked else (mount.ra_j2000, mount.dec_j2000)) != coords:
            mount = self.mount.state(t, coords)
        temp = self.night_temperature(t)
        rng = seeded_rng(self.seed, "control", round(t, 1))
        times = self.sequence_times(t)
        name = str(target.get(F["name"], "")) if running else ""
        slewing = running and frame is not None and t - frame.start < min(10.0, self.config.shot_overhead / 3)
        pa = float(target.get(F["pa"]) or 0.0) % 360.0 if running else 0.0
        return {
            "VOYSTAT": RUN if running else IDLE,
            "SETUPCONN": True,
            "RUNSEQ": name,
            "RUNDS": "",
            "SEQNAME": name,
            "SEQSTART": dashboard.clock(times[0]) if times else "",
            "SEQEND": dashboard.clock(times[1]) if times else "",
            "SEQREMAIN": dashboard.duration(times[1] - t) if times else "",
            "CCDCONN": True,
            "CCDTEMP": round(SET_POINT + float(rng.normal(0.0, 0.08)), 1),
            "CCDPOW": int(round(min(100.0, max(5.0, 22.0 + 2.2 * (temp - SET_POINT))))),
            "CCDSETP": SET_POINT,
            "CCDCOOL": True,
            "CCDSTAT": COOLED,
            "MNTCONN": True,
            "MNTPARK": mount.parked,
            "MNTTRACK": mount.tracking,
            "MNTSLEW": bool(slewing),
            "MNTRA": dashboard.hms(mount.ra_now),
            "MNTDEC": dashboard.dms(mount.dec_now),
            "MNTRAJ2000": dashboard.hms(mount.ra_j2000),
            "MNTDECJ2000": dashboard.dms(mount.dec_j2000),
            "MNTAZ": dashboard.dms(mount.az, signed=False),
            "MNTALT": dashboard.dms(mount.alt),
            "MNTPIER": mount.pier,
            "MNTTFLIP": dashboard.duration(mount.time_to_flip),
            "GUIDECONN": True,
            "GUIDESTAT": 2 if running and frame is not None and not slewing else 0,
            "DITHSTAT": 0,
            "GUIDEX": round(float(rng.normal(0.0, 0.3)), 2) if running else 0.0,
            "GUIDEY": round(float(rng.normal(0.0, 0.3)), 2) if running else 0.0,
            "AFCONN": True,
            "AFPOS": int(round(FOCUS_ZERO + FOCUS_PER_DEGREE * temp)),
            "AFTEMP": temp,
            "PLACONN": True,
            "ROTCONN": True,
            "ROTPA": round(pa, 2),
            "ROTSKYPA": round(pa, 2),
            "ROTISROT": False,
        }

    def weather(self, t: float) -> dict[str, Any]:
        """``WeatherAndSafetyMonitorData`` at ``t`` from the cached ephemeris and the cloud model."""
        night = self.sky.cached(t)
        if night is None:
            return weather_fields(True, False, True)
        onset = self.planner.cloud_onset(night)
        cloudy = onset is not None and t >= onset
        dark = bool(night.sun_alt[night.index(t)] < ASTRO_TWILIGHT)
        return weather_fields(not cloudy, cloudy, dark)
