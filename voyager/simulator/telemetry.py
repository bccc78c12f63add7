"""Dashboard telemetry of the simulator: ``ControlData`` and ``WeatherAndSafetyMonitorData`` (docs/voyager-protocol.md §4).

Built from the scheduler's state at a simulated time. ControlData special numbers: −123456789 = off
(no value), 123456789 = error.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from voyager import wire
from voyager.simulator.scheduler import weather_fields
from voyager.simulator.sky import ASTRO_TWILIGHT

if TYPE_CHECKING:
    from voyager.simulator.server import VoyagerSimulator

OFF = -123456789


def control_data(sim: VoyagerSimulator, t: float) -> dict[str, Any]:
    """``ControlData`` fields at simulated time ``t``."""
    act = sim.scheduler.active
    target = sim.store.targets.get(act.target_guid) if act else None
    running = target is not None
    f = wire.TARGET_FIELDS
    alt = OFF
    if running:
        night = act.night
        alt = round(float(sim.sky.target_alt(night, float(target[f["ra_j2000"]]), float(target[f["dec_j2000"]]))[night.index(t)]), 2)
    remain = ""
    if running and act.frame is not None:
        remain = f"{int(max(act.frame.end - t, 0))} s"
    return {
        "VOYSTAT": 2 if running else 1,
        "SETUPCONN": True,
        "CCDCONN": True,
        "CCDTEMP": round(-10.0 + random.uniform(-0.2, 0.2), 1),
        "CCDPOW": 38 if running else 30,
        "CCDSETP": -10.0,
        "CCDCOOL": True,
        "CCDSTAT": 1 if running and act.frame is not None else 0,
        "MNTCONN": True,
        "MNTPARK": not running,
        "MNTRAJ2000": float(target[f["ra_j2000"]]) if running else OFF,
        "MNTDECJ2000": float(target[f["dec_j2000"]]) if running else OFF,
        "MNTALT": alt,
        "MNTTRACK": running,
        "GUIDECONN": True,
        "GUIDESTAT": 2 if running else 0,
        "GUIDEX": round(random.gauss(0, 0.3), 2) if running else 0,
        "GUIDEY": round(random.gauss(0, 0.3), 2) if running else 0,
        "SEQNAME": str(target.get(f["name"], "")) if running else "",
        "SEQREMAIN": remain,
        "RUNSEQ": str(target.get(f["name"], "")) if running else "",
    }


def weather(sim: VoyagerSimulator, t: float) -> dict[str, Any]:
    """``WeatherAndSafetyMonitorData`` at ``t`` from the cached ephemeris and the cloud model."""
    night = sim.sky.cached(t)
    if night is None:
        return weather_fields(True, False, True)
    onset = sim.planner.cloud_onset(night)
    cloudy = onset is not None and t >= onset
    dark = bool(night.sun_alt[night.index(t)] < ASTRO_TWILIGHT)
    return weather_fields(not cloudy, cloudy, dark)
