"""The RoboTarget database of the simulator: profiles, sets, targets, shots, runs, sessions, shots done.

Objects are plain dicts. Sets, targets and shots keep the wire parameters they were added with
(docs/voyager-protocol.md §7–§8, names from ``voyager/wire.py``); runs, sessions and shots done are kept in
their returned shapes (§7). The whole store is one JSON document written atomically (temp file +
``os.replace``), so a crash never leaves a half-written state file.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

from voyager import wire

STATE_VERSION = 1
_SET, _TGT, _SHOT = wire.ADD_SET_PARAMS, wire.TARGET_FIELDS, wire.ADD_SHOT_PARAMS
#: Internal (non-wire) keys kept on a target: nights it was imaged on, its frame counter.
NIGHTS, FRAMES = "_nights", "_frames"


class StoreError(Exception):
    """A RoboTarget command cannot be applied; ``ret`` is the ``ParamRet.ret`` text to return."""

    def __init__(self, ret: str) -> None:
        super().__init__(ret)
        self.ret = ret


def _error(reason: str) -> StoreError:
    return StoreError(wire.RET_ERROR_PREFIX + reason)


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


class Store:
    """In-memory RoboTarget objects with JSON persistence to ``path`` (None = memory only)."""

    def __init__(self, path: Path | None, profile_name: str) -> None:
        self.path = Path(path) if path else None
        self.profiles: list[dict[str, Any]] = [
            {"guid": str(uuid.uuid5(uuid.NAMESPACE_URL, profile_name)), "name": profile_name, "isactive": True}
        ]
        self.sets: dict[str, dict[str, Any]] = {}
        self.targets: dict[str, dict[str, Any]] = {}
        self.shots: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.shots_done: dict[str, dict[str, Any]] = {}
        self.clock: float | None = None
        self.dirty = False

    # ------------------------------------------------------------ persistence

    def load(self) -> bool:
        """Read the state file if it exists; returns True when a state was loaded."""
        if not self.path or not self.path.exists():
            return False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{self.path}: not a simulator state file ({exc}); move it away to start afresh") from None
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ValueError(f"{self.path}: unsupported simulator state (expected version {STATE_VERSION})")
        known = {p["name"] for p in data.get("profiles", [])}
        self.profiles = data.get("profiles", []) + [p for p in self.profiles if p["name"] not in known]
        for name in ("sets", "targets", "shots", "runs", "sessions", "shots_done"):
            setattr(self, name, data.get(name, {}))
        self.clock = data.get("clock")
        return True

    def save(self, clock: float | None = None) -> None:
        """Write the whole state atomically (temp file in the same directory, then ``os.replace``)."""
        self.write(self.snapshot(clock))

    def snapshot(self, clock: float | None = None) -> str | None:
        """The state as JSON text (call on the event loop: it reads the live dicts); marks it clean."""
        if clock is not None:
            self.clock = clock
        self.dirty = False
        if not self.path:
            return None
        data = {
            "version": STATE_VERSION,
            "clock": self.clock,
            "profiles": self.profiles,
            "sets": self.sets,
            "targets": self.targets,
            "shots": self.shots,
            "runs": self.runs,
            "sessions": self.sessions,
            "shots_done": self.shots_done,
        }
        return json.dumps(data, separators=(",", ":"))

    def write(self, text: str | None) -> None:
        """Atomically replace the state file with ``text`` (safe to run in a worker thread)."""
        if not self.path or text is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # ------------------------------------------------------------ sets

    def add_set(self, params: dict[str, Any]) -> None:
        guid = str(params.get(_SET["guid"], "")).lower()
        if not guid:
            raise _error("Guid missing")
        if guid in self.sets:
            raise StoreError(wire.RET_DUPLICATE)
        profile = params.get(_SET["profile_name"], "")
        if profile not in {p["name"] for p in self.profiles}:
            raise _error(f"Profile {profile!r} not found")
        self.sets[guid] = {key: params.get(key, "") for key in _SET.values()} | {_SET["guid"]: guid}
        self.sets[guid][_SET["status"]] = int(params.get(_SET["status"], 0) or 0)
        self.dirty = True

    def update_set(self, params: dict[str, Any]) -> None:
        """UpdateSet [C]: the given ``Name``/``Tag``/``Note`` replace the Set's."""
        set_ = self.sets.get(str(params.get(wire.UPDATE_SET_PARAMS["set_guid"]) or "").lower())
        if set_ is None:
            raise StoreError(wire.RET_NOT_FOUND)
        for key in ("name", "tag", "note"):
            wire_key = wire.UPDATE_SET_PARAMS[key]
            if wire_key in params:
                set_[_SET[key]] = str(params[wire_key])
        self.dirty = True

    def remove_set(self, guid: Any) -> list[str]:
        """RemoveSet [C]: the Set, its Targets and their Shots (runs, sessions and shots done stay).
        Returns the GUIDs of the removed Targets."""
        guid = str(guid or "").lower()
        if guid not in self.sets:
            raise StoreError(wire.RET_NOT_FOUND)
        targets = [g for g, t in self.targets.items() if t[_TGT["set_guid"]] == guid]
        for target_guid in targets:
            self.remove_target(target_guid)
        del self.sets[guid]
        self.dirty = True
        return targets

    # ------------------------------------------------------------ targets

    def add_target(self, params: dict[str, Any]) -> None:
        guid = str(params.get(_TGT["guid"], "")).lower()
        if not guid:
            raise _error("GuidTarget missing")
        if guid in self.targets:
            raise StoreError(wire.RET_DUPLICATE)
        if str(params.get(_TGT["set_guid"], "")).lower() not in self.sets:
            raise StoreError(wire.RET_NOT_FOUND)
        target = dict(wire.TARGET_DEFAULTS)
        target.update({k: v for k, v in params.items() if k not in (wire.P_UID, wire.P_MAC)})
        target[_TGT["guid"]] = guid
        target[_TGT["set_guid"]] = str(target[_TGT["set_guid"]]).lower()
        _check_target(target)
        target[NIGHTS], target[FRAMES] = [], 0
        self.targets[guid] = target
        self.dirty = True

    def update_target(self, params: dict[str, Any]) -> None:
        target = self.target(params.get(wire.UPDATE_TARGET_REF))
        changes = {
            k: v
            for k, v in params.items()
            if k not in (wire.P_UID, wire.P_MAC, wire.UPDATE_TARGET_REF, _TGT["guid"], NIGHTS, FRAMES)
        }
        if _TGT["set_guid"] in changes and str(changes[_TGT["set_guid"]]).lower() not in self.sets:
            raise StoreError(wire.RET_NOT_FOUND)
        updated = target | changes
        _check_target(updated)
        target.update(changes)
        self.dirty = True

    def remove_target(self, guid: str) -> None:
        target = self.target(guid)
        del self.targets[target[_TGT["guid"]]]
        for shot_guid in [g for g, s in self.shots.items() if s[_SHOT["target_guid"]] == target[_TGT["guid"]]]:
            del self.shots[shot_guid]
        self.dirty = True

    def target(self, guid: Any) -> dict[str, Any]:
        target = self.targets.get(str(guid or "").lower())
        if target is None:
            raise StoreError(wire.RET_NOT_FOUND)
        return target

    def target_items(self, set_guid: str) -> list[dict[str, Any]]:
        """GetTarget ``list`` (§7 [C]); ``set_guid`` "" = every set."""
        set_guid = (set_guid or "").lower()
        if set_guid and set_guid not in self.sets:
            raise StoreError(wire.RET_NOT_FOUND)
        items = []
        for t in self.targets.values():
            if set_guid and t[_TGT["set_guid"]] != set_guid:
                continue
            item = {w: t.get(_TGT[k]) for k, w in wire.TARGET_ITEM.items()}
            item |= {"tag": t.get(_TGT["tag"], ""), "isrepeat": t.get(_TGT["is_repeat"]), "repeat": t.get(_TGT["repeat"])}
            items.append(item)
        return items

    # ------------------------------------------------------------ shots

    def add_shot(self, params: dict[str, Any]) -> None:
        guid = str(params.get(_SHOT["guid"], "")).lower()
        if not guid:
            raise _error("GuidShot missing")
        if guid in self.shots:
            raise StoreError(wire.RET_DUPLICATE)
        target = self.target(params.get(_SHOT["target_guid"]))
        shot = {key: params.get(key) for key in _SHOT.values()}
        shot |= {_SHOT["guid"]: guid, _SHOT["target_guid"]: target[_TGT["guid"]]}
        try:
            shot[_SHOT["num"]] = int(shot[_SHOT["num"]] or 0)
            shot[_SHOT["exposure"]] = float(shot[_SHOT["exposure"]] or 0)
            shot[_SHOT["filter_index"]] = int(shot[_SHOT["filter_index"]] or 0)
            shot[_SHOT["bin"]] = int(shot[_SHOT["bin"]] or 1)
            shot[_SHOT["order"]] = int(shot[_SHOT["order"]] or 0)
            shot[_SHOT["done"]] = int(shot[_SHOT["done"]] or 0)
        except (TypeError, ValueError):
            raise _error("Invalid shot parameters") from None
        if shot[_SHOT["num"]] < 1 or shot[_SHOT["exposure"]] <= 0:
            raise _error("Num must be >= 1 and Exposure > 0")
        shot[_SHOT["enabled"]] = True if params.get(_SHOT["enabled"]) is None else _flag(params.get(_SHOT["enabled"]))
        self.shots[guid] = shot
        self.dirty = True

    def shots_of(self, target_guid: str) -> list[dict[str, Any]]:
        """The target's shots in ``Order`` (then insertion) order."""
        shots = [s for s in self.shots.values() if s[_SHOT["target_guid"]] == target_guid]
        return sorted(shots, key=lambda s: s[_SHOT["order"]])

    def shot_items(self, target_guid: Any) -> list[dict[str, Any]]:
        """GetShot ``list`` (§7 [C])."""
        target = self.target(target_guid)
        items = []
        for s in self.shots_of(target[_TGT["guid"]]):
            item = {w: s.get(_SHOT[k]) for k, w in wire.SHOT_ITEM.items()}
            item |= {"label": s.get(_SHOT["label"]) or "", "refguidtarget": s[_SHOT["target_guid"]]}
            items.append(item)
        return items

    # ------------------------------------------------------------ enable / disable

    def enable_disable(self, guid: Any, object_type: int, operation: int) -> None:
        guid = str(guid or "").lower()
        enable = int(operation) == wire.OPERATION_ENABLE
        if int(object_type) == wire.OBJECT_SHOT and guid in self.shots:
            self.shots[guid][_SHOT["enabled"]] = enable
        elif int(object_type) == wire.OBJECT_TARGET and guid in self.targets:
            self.targets[guid][_TGT["status"]] = 0 if enable else 1
        elif int(object_type) == wire.OBJECT_SET and guid in self.sets:
            self.sets[guid][_SET["status"]] = 0 if enable else 1
        else:
            raise StoreError(wire.RET_NOT_FOUND)
        self.dirty = True

    # ------------------------------------------------------------ runs, sessions, shots done

    def run_items(self, profile_name: str, days: int, now: float) -> list[dict[str, Any]]:
        """GetRunList ``list``: runs of ``profile_name`` started within ``days`` (≤ 0 = all), oldest first."""
        since = now - days * 86400 if days and days > 0 else float("-inf")
        runs = [
            {w: r[w] for w in wire.RUN_ITEM.values()} | {"profilename": r["profilename"]}
            for r in self.runs.values()
            if (not profile_name or r["profilename"] == profile_name) and r[wire.RUN_ITEM["start"]] >= since
        ]
        return sorted(runs, key=lambda r: r[wire.RUN_ITEM["start"]])

    def session_items(self, run_guid: Any) -> list[dict[str, Any]]:
        run_guid = str(run_guid or "").lower()
        if run_guid not in self.runs:
            raise StoreError(wire.RET_NOT_FOUND)
        sessions = [dict(s) for s in self.sessions.values() if s["refguidrun"] == run_guid]
        return sorted(sessions, key=lambda s: s[wire.SESSION_ITEM["start"]])

    def shot_done_items(self, session_guid: Any) -> list[dict[str, Any]]:
        session_guid = str(session_guid or "").lower()
        if session_guid not in self.sessions:
            raise StoreError(wire.RET_NOT_FOUND)
        key = wire.SHOT_DONE_ITEM["ref_guid_session"]
        done = [dict(d) for d in self.shots_done.values() if d[key] == session_guid]
        return sorted(done, key=lambda d: d[wire.SHOT_DONE_ITEM["taken_at"]])

    def find_shot_done(self, guid: Any, fit_filename: str = "") -> dict[str, Any]:
        """A shot done by GUID, or (GUID empty) by its FIT file name (bare name or full path)."""
        guid = str(guid or "").lower()
        if guid in self.shots_done:
            return self.shots_done[guid]
        if fit_filename:
            name = Path(fit_filename).name
            for d in self.shots_done.values():
                if d[wire.SHOT_DONE_ITEM["filename"]] == name:
                    return d
        raise StoreError(wire.RET_NOT_FOUND)


def _check_target(target: dict[str, Any]) -> None:
    try:
        ra = float(target[_TGT["ra_j2000"]])
        dec = float(target[_TGT["dec_j2000"]])
        int(target[_TGT["priority"]])
    except (TypeError, ValueError):
        raise _error("Invalid target parameters") from None
    if not (0 <= ra < 24 and -90 <= dec <= 90):
        raise _error("Invalid coordinates (RAJ2000 hours 0-24, DECJ2000 degrees -90..90)")
