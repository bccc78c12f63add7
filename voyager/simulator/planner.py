"""Which targets are observable when, and how much of each is wanted tonight.

Constraint rules (docs/voyager-protocol.md §8–§9; letters from ``wire.C_MASK_*``), evaluated on the night's
ephemeris grid (``sky.Night``) by ``core.ephemeris.observable_cells`` — the function the API's
``next_window`` uses too; a grid cell counts as observable only when both of its ends are:

* the sun below −18° (astronomical night) and the target above ``horizon_alt``;
* altitude ≥ ``C_AltMin`` when ``B`` is in ``C_Mask`` or ``C_AltMin`` > 0;
* hour angle ≥ ``C_HAStart`` when ``D`` is in ``C_Mask`` or ``C_HAStart`` ≠ 0, ≤ ``C_HAEnd`` likewise
  with ``E`` (a start after the end means a window across ±12 h);
* moon altitude < 0° when ``C_MoonDown`` is true or ``K`` is in ``C_Mask``;
* inside ``C_DateStart``..``C_DateEnd`` (epoch s, 0 = open).

Other constraints (SQM, moon phase/distance, airmass, time windows) are stored but not enforced.

Repeat rule [C]: ``IsRepeat`` false → the target is imaged on one night only (the first night it
gets a session; what is not done then stays undone). ``IsRepeat`` true → it comes back on later
nights until every shot is done; ``Repeat`` N spreads the work: on each of its first N nights a shot
line takes at most ceil(remaining / nights left) frames. A target aborted by ``RemoteRoboTargetAbort``
is not restarted the same night.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from voyager import wire
from voyager.simulator.faults import Faults
from voyager.simulator.frames import seeded_rng
from voyager.simulator.sky import Constraints, Night, Sky, observable_cells
from voyager.simulator.store import NIGHTS, Store

F, S, SH = wire.TARGET_FIELDS, wire.ADD_SET_PARAMS, wire.ADD_SHOT_PARAMS
TAKEN, ABORTED = "_taken", "_aborted"  # internal target keys: frames taken tonight, night of last abort
_CONSTRAINT_KEYS = ("ra_j2000", "dec_j2000", "c_mask", "alt_min", "ha_start", "ha_end", "moon_down", "date_start", "date_end")


def _num(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


class Planner:
    """Constraint evaluation and nightly quotas over a :class:`Store` (sync; heavy calls run in threads)."""

    def __init__(self, sky: Sky, store: Store, faults: Faults, horizon_alt: float, cloud_probability: float, seed: int) -> None:
        self.sky = sky
        self.store = store
        self.faults = faults
        self.horizon_alt = horizon_alt
        self.cloud_probability = cloud_probability
        self.seed = seed
        self._cells: dict[tuple[float, str], tuple[tuple, np.ndarray]] = {}

    # ------------------------------------------------------------ constraints

    def cells(self, night: Night, target: dict[str, Any]) -> np.ndarray:
        """Boolean per grid cell (len = samples − 1): the target may be imaged during that cell."""
        sig = tuple(target.get(F[k]) for k in _CONSTRAINT_KEYS)
        key = (night.start, target[F["guid"]])
        hit = self._cells.get(key)
        if hit and hit[0] == sig:
            return hit[1]
        cells = observable_cells(self.sky, night, self.constraints(target))
        if len(self._cells) > 2000:
            self._cells = {k: v for k, v in self._cells.items() if k[0] >= night.start}
        self._cells[key] = (sig, cells)
        return cells

    def constraints(self, target: dict[str, Any]) -> Constraints:
        """The target's RoboTarget constraint fields as the ephemeris' :class:`Constraints` (the
        mask letters and non-zero values switch a constraint on, as Voyager reads them)."""
        mask = str(target.get(F["c_mask"]) or "")
        alt_min = _num(target.get(F["alt_min"]))
        ha_start, ha_end = _num(target.get(F["ha_start"])), _num(target.get(F["ha_end"]))
        date_start, date_end = _num(target.get(F["date_start"])), _num(target.get(F["date_end"]))
        return Constraints(
            ra_hours=_num(target.get(F["ra_j2000"])), dec_deg=_num(target.get(F["dec_j2000"])),
            alt_min=alt_min if wire.C_MASK_ALT_MIN in mask or alt_min > 0 else -90.0,
            horizon_alt=self.horizon_alt,
            ha_start=ha_start if wire.C_MASK_HA_START in mask or ha_start != 0 else None,
            ha_end=ha_end if wire.C_MASK_HA_END in mask or ha_end != 0 else None,
            moon_down=_flag(target.get(F["moon_down"])) or wire.C_MASK_MOON_DOWN in mask,
            date_start=date_start if date_start > 0 else None,
            date_end=date_end if date_end > 0 else None,
        )

    def window_ok(self, night: Night, cells: np.ndarray, t0: float, t1: float) -> bool:
        """True when every cell overlapping [t0, t1] is observable and [t0, t1] stays in ``night``."""
        if t0 < night.start or t1 > night.end:
            return False
        i0 = night.index(t0)
        i1 = max(i0, int(math.ceil((t1 - night.start) / night.step)) - 1)
        return bool(cells[i0 : i1 + 1].all()) and i1 < len(cells)

    def could_ever_rise(self, target: dict[str, Any]) -> bool:
        """False when the declination never climbs above the altitude floor from this site."""
        return self.constraints(target).could_ever_rise(self.sky)

    # ------------------------------------------------------------ work left

    def quotas(self, target: dict[str, Any], night_date: str) -> dict[str, int]:
        """Frames each enabled shot line (GUID → count) may still take on ``night_date`` (> 0 only)."""
        nights_before = [d for d in target.get(NIGHTS, []) if d != night_date]
        repeat = _flag(target.get(F["is_repeat"]))
        if nights_before and not repeat:
            return {}
        nights_left = max(int(_num(target.get(F["repeat"]), 1)) - len(nights_before), 1) if repeat else 1
        taken_map = target.get(TAKEN) or {}
        taken = taken_map.get("counts", {}) if taken_map.get("date") == night_date else {}
        out = {}
        for shot in self.store.shots_of(target[F["guid"]]):
            if not _flag(shot.get(SH["enabled"])):
                continue
            remaining = int(shot[SH["num"]]) - int(shot[SH["done"]])
            if remaining <= 0:
                continue
            got = int(taken.get(shot[SH["guid"]], 0))
            left = math.ceil((remaining + got) / nights_left) - got
            if left > 0:
                out[shot[SH["guid"]]] = left
        return out

    def pending(self, t: float, night_date: str) -> list[dict[str, Any]]:
        """Enabled targets of enabled sets with work left tonight, best first (Priority desc, then age)."""
        out = []
        for target in self.store.targets.values():
            if int(_num(target.get(F["status"]))) != 0 or target.get(ABORTED) == night_date:
                continue
            set_ = self.store.sets.get(target.get(F["set_guid"]))
            if set_ is None or int(_num(set_.get(S["status"]))) != 0:
                continue
            date_end = _num(target.get(F["date_end"]))
            if (date_end > 0 and date_end < t) or not self.could_ever_rise(target):
                continue
            if self.quotas(target, night_date):
                out.append(target)
        out.sort(key=lambda tg: (-_num(tg.get(F["priority"])), _num(tg.get(F["date_creation"])), tg[F["guid"]]))
        return out

    @staticmethod
    def record_frame(target: dict[str, Any], night_date: str, shot_guid: str) -> None:
        """Count one accepted frame of ``shot_guid`` towards tonight's quota."""
        taken = target.get(TAKEN) or {}
        if taken.get("date") != night_date:
            taken = {"date": night_date, "counts": {}}
        taken["counts"][shot_guid] = taken["counts"].get(shot_guid, 0) + 1
        target[TAKEN] = taken

    # ------------------------------------------------------------ weather

    def cloud_onset(self, night: Night) -> float | None:
        """When clouds arrive on ``night`` (epoch s), or None for a clear night."""
        if night.dusk is None:
            return None
        if night.date in self.faults.cloudy:
            onset = self.faults.cloudy[night.date]
            return night.dusk if onset is None else max(onset, night.start)
        if self.cloud_probability > 0:
            rng = seeded_rng(self.seed, "clouds", night.date)
            if rng.random() < self.cloud_probability:
                return float(rng.uniform(night.dusk, night.dawn or night.dusk))
        return None
