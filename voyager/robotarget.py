"""Typed RoboTarget commands over the pool (docs/voyager-protocol.md §4, §7, §8).

Every method borrows a pooled manager-mode connection, sends one command (UID and MAC added by
the connection) and returns pydantic models. GUIDs are chosen by the caller (``workflow.uuid4()``)
so that an activity retried after ``VoyagerConnectionError`` can look the object up first: use
``ensure_set`` / ``ensure_target`` / ``ensure_shot`` for that. Wire names come from ``voyager.wire``.

Errors: VoyagerActionFailed (``ret`` not ``DONE``, e.g. an unknown GUID), VoyagerRejected,
VoyagerTimeout, VoyagerConnectionError (outcome unknown — never re-sent).
"""

from __future__ import annotations

import base64
from typing import Any

from voyager import protocol, wire
from voyager.errors import VoyagerActionFailed
from voyager.pool import VoyagerPool
from voyager.types import (
    FilterConfiguration,
    ProfileInfo,
    RunInfo,
    SessionInfo,
    SetSpec,
    ShotDone,
    ShotInfo,
    ShotSpec,
    TargetInfo,
    TargetSpec,
    target_fields_to_wire,
)


class RoboTarget:
    """RoboTarget API on a started :class:`VoyagerPool`. ``timeout``: seconds per command
    (default: the connection's ``command_timeout``)."""

    def __init__(self, pool: VoyagerPool, *, timeout: float | None = None) -> None:
        self.pool = pool
        self.timeout = timeout

    async def call(self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = None) -> dict[str, Any]:
        """Send ``method`` on a pooled connection and return its ``ParamRet`` (§3)."""
        async with self.pool.connection() as conn:
            result = await conn.send_command(method, params or {}, timeout=timeout or self.timeout)
        return result.param_ret

    async def _list(self, method: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        items = (await self.call(method, params)).get(wire.LIST) or []
        return [i for i in items if isinstance(i, dict)]

    # ------------------------------------------------------------ sets

    async def add_set(self, spec: SetSpec) -> None:
        """``RemoteRoboTargetAddSet``. Raises VoyagerActionFailed (e.g. GUID already stored)."""
        await self.call(wire.M_ADD_SET, spec.to_wire())

    async def ensure_set(self, spec: SetSpec) -> bool:
        """Add the set unless its GUID is already stored. Returns True when it was added now.

        §7 has no "get set" command, so the duplicate is recognised from the add's own answer
        (``ret == wire.RET_DUPLICATE``) [C].
        """
        try:
            await self.add_set(spec)
        except VoyagerActionFailed as exc:
            if _is_duplicate(exc):
                return False
            raise
        return True

    async def update_set(self, set_guid: str, *, name: str | None = None, tag: str | None = None,
                         note: str | None = None) -> None:
        """``RemoteRoboTargetUpdateSet`` [C]: change the named fields of a Set (None = unchanged).
        Its status is changed with :meth:`enable_disable` (``wire.OBJECT_SET``). Raises
        VoyagerActionFailed for an unknown GUID."""
        values = {"set_guid": set_guid, "name": name, "tag": tag, "note": note}
        await self.call(wire.M_UPDATE_SET, wire.to_wire(wire.UPDATE_SET_PARAMS,
                                                        {k: v for k, v in values.items() if v is not None}))

    async def remove_set(self, set_guid: str) -> bool:
        """``RemoteRoboTargetRemoveSet`` [C]: remove a Set with its Targets and their Shots (the
        record of their sessions and frames stays). Returns False when no Set has this GUID (a
        retried removal), True when removed now."""
        try:
            await self.call(wire.M_REMOVE_SET, wire.to_wire(wire.REMOVE_SET_PARAMS, {"set_guid": set_guid}))
        except VoyagerActionFailed as exc:
            if str(exc.param_ret.get(wire.RET, "")) == wire.RET_NOT_FOUND:
                return False
            raise
        return True

    # ------------------------------------------------------------ targets

    async def add_target(self, spec: TargetSpec) -> None:
        """``RemoteRoboTargetAddTarget`` with the full §8 field list."""
        await self.call(wire.M_ADD_TARGET, spec.to_wire())

    async def update_target(self, target_guid: str, **changes: Any) -> None:
        """``RemoteRoboTargetUpdateTarget``: ``changes`` are :class:`TargetSpec` field names
        (``priority=3``, ``enabled=False``, ``date_end=datetime``…). Raises ValueError on an
        unknown name."""
        params = target_fields_to_wire(changes)
        params[wire.UPDATE_TARGET_REF] = target_guid
        await self.call(wire.M_UPDATE_TARGET, params)

    async def remove_target(self, target_guid: str) -> None:
        """``RemoteRoboTargetRemoveTarget``."""
        await self.call(wire.M_REMOVE_TARGET, wire.to_wire(wire.REMOVE_TARGET_PARAMS, {"target_guid": target_guid}))

    async def get_targets(self, set_guid: str = "") -> list[TargetInfo]:
        """``RemoteRoboTargetGetTarget``: targets of ``set_guid`` ("" = every set)."""
        items = await self._list(wire.M_GET_TARGET, wire.to_wire(wire.GET_TARGET_PARAMS, {"set_guid": set_guid}))
        return [TargetInfo.from_wire(i) for i in items]

    async def get_target(self, target_guid: str, set_guid: str = "") -> TargetInfo | None:
        """The target with this GUID, or None."""
        want = target_guid.lower()  # Voyager GUIDs are lower-case (§6); accept either from callers
        return next((t for t in await self.get_targets(set_guid) if t.guid.lower() == want), None)

    async def ensure_target(self, spec: TargetSpec) -> bool:
        """Add the target unless its GUID is already in its set. Returns True when added now."""
        if await self.get_target(spec.guid, spec.set_guid) is not None:
            return False
        try:
            await self.add_target(spec)
        except VoyagerActionFailed as exc:
            if _is_duplicate(exc):
                return False
            raise
        return True

    # ------------------------------------------------------------ shots

    async def add_shot(self, spec: ShotSpec) -> None:
        """``RemoteRoboTargetAddShot``."""
        await self.call(wire.M_ADD_SHOT, spec.to_wire())

    async def get_shots(self, target_guid: str) -> list[ShotInfo]:
        """``RemoteRoboTargetGetShot``: the shot lines of a target, ``done`` = frames taken."""
        items = await self._list(wire.M_GET_SHOT, wire.to_wire(wire.GET_SHOT_PARAMS, {"target_guid": target_guid}))
        return [ShotInfo.from_wire(i) for i in items]

    async def ensure_shot(self, spec: ShotSpec) -> bool:
        """Add the shot unless its GUID is already on its target. Returns True when added now."""
        if any(s.guid.lower() == spec.guid.lower() for s in await self.get_shots(spec.target_guid)):
            return False
        try:
            await self.add_shot(spec)
        except VoyagerActionFailed as exc:
            if _is_duplicate(exc):
                return False
            raise
        return True

    # ------------------------------------------------------------ execution records

    async def get_run_list(self, profile_name: str, days: int = 1) -> list[RunInfo]:
        """``RemoteRoboTargetGetRunList``: scheduler runs of the last ``days`` days."""
        params = wire.to_wire(wire.GET_RUN_LIST_PARAMS, {"profile_name": profile_name, "days": days})
        return [RunInfo.from_wire(i) for i in await self._list(wire.M_GET_RUN_LIST, params)]

    async def get_sessions_by_run(self, run_guid: str, *, session_guid: str | None = None,
                                  target_guid: str | None = None) -> list[SessionInfo]:
        """``RemoteRoboTargetGetSessionListByRun``; only the session ``session_guid`` / the sessions
        of ``target_guid`` when given. A night's run lists every order's sessions, so the filter runs
        on the wire items, before any is decoded (a busy night's watches decoded them all per poll)."""
        params = wire.to_wire(wire.GET_SESSIONS_BY_RUN_PARAMS, {"run_guid": run_guid})
        items = await self._list(wire.M_GET_SESSIONS_BY_RUN, params)
        if session_guid is not None:
            items = [i for i in items if i.get(wire.SESSION_ITEM["guid"]) == session_guid]
        if target_guid is not None:
            items = [i for i in items if i.get(wire.SESSION_ITEM["ref_guid_target"]) == target_guid]
        return [SessionInfo.from_wire(i) for i in items]

    async def get_sessions_for_target(self, target_guid: str, profile_name: str, days: int = 1) -> list[SessionInfo]:
        """Every session of ``target_guid`` in the runs of the last ``days`` days, oldest first."""
        sessions: list[SessionInfo] = []
        for run in await self.get_run_list(profile_name, days):
            sessions += await self.get_sessions_by_run(run.guid, target_guid=target_guid)
        return sorted(sessions, key=lambda s: (s.start is None, s.start))

    async def get_shots_done(self, session_guid: str) -> list[ShotDone]:
        """``RemoteRoboTargetGetShotDoneBySessionList``: frames of a session (``list.done``)."""
        params = wire.to_wire(wire.GET_SHOTS_DONE_PARAMS, {"session_guid": session_guid})
        listing = (await self.call(wire.M_GET_SHOTS_DONE, params)).get(wire.LIST) or {}
        items = listing.get(wire.SHOTS_DONE_KEY, []) if isinstance(listing, dict) else listing
        return [ShotDone.from_wire(i) for i in items if isinstance(i, dict)]

    async def get_shot_jpg(self, shot_done_guid: str, fit_filename: str = "", *, timeout: float | None = None) -> bytes:
        """``RemoteRoboTargetGetShotJpg``: the JPG preview bytes (decoded from Base64, multi-MB)."""
        params = wire.to_wire(
            wire.GET_SHOT_JPG_PARAMS, {"shot_done_guid": shot_done_guid, "fit_filename": fit_filename}
        )
        ret = await self.call(wire.M_GET_SHOT_JPG, params, timeout=timeout)
        return base64.b64decode(ret.get(wire.JPG_DATA, "") or "")

    # ------------------------------------------------------------ control

    async def abort(self, *, target_guid: str = "", set_guid: str = "", target_tag: str = "", set_tag: str = "") -> None:
        """``RemoteRoboTargetAbort``: stop the running session of a target/set ("" = not used)."""
        values = {"target_guid": target_guid, "set_guid": set_guid, "target_tag": target_tag, "set_tag": set_tag}
        await self.call(wire.M_ABORT, wire.to_wire(wire.ABORT_PARAMS, values))

    async def enable_disable(self, object_guid: str, object_type: int, enable: bool) -> None:
        """``RemoteRoboTargetEnableDisableObject``. ``object_type``: ``wire.OBJECT_SHOT`` (0),
        ``OBJECT_TARGET`` (1) or ``OBJECT_SET`` (2)."""
        op = wire.OPERATION_ENABLE if enable else wire.OPERATION_DISABLE
        values = {"object_guid": object_guid, "object_type": object_type, "operation_type": op}
        await self.call(wire.M_ENABLE_DISABLE, wire.to_wire(wire.ENABLE_DISABLE_PARAMS, values))

    # ------------------------------------------------------------ public commands (§4)

    async def get_status(self) -> str:
        """``RemoteGetStatus`` → ``STOPPED``, ``IDLE``, ``RUN``, ``ERRORE``, ``UNDEFINED``, ``WARNING``."""
        return str((await self.call(protocol.M_GET_STATUS)).get(wire.STATUS_KEY, ""))

    async def get_filter_configuration(self) -> dict[str, int]:
        """``RemoteGetFilterConfiguration`` → filter name → FilterIndex (listing number − 1)."""
        return FilterConfiguration.from_wire(await self.call(protocol.M_GET_FILTER_CONFIGURATION)).filters

    async def get_profiles(self) -> list[ProfileInfo]:
        """``RemoteGetVoyagerProfiles`` → profiles (``*.v2y``)."""
        items = (await self.call(protocol.M_GET_PROFILES)).get(wire.LIST) or []
        return [ProfileInfo.from_wire(i) for i in items if isinstance(i, dict)]


def _is_duplicate(exc: VoyagerActionFailed) -> bool:
    ret = str(exc.param_ret.get(wire.RET, ""))
    return ret == wire.RET_DUPLICATE or "already exist" in ret.lower()
