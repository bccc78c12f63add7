"""Command handling of the simulator: immediate reply, then the UID-matched ``RemoteActionResult``.

docs/voyager-protocol.md §3–§5 and §7: every command gets ``{"jsonrpc":"2.0","result":0,"id":N}`` at once
(unknown methods: error −32601), then a ``RemoteActionResult`` to the requesting client only
(except ``Abort``). RoboTarget commands first have their ``MAC`` checked against the very request
(ActionResultInt 5, ``ParamRet.ret`` "ERROR : MAC Error" on mismatch), then need manager mode, then
answer ``ret`` "DONE" (ActionResultInt 4) or ``ret`` "ERROR : …" (ActionResultInt 5).
``RemoteActionAbort`` cancels a command still in flight (e.g. delayed by a fault): that UID then
gets ActionResultInt 7; with nothing in flight the result is 4. Faults (``faults.py``) apply here.

Quick commands (status, modes, store reads: the polls) are answered inside the step that read
them when no fault is armed; the others run as a task of their own, which costs a task per request.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from voyager import dashboard, protocol, wire
from voyager.protocol import ActionResultInt as R
from voyager.simulator.clock import SimClock
from voyager.simulator.config import SimulatorConfig
from voyager.simulator.faults import ERROR_RET, Faults
from voyager.simulator.scheduler import Scheduler
from voyager.simulator.store import Store, StoreError
from voyager.simulator.telemetry import Telemetry

if TYPE_CHECKING:
    from voyager.simulator.session import ClientSession

Result = tuple[int, str, dict[str, Any]]
Handler = Callable[["ClientSession", dict[str, Any]], Awaitable[Result]]
QuickHandler = Callable[["ClientSession", dict[str, Any]], Result]
#: RoboTarget commands that change the store: run under the scheduler lock, saved before the result.
MUTATING = {wire.M_ADD_SET, wire.M_UPDATE_SET, wire.M_REMOVE_SET, wire.M_ADD_TARGET, wire.M_UPDATE_TARGET, wire.M_REMOVE_TARGET, wire.M_ADD_SHOT,
            wire.M_ABORT, wire.M_ENABLE_DISABLE}
NO_MANAGER = wire.RET_ERROR_PREFIX + "RoboTarget Manager Mode not active"


def _done(**fields: Any) -> Result:
    return R.OK, "", {wire.RET: wire.RET_DONE, **fields}


class Commands:
    """The method table of one running simulator, over the parts the commands use: ``config``
    (host name, MAC key, filters, DragScripts), ``faults``, the simulated ``clock``, the ``store``,
    the ``scheduler`` (its lock, running session and aborts), ``telemetry`` (the mount) and
    ``poke`` (called after the store changed, so the scheduler re-plans)."""

    def __init__(self, config: SimulatorConfig, faults: Faults, clock: SimClock, store: Store,
                 scheduler: Scheduler, telemetry: Telemetry, poke: Callable[[], None]) -> None:
        self.config, self.faults, self.clock = config, faults, clock
        self.store, self.scheduler, self.telemetry, self.poke = store, scheduler, telemetry, poke
        #: Handlers that never wait: answered without a task of their own (see ``run``).
        quick: dict[str, QuickHandler] = {
            protocol.M_GET_STATUS: self.get_status,
            protocol.M_GET_FILTER_CONFIGURATION: self.get_filters,
            protocol.M_GET_PROFILES: self.get_profiles,
            protocol.M_DASHBOARD_MODE: self.dashboard_mode,
            protocol.M_SET_LOG_EVENT: self.set_log_event,
            protocol.M_LIST_DRAGSCRIPTS: self.list_dragscripts,
            wire.M_GET_TARGET: self._list(lambda st, p: st.target_items(p.get(wire.GET_TARGET_PARAMS["set_guid"], ""))),
            wire.M_GET_SHOT: self._list(lambda st, p: st.shot_items(p.get(wire.GET_SHOT_PARAMS["target_guid"]))),
            wire.M_GET_RUN_LIST: self.get_runs,
            wire.M_GET_SESSIONS_BY_RUN: self._list(
                lambda st, p: [_public(s) for s in st.session_items(p.get(wire.GET_SESSIONS_BY_RUN_PARAMS["run_guid"]))]),
            wire.M_GET_SHOTS_DONE: self.get_shots_done,
        }
        self._quick: dict[str, tuple[QuickHandler, Handler]] = {m: (fn, _awaitable(fn)) for m, fn in quick.items()}
        #: Every method's handler (tests may swap one for a slower one: it then runs as a task).
        self.handlers: dict[str, Handler] = {m: handler for m, (_, handler) in self._quick.items()} | {
            protocol.M_ABORT: self.abort_all,
            protocol.M_ACTION_ABORT: self.action_abort,
            protocol.M_MOUNT_STATUS: self.mount_status,
            wire.M_MANAGER_MODE: self.manager_mode,
            wire.M_ADD_SET: self._store(lambda st, p: st.add_set(p)),
            wire.M_UPDATE_SET: self._store(lambda st, p: st.update_set(p)),
            wire.M_REMOVE_SET: self.remove_set,
            wire.M_ADD_TARGET: self._store(lambda st, p: st.add_target(p)),
            wire.M_UPDATE_TARGET: self._store(lambda st, p: st.update_target(p)),
            wire.M_REMOVE_TARGET: self.remove_target,
            wire.M_ADD_SHOT: self._store(lambda st, p: st.add_shot(p)),
            wire.M_GET_SHOT_JPG: self.get_shot_jpg,
            wire.M_ABORT: self.robotarget_abort,
            wire.M_ENABLE_DISABLE: self._store(lambda st, p: st.enable_disable(
                p.get(wire.ENABLE_DISABLE_PARAMS["object_guid"]), p.get(wire.ENABLE_DISABLE_PARAMS["object_type"], -1),
                p.get(wire.ENABLE_DISABLE_PARAMS["operation_type"], 0))),
        }

    # ------------------------------------------------------------ dispatch

    def run(self, s: ClientSession, method: str, req_id: int, params: dict[str, Any]) -> Awaitable[None] | None:
        """Answer one request: its reply, then its result.

        Returns None when it was answered at once (a quick handler, no fault armed), else the rest
        as an awaitable, which the session runs as a task (cancelled on close).
        """
        quick = self._quick.get(method)
        if quick is None or self.handlers.get(method) is not quick[1] or not self.faults.quiet:
            return self._run(s, method, req_id, params)
        s.send_line(protocol.encode_reply_ok(req_id))
        refused = self._refused(s, method, req_id, params) if wire.needs_mac(method) else None
        if refused is None:
            try:
                code, motivo, ret = quick[0](s, params)
            except StoreError as exc:
                code, motivo, ret = R.FINISHED_ERROR, exc.ret, {wire.RET: exc.ret}
        else:
            code, motivo, ret = refused
        s.send(protocol.make_action_result(str(params.get(wire.P_UID, "")), code, motivo=motivo, param_ret=ret,
                                           host=self.config.host_name, inst=self.config.inst, timestamp=s.timestamp()))
        return None

    def _refused(self, s: ClientSession, method: str, req_id: int, params: dict[str, Any]) -> Result | None:
        """The result of a RoboTarget command that may not run: a bad MAC, then no manager mode (§5)."""
        if wire.needs_mac(method):
            if not s.protocol.mac_ok(params, req_id):
                return R.FINISHED_ERROR, "MAC Error", {wire.RET: wire.RET_MAC_ERROR}
            if not s.manager_mode:
                return R.FINISHED_ERROR, NO_MANAGER, {wire.RET: NO_MANAGER}
        return None

    async def _run(self, s: ClientSession, method: str, req_id: int, params: dict[str, Any]) -> None:
        faults = self.faults
        if faults.take_swallow(method):
            return
        if faults.reply_delay > 0:
            await asyncio.sleep(faults.reply_delay)
        handler = self.handlers.get(method)
        if handler is None:
            s.send(protocol.make_reply_error(req_id, -32601, f"Method not found: {method}"))
            return
        s.send(protocol.make_reply_result(req_id, 0))
        uid = str(params.get(wire.P_UID, ""))
        if method in protocol.NO_RESULT_METHODS:
            await handler(s, params)
            return
        if faults.take_error(method):
            code, motivo, ret = R.FINISHED_ERROR, "Simulated fault", {wire.RET: ERROR_RET}
        elif refused := self._refused(s, method, req_id, params):
            code, motivo, ret = refused
        elif method == wire.M_MANAGER_MODE:
            code, motivo, ret = await self.manager_mode(s, params | {"_id": req_id})
        else:
            try:
                if method in MUTATING:
                    async with self.scheduler.lock:
                        code, motivo, ret = await handler(s, params)
                        self.store.save(self.clock.now())
                    self.poke()
                else:
                    code, motivo, ret = await handler(s, params)
            except StoreError as exc:
                code, motivo, ret = R.FINISHED_ERROR, exc.ret, {wire.RET: exc.ret}
        if faults.held_results:  # applied above, its result late (scheduler lock released)
            await faults.hold_result(method)
        s.send(protocol.make_action_result(uid, code, motivo=motivo, param_ret=ret, host=self.config.host_name,
                                           inst=self.config.inst, timestamp=s.timestamp()))

    def _store(self, apply: Callable[[Any, dict[str, Any]], None]) -> Handler:
        async def handler(s: ClientSession, params: dict[str, Any]) -> Result:
            apply(self.store, params)
            return _done()
        return handler

    def _list(self, read: Callable[[Any, dict[str, Any]], list[dict[str, Any]]]) -> QuickHandler:
        def handler(s: ClientSession, params: dict[str, Any]) -> Result:
            return _done(**{wire.LIST: read(self.store, params)})
        return handler

    # ------------------------------------------------------------ public commands [P]

    async def abort_all(self, s: ClientSession, params: dict[str, Any]) -> Result:
        async with self.scheduler.lock:
            self.scheduler.abort(self.clock.now(), "Aborted by Abort command")
            self.store.save(self.clock.now())
        self.poke()
        return _done()

    async def action_abort(self, s: ClientSession, params: dict[str, Any]) -> Result:
        task = s.inflight.get(str(params.get(wire.P_UID, "")))
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            return R.ABORTED, "Aborted by RemoteActionAbort", {}
        return R.OK, "", {}

    def get_status(self, s: ClientSession, params: dict[str, Any]) -> Result:
        return R.OK, "", {wire.STATUS_KEY: "RUN" if self.scheduler.active else "IDLE"}

    def get_filters(self, s: ClientSession, params: dict[str, Any]) -> Result:
        names = self.config.filters
        return R.OK, "", {wire.FILTER_NUM: len(names)} | {wire.filter_name_key(i + 1): n for i, n in enumerate(names)}

    def get_profiles(self, s: ClientSession, params: dict[str, Any]) -> Result:
        return R.OK, "", {wire.LIST: [dict(p) for p in self.store.profiles]}

    def dashboard_mode(self, s: ClientSession, params: dict[str, Any]) -> Result:
        s.dashboard = bool(params.get(wire.DASHBOARD_IS_ON))
        return R.OK, "", {}

    def set_log_event(self, s: ClientSession, params: dict[str, Any]) -> Result:
        s.log_events = bool(params.get("IsOn"))
        return R.OK, "", {}

    async def mount_status(self, s: ClientSession, params: dict[str, Any]) -> Result:
        """The mount's state now (§4a ``RemoteMountStatusGetInfo``): the ControlData mount fields
        under their own names, plus ``FlipStatus`` and the hour angle."""
        t = self.clock.now()
        m = await asyncio.to_thread(self.telemetry.mount.state, t, self.telemetry.tracked())
        return R.OK, "", {
            "IsConnected": True, "IsParked": m.parked, "IsTracking": m.tracking, "IsSlewing": False,
            "RA": dashboard.hms(m.ra_now), "DEC": dashboard.dms(m.dec_now),
            "RAJ2000": dashboard.hms(m.ra_j2000), "DECJ2000": dashboard.dms(m.dec_j2000),
            "AZ": dashboard.dms(m.az, signed=False), "ALT": dashboard.dms(m.alt),
            "Pier": m.pier, "HourAngle": dashboard.dms(m.hour_angle), "FlipStatus": m.flip_status,
            "TimeToFlip": dashboard.duration(m.time_to_flip),
        }

    def list_dragscripts(self, s: ClientSession, params: dict[str, Any]) -> Result:
        return R.OK, "", {wire.LIST: list(self.config.dragscripts)}

    # ------------------------------------------------------------ RoboTarget [S]

    async def manager_mode(self, s: ClientSession, params: dict[str, Any]) -> Result:
        hash_ok = s.protocol.mac_ok(params, params.get("_id", -1), wire.P_HASH)
        if params.get(wire.P_MAC_KEY) != self.config.mac_key or not hash_ok:
            s.manager_mode = False
            return R.FINISHED_ERROR, "MAC Error", {wire.RET: wire.RET_MAC_ERROR}
        s.manager_mode = True
        return _done()

    async def remove_target(self, s: ClientSession, params: dict[str, Any]) -> Result:
        guid = str(params.get(wire.REMOVE_TARGET_PARAMS["target_guid"], "")).lower()
        self.store.target(guid)  # raises "not found" before anything is aborted
        self.scheduler.abort(self.clock.now(), "Aborted: target removed",
                             lambda t: t[wire.TARGET_FIELDS["guid"]] == guid)
        self.store.remove_target(guid)
        return _done()

    async def remove_set(self, s: ClientSession, params: dict[str, Any]) -> Result:
        guid = str(params.get(wire.REMOVE_SET_PARAMS["set_guid"], "")).lower()
        if guid not in self.store.sets:
            raise StoreError(wire.RET_NOT_FOUND)
        self.scheduler.abort(self.clock.now(), "Aborted: set removed",
                                 lambda t: t[wire.TARGET_FIELDS["set_guid"]] == guid)
        self.store.remove_set(guid)
        return _done()

    def get_runs(self, s: ClientSession, params: dict[str, Any]) -> Result:
        try:
            days = int(params.get(wire.GET_RUN_LIST_PARAMS["days"], 0) or 0)
        except (TypeError, ValueError):
            raise StoreError(wire.RET_ERROR_PREFIX + "Days must be an integer") from None
        profile = str(params.get(wire.GET_RUN_LIST_PARAMS["profile_name"], "") or "")
        return _done(**{wire.LIST: self.store.run_items(profile, days, self.clock.now())})

    def get_shots_done(self, s: ClientSession, params: dict[str, Any]) -> Result:
        items = self.store.shot_done_items(params.get(wire.GET_SHOTS_DONE_PARAMS["session_guid"]))
        return _done(**{wire.LIST: {wire.SHOTS_DONE_KEY: [_public(d) for d in items]}})

    async def get_shot_jpg(self, s: ClientSession, params: dict[str, Any]) -> Result:
        p = wire.GET_SHOT_JPG_PARAMS
        done = self.store.find_shot_done(params.get(p["shot_done_guid"]), str(params.get(p["fit_filename"]) or ""))
        path = Path(done["jpgfile"])
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError:
            raise StoreError(wire.RET_ERROR_PREFIX + f"JPG not found: {path.name}") from None
        return _done(**{wire.JPG_DATA: base64.b64encode(data).decode("ascii"),
                        wire.SHOT_DONE_ITEM["filename"]: done[wire.SHOT_DONE_ITEM["filename"]]})

    async def robotarget_abort(self, s: ClientSession, params: dict[str, Any]) -> Result:
        p, f = wire.ABORT_PARAMS, wire.TARGET_FIELDS
        want_target = str(params.get(p["target_guid"]) or "").lower()
        want_set = str(params.get(p["set_guid"]) or "").lower()
        want_ttag, want_stag = str(params.get(p["target_tag"]) or ""), str(params.get(p["set_tag"]) or "")
        sets = self.store.sets

        def match(target: dict[str, Any]) -> bool:
            set_tag = sets.get(target[f["set_guid"]], {}).get(wire.ADD_SET_PARAMS["tag"], "")
            return ((not want_target or target[f["guid"]] == want_target)
                    and (not want_set or target[f["set_guid"]] == want_set)
                    and (not want_ttag or target.get(f["tag"]) == want_ttag)
                    and (not want_stag or set_tag == want_stag))

        self.scheduler.abort(self.clock.now(), "Aborted by RemoteRoboTargetAbort", match)
        return _done()


def _awaitable(fn: QuickHandler) -> Handler:
    """A quick handler as a ``Handler`` (for the task path: when a fault is armed)."""
    async def handler(s: ClientSession, params: dict[str, Any]) -> Result:
        return fn(s, params)
    return handler


def _public(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record without its internal keys (``_…``, the JPG path)."""
    return {k: v for k, v in record.items() if not k.startswith("_") and k != "jpgfile"}
