"""Pydantic models of RoboTarget objects crossing the client boundary (docs/voyager-protocol.md §6–§8).

Specs (``SetSpec``, ``TargetSpec``, ``ShotSpec``) go to Voyager through ``to_wire()``; infos
(``TargetInfo``, ``ShotInfo``, ``RunInfo``, ``SessionInfo``, ``ShotDone``) come back through
``from_wire()``. Field names on the wire come from ``voyager/wire.py`` only. Datetimes are aware
UTC; on the wire they are integer epoch seconds with 0 meaning "none" [C].
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from voyager import wire

# ---------------------------------------------------------------- epoch helpers


def to_epoch(value: datetime | None) -> int:
    """Aware datetime → integer epoch seconds; None → 0 (the wire's "none")."""
    if value is None:
        return 0
    if value.tzinfo is None:
        raise ValueError("datetimes sent to Voyager must be timezone-aware")
    return int(value.timestamp())


def from_epoch(value: Any) -> datetime | None:
    """Epoch seconds (int/float/numeric string) → aware UTC datetime; 0, "" or None → None."""
    if value in (None, "", 0, "0"):
        return None
    return datetime.fromtimestamp(float(value), tz=UTC)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- specs (client → Voyager)


class SetSpec(_Model):
    """A RoboTarget Set (§7 ``RemoteRoboTargetAddSet``). ``guid``: lower-case dashed UUID chosen by the caller."""

    guid: str
    name: str
    profile_name: str
    is_default: bool = False
    enabled: bool = True
    tag: str = ""
    note: str = ""

    def to_wire(self) -> dict[str, Any]:
        values = self.model_dump(exclude={"enabled"})
        values["status"] = 0 if self.enabled else 1
        return wire.to_wire(wire.ADD_SET_PARAMS, values)


class TargetSpec(_Model):
    """A RoboTarget Target (§8 ``RemoteRoboTargetAddTarget``), snake_case of the §8 wire fields.

    ``ra_j2000``: hours 0 ≤ RA < 24; ``dec_j2000``: degrees −90…90; ``pa``: degrees; ``alt_min``:
    degrees; ``ha_start``/``ha_end``: hours; ``date_start``/``date_end``: aware UTC or None;
    ``priority``: 0 very low … 4 first; ``c_mask``: constraint letters (B alt min, D/E hour angle,
    K moon down). ``extra_wire``: further §8 fields by wire name, sent as given (overrides).
    """

    guid: str
    set_guid: str
    name: str
    ra_j2000: float = Field(ge=0, lt=24)
    dec_j2000: float = Field(ge=-90, le=90)
    base_sequence_guid: str = ""
    tag: str = ""
    note: str = ""
    date_creation: datetime | None = None
    enabled: bool = True
    status_op: int = 0
    pa: float = 0.0
    priority: int = Field(default=2, ge=0, le=4)
    is_repeat: bool = True
    repeat: int = Field(default=1, ge=1)
    is_finish_actual_exposure: bool = True
    is_cool_set_point: bool = False
    cool_set_point: float = 0
    is_wait_shot: bool = False
    wait_shot: float = 0
    is_guide_time: bool = False
    guide_time: float = 0
    c_mask: str = "BDE"
    alt_min: float = Field(default=30.0, ge=-90, le=90)
    sqm_min: float = 0
    ha_start: float = -3.0
    ha_end: float = 3.0
    date_start: datetime | None = None
    date_end: datetime | None = None
    time_start: float = 0
    time_end: float = 0
    moon_down: bool = False
    moon_phase_min: float = 0
    moon_phase_max: float = 100
    moon_distance_degree: float = 0
    hfd_mean_limit: float = Field(default=0, ge=0)
    max_time_for_day: float = 0
    airmass_min: float = 0
    airmass_max: float = 0
    max_time: float = 0
    extra_wire: dict[str, Any] = Field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """The full §8 parameter dict: §8 neutral defaults overlaid with this spec."""
        params = dict(wire.TARGET_DEFAULTS)
        params.update(target_fields_to_wire(self.model_dump(exclude={"extra_wire"})))
        if self.date_creation is None:
            params[wire.TARGET_FIELDS["date_creation"]] = int(time.time())
        params.update(self.extra_wire)
        return params


def target_fields_to_wire(values: dict[str, Any]) -> dict[str, Any]:
    """snake_case target fields (as in :class:`TargetSpec`) → wire params; datetimes → epoch s.

    ``enabled`` becomes ``Status`` (0 enabled, 1 disabled). Unknown names raise ValueError.
    """
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == "enabled":
            key, value = "status", 0 if value else 1
        if key not in wire.TARGET_FIELDS:
            raise ValueError(f"unknown target field {key!r}")
        if key.startswith("date_"):
            value = to_epoch(value)
        out[wire.TARGET_FIELDS[key]] = value
    return out


class ShotSpec(_Model):
    """One shot line of a target (§7 ``RemoteRoboTargetAddShot``). ``exposure``: seconds; ``num``: frames."""

    guid: str
    target_guid: str
    filter_index: int = Field(ge=0)
    num: int = Field(ge=1)
    exposure: float = Field(gt=0)
    label: str = ""
    bin: int = Field(default=1, ge=1)
    readout_mode: int = 0
    type: int = 0  # 0 light
    speed: int = 0
    gain: int = 0
    offset: int = 0
    order: int = 1
    done: bool = False
    enabled: bool = True

    def to_wire(self) -> dict[str, Any]:
        return wire.to_wire(wire.ADD_SHOT_PARAMS, self.model_dump())


# ---------------------------------------------------------------- infos (Voyager → client)


class _Info(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @classmethod
    def _from(cls, mapping: dict[str, str], item: dict[str, Any]):
        return cls.model_validate(wire.from_wire(mapping, item))


class TargetInfo(_Info):
    """A target as listed by ``RemoteRoboTargetGetTarget`` [C]. ``status`` 0 enabled, 1 disabled."""

    guid: str
    name: str = ""
    set_guid: str = ""
    status: int = 0
    priority: int = 2
    ra_j2000: float = 0.0
    dec_j2000: float = 0.0

    @classmethod
    def from_wire(cls, item: dict[str, Any]) -> TargetInfo:
        return cls._from(wire.TARGET_ITEM, item)


class ShotInfo(_Info):
    """A shot line as listed by ``RemoteRoboTargetGetShot`` [C]. ``done``: frames taken so far."""

    guid: str
    filter_index: int = 0
    num: int = 0
    exposure: float = 0.0
    bin: int = 1
    order: int = 0
    enabled: bool = True
    done: int = 0

    @classmethod
    def from_wire(cls, item: dict[str, Any]) -> ShotInfo:
        return cls._from(wire.SHOT_ITEM, item)


class RunInfo(_Info):
    """One scheduler run (a night) from ``RemoteRoboTargetGetRunList``; ``end`` None while running."""

    guid: str
    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def from_wire(cls, item: dict[str, Any]) -> RunInfo:
        d = wire.from_wire(wire.RUN_ITEM, item)
        return cls(guid=d["guid"], start=from_epoch(d.get("start")), end=from_epoch(d.get("end")))


class SessionInfo(_Info):
    """One session (a sequence run on one target) from ``RemoteRoboTargetGetSessionListByRun``.

    ``result``: 0 running, 1 OK, 2 aborted, 3 error [C]; ``progress``: 0–100 %.
    """

    guid: str
    ref_guid_target: str = ""
    start: datetime | None = None
    end: datetime | None = None
    result: int = 0
    progress: float = 0.0
    exit_text: str = ""

    @classmethod
    def from_wire(cls, item: dict[str, Any]) -> SessionInfo:
        d = wire.from_wire(wire.SESSION_ITEM, item)
        d["start"] = from_epoch(d.get("start"))
        d["end"] = from_epoch(d.get("end"))
        return cls.model_validate(d)

    @property
    def finished(self) -> bool:
        return self.result != wire.SESSION_RUNNING


class ShotDone(_Info):
    """One acquired frame from ``RemoteRoboTargetGetShotDoneBySessionList`` (§7).

    ``exposure``: seconds; ``hfd``: pixels; ``min``/``max``/``mean``: ADU; ``taken_at``: aware UTC;
    ``is_deleted``: rejected (e.g. above ``C_HFDMeanLimit``).
    """

    guid: str
    ref_guid_session: str = ""
    ref_guid_shot: str = ""
    filename: str = ""
    path: str = ""
    filter_index: int = 0
    exposure: float = 0.0
    bin: int = 1
    hfd: float = 0.0
    star_index: float = 0.0
    min: float = 0.0
    max: float = 0.0
    mean: float = 0.0
    taken_at: datetime | None = None
    is_deleted: bool = False

    @classmethod
    def from_wire(cls, item: dict[str, Any]) -> ShotDone:
        d = wire.from_wire(wire.SHOT_DONE_ITEM, item)
        d["taken_at"] = from_epoch(d.get("taken_at"))
        return cls.model_validate(d)


class ProfileInfo(_Info):
    """A Voyager profile (``*.v2y``) from ``RemoteGetVoyagerProfiles`` (§4)."""

    guid: str = ""
    name: str
    is_active: bool = False

    @classmethod
    def from_wire(cls, item: dict[str, Any]) -> ProfileInfo:
        return cls._from(wire.PROFILE_ITEM, item)


class FilterConfiguration(_Info):
    """Filter wheel names → ``FilterIndex`` (0-based; Voyager lists them 1-based, §4)."""

    filters: dict[str, int]

    @classmethod
    def from_wire(cls, param_ret: dict[str, Any]) -> FilterConfiguration:
        count = int(param_ret.get(wire.FILTER_NUM, 0) or 0)
        names = {}
        for number in range(1, count + 1):
            name = param_ret.get(wire.filter_name_key(number))
            if name:
                names[str(name)] = number - 1
        return cls(filters=names)

    def index_of(self, name: str) -> int:
        """FilterIndex of ``name`` (case-insensitive), else the §8 fallback table; KeyError if unknown."""
        for table in (self.filters, wire.FILTER_FALLBACK):
            for key, index in table.items():
                if key.lower() == name.lower():
                    return index
        raise KeyError(name)


class ActionResult(_Info):
    """Outcome of one command (§3): ``result_code`` is ActionResultInt, None when the command has
    no ``RemoteActionResult`` (only the immediate reply was awaited); ``param_ret``: ``ParamRet``."""

    uid: str
    result_code: int | None = None
    motivo: str = ""
    param_ret: dict[str, Any] = Field(default_factory=dict)
    reply: dict[str, Any] = Field(default_factory=dict)


class VoyagerEvent(_Info):
    """A dashboard/status event (§4): ``name`` = ``Event``, ``timestamp`` epoch s, ``data`` = whole message."""

    name: str
    timestamp: float = 0.0
    host: str = ""
    inst: int = 1
    data: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_message(cls, msg: dict[str, Any]) -> VoyagerEvent:
        try:
            ts = float(msg.get("Timestamp") or 0.0)
        except (TypeError, ValueError):
            ts = 0.0
        return cls(name=str(msg.get("Event", "")), timestamp=ts, host=str(msg.get("Host", "")),
                   inst=int(msg.get("Inst", 1) or 1), data=msg)
