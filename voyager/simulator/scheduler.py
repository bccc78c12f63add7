"""The RoboTarget scheduler of the simulator: a discrete-event machine on the simulated clock.

Model (docs/voyager-protocol.md §6, §9): a **run** is one night (opened by the night's first session,
closed at dawn, ``datetimeend`` 0 until then); a **session** images one target: frames one after
another in shot ``Order`` (each frame costs ``Exposure`` + ``shot_overhead`` simulated seconds and
must fit, whole, inside the target's observable window); a **shot done** is one frame. Which target
and how many frames: ``planner.py``. Sessions end with ``result`` 1 OK (tonight's frames done, or
the target's window closed: ``sessionexittext`` tells which), 2 aborted (clouds,
``RemoteRoboTargetAbort``/``Abort``, target disabled or removed) or 3 error (``fail_sessions`` fault,
or a crash while running). A frame whose HFD exceeds ``C_HFDMeanLimit`` (> 0) is kept with
``isdeleted`` true, does not count, and is retaken. No pre-emption: the best target is chosen when
the scheduler is idle.

``advance_to(t)`` processes every event up to simulated time ``t`` and returns the time of the next
one; the server's driver calls it in real time, ``VoyagerSimulator.run_until`` calls it with the
clock following each event.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from voyager import wire
from voyager.simulator import frames
from voyager.simulator.config import SimulatorConfig
from voyager.simulator.faults import Faults
from voyager.simulator.planner import ABORTED, Planner, _num
from voyager.simulator.sky import Night, Sky, airmass
from voyager.simulator.store import FRAMES, NIGHTS, Store

F, SH, D, SE = wire.TARGET_FIELDS, wire.ADD_SHOT_PARAMS, wire.SHOT_DONE_ITEM, wire.SESSION_ITEM
#: Signal codes (§4).
SIG_SHOT, SIG_QUEUE_EMPTY, SIG_ERROR, SIG_IDLE, SIG_RUNNING, SIG_STOPPED = 18, 2, 500, 501, 502, 503
SIG_GOTO, SIG_AUTOFOCUS = 31, 5
#: LogEvent ``Type`` (§4a).
LOG_INFO, LOG_WARNING, LOG_CRITICAL, LOG_ROBOTARGET = 2, 3, 4, 10
Emit = Callable[..., None]  # emit(event_name, t, dashboard_only, **fields)


@dataclass
class Frame:
    shot_guid: str
    start: float
    end: float
    exposure: float
    seq: int  # the target's frame number (file names)
    fit_path: Path


@dataclass
class Active:
    session: dict[str, Any]
    target_guid: str
    night: Night
    cells: np.ndarray
    planned: int
    accepted: int = 0
    frame: Frame | None = None


class Scheduler:
    """Runs targets of ``store`` on simulated time; events go out through ``emit``."""

    def __init__(self, cfg: SimulatorConfig, store: Store, sky: Sky, planner: Planner, faults: Faults, emit: Emit, now: float) -> None:
        self.cfg = cfg
        self.store = store
        self.sky = sky
        self.planner = planner
        self.faults = faults
        self.emit = emit
        self.seeing = frames.SeeingModel(cfg.seeing_arcsec, planner.seed)
        self.now = now
        self.active: Active | None = None
        self.lock = asyncio.Lock()
        #: The frame being rendered in a worker thread: a stop waits for its files (``settle``).
        self._rendering: asyncio.Future[Any] | None = None
        self._wake = now  # next idle evaluation (simulated epoch s)
        self.has_pending = False

    # ------------------------------------------------------------ driving

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait (at most ``timeout`` s) for a frame still being written by a worker thread."""
        rendering = self._rendering
        if rendering is not None and not rendering.done():
            await asyncio.wait({rendering}, timeout=timeout)
        if rendering is not None and rendering.done() and not rendering.cancelled():
            rendering.exception()  # retrieved: its awaiter may have been cancelled meanwhile

    def poke(self, t: float) -> None:
        """Re-evaluate at ``t`` (a command changed the store)."""
        if self.active is None:
            self._wake = min(self._wake, max(self.now, t))

    def next_event(self) -> float:
        if self.active is None:
            return self._wake
        frame = self.active.frame
        assert frame is not None
        onset = self.planner.cloud_onset(self.active.night)
        if onset is not None and frame.start < onset < frame.end:
            return max(onset, self.now)
        return frame.end

    async def advance_to(self, t_end: float, follow: Callable[[float], None] | None = None) -> float:
        """Process every event at or before ``t_end``; returns the next event's time (epoch s)."""
        while True:
            async with self.lock:
                nxt = self.next_event()
                if nxt > t_end:
                    self.now = max(self.now, t_end)
                    return nxt
                self.now = max(self.now, nxt)
                if follow:
                    follow(self.now)
                await self._process(self.now)
            await asyncio.sleep(0)

    async def _process(self, t: float) -> None:
        if self.active is None:
            await self._evaluate(t)
            return
        act = self.active
        onset = self.planner.cloud_onset(act.night)
        frame = act.frame
        if onset is not None and frame is not None and frame.start < onset <= t < frame.end:
            self._clouds(t)
            return
        if self.faults.fail_sessions:
            self.emit("Signal", t, False, Code=SIG_ERROR)
            self._end_session(t, wire.SESSION_ERROR, "Error: camera exposure failed (simulated fault)")
            return
        await self._finish_frame(t)
        await self._start_frame(t)

    # ------------------------------------------------------------ idle: choose a target

    async def _evaluate(self, t: float) -> None:
        night_start = self.sky.night_start(t)
        run = self.open_run()
        if run is not None and (run["_night"] != night_start or t >= run["_dawn"]):
            self._close_run(run, min(t, run["_dawn"]))
            run = None
        date = self.sky.night_date(t)
        cand = self.planner.pending(t, date)
        self.has_pending = bool(cand)
        if not cand:
            self._wake = night_start + 86400.0
            # Work left for a later night (tonight's share of a multi-night target is done, or it
            # was aborted tonight): say so, so the server fast-forwards over the idle day instead
            # of running it in real time.
            later = self._wake + 1.0
            self.has_pending = bool(self.planner.pending(later, self.sky.night_date(later)))
            if run is not None:
                self._wake = min(self._wake, max(run["_dawn"], t + 1))
            return
        night = await asyncio.to_thread(self.sky.night, t)
        cells = await asyncio.to_thread(lambda: [self.planner.cells(night, c) for c in cand])
        onset = self.planner.cloud_onset(night)
        clear = onset is None or t < onset
        i = night.index(t)
        if clear and night.start <= t < night.end:
            for target, c in zip(cand, cells, strict=True):
                first = self._next_shot(target, date)
                if first and c[i] and self.planner.window_ok(night, c, t, t + self._duration(first)):
                    await self._start_session(t, target, night, c)
                    return
        # Nothing now: wake at the next cell where some candidate is observable, else tomorrow.
        any_ok = np.logical_or.reduce(cells) if cells else np.zeros(len(night.times) - 1, bool)
        later = np.nonzero(any_ok[i + 1 :])[0]
        wake = night.end
        if len(later):
            wake = night.start + (i + 1 + int(later[0])) * night.step
        if onset is not None and wake >= onset and wake < night.end:
            wake = night.end
        starts = [_num(c.get(F["date_start"])) for c in cand]
        if wake == night.end and all(s >= night.end for s in starts):
            wake = max(night.end, self.sky.night_start(min(starts)))
        if run is not None:
            wake = min(wake, max(run["_dawn"], t + 1))
        self._wake = max(wake, t + 1)

    def open_run(self) -> dict[str, Any] | None:
        for run in self.store.runs.values():
            if run[wire.RUN_ITEM["end"]] == 0:
                return run
        return None

    def _close_run(self, run: dict[str, Any], t: float) -> None:
        run[wire.RUN_ITEM["end"]] = int(max(t, run[wire.RUN_ITEM["start"]]))
        self.store.dirty = True

    # ------------------------------------------------------------ sessions

    async def _start_session(self, t: float, target: dict[str, Any], night: Night, cells: np.ndarray) -> None:
        run = self.open_run()
        if run is None:
            set_ = self.store.sets.get(target[F["set_guid"]], {})
            guid = str(uuid.uuid4())
            run = {"guid": guid, wire.RUN_ITEM["start"]: int(t), wire.RUN_ITEM["end"]: 0,
                   "profilename": set_.get(wire.ADD_SET_PARAMS["profile_name"], self.cfg.profile_name),
                   "_night": night.start, "_dawn": float(night.dawn or night.end)}
            self.store.runs[guid] = run
        if night.date not in target[NIGHTS]:
            target[NIGHTS].append(night.date)
        planned = sum(self.planner.quotas(target, night.date).values())
        session = {
            SE["guid"]: str(uuid.uuid4()), "refguidrun": run["guid"], SE["ref_guid_target"]: target[F["guid"]],
            "targetname": target.get(F["name"], ""), SE["start"]: int(t), SE["end"]: 0, SE["exit_text"]: "",
            SE["result"]: wire.SESSION_RUNNING, SE["progress"]: 0, "imagecount": 0, "planned": planned,
        }
        self.store.sessions[session[SE["guid"]]] = session
        self.store.dirty = True
        self.active = Active(session, target[F["guid"]], night, cells, planned)
        name = target.get(F["name"], "")
        self.emit("Signal", t, False, Code=SIG_RUNNING)
        self.log(t, LOG_ROBOTARGET, f"RoboTarget: start of target {name} (session {session[SE['guid']]}, {planned} frames planned)")
        self.emit("Signal", t, False, Code=SIG_GOTO)
        self.log(t, LOG_INFO, f"Slew to {name}: RA J2000 {_num(target.get(F['ra_j2000'])):.5f} h, "
                              f"Dec J2000 {_num(target.get(F['dec_j2000'])):+.4f}°")
        self.emit("Signal", t, False, Code=SIG_AUTOFOCUS)
        self.log(t, LOG_INFO, "Autofocus done")
        await self._start_frame(t)

    def log(self, t: float, kind: int, text: str) -> None:
        """A ``LogEvent`` line (§4a) to the clients that asked for them."""
        self.emit("LogEvent", t, False, TimeInfo=round(t, 3), Type=kind, Text=text)

    def _end_session(self, t: float, result: int, text: str) -> None:
        act = self.active
        assert act is not None
        s = act.session
        s[SE["end"]] = int(max(t, s[SE["start"]]))
        s[SE["result"]], s[SE["exit_text"]] = result, text
        s[SE["progress"]] = min(100, int(100 * act.accepted / act.planned)) if act.planned else 100
        s["imagecount"] = act.accepted
        self.store.dirty = True
        self.active = None
        self._wake = t
        name = s.get("targetname", "")
        self.log(t, LOG_ROBOTARGET if result == wire.SESSION_OK else LOG_WARNING,
                 f"RoboTarget: end of target {name}: {text} ({act.accepted}/{act.planned} frames)")
        self.emit("Signal", t, False, Code=SIG_STOPPED if result == wire.SESSION_ABORTED else SIG_IDLE)
        self.emit("Signal", t, False, Code=SIG_QUEUE_EMPTY)

    def _clouds(self, t: float) -> None:
        self.emit("WeatherAndSafetyMonitorData", t, True, **weather_fields(False, True))
        self.log(t, LOG_CRITICAL, "Safety monitor UNSAFE (clouds): aborting the sequence")
        self._end_session(t, wire.SESSION_ABORTED, "Aborted: clouds, safety monitor UNSAFE")

    def abort(self, t: float, reason: str, match: Callable[[dict[str, Any]], bool] | None = None) -> bool:
        """End the running session as aborted (result 2) if ``match(target)``; True when one was.

        The target is not restarted the same night. Call with ``self.lock`` held.
        """
        act = self.active
        if act is None:
            return False
        target = self.store.targets.get(act.target_guid)
        if match is not None and (target is None or not match(target)):
            return False
        if target is not None:
            target[ABORTED] = act.night.date
        self._end_session(max(t, self.now), wire.SESSION_ABORTED, reason)
        return True

    # ------------------------------------------------------------ frames

    def _next_shot(self, target: dict[str, Any], date: str) -> dict[str, Any] | None:
        quotas = self.planner.quotas(target, date)
        for shot in self.store.shots_of(target[F["guid"]]):
            if shot[SH["guid"]] in quotas:
                return shot
        return None

    def _filter_name(self, shot: dict[str, Any]) -> str:
        index = int(shot[SH["filter_index"]])
        return self.cfg.filters[index] if 0 <= index < len(self.cfg.filters) else f"F{index}"

    def _duration(self, shot: dict[str, Any]) -> float:
        return float(shot[SH["exposure"]]) + self.cfg.shot_overhead

    async def _start_frame(self, t: float) -> None:
        act = self.active
        if act is None:
            return
        target = self.store.targets.get(act.target_guid)
        if target is None or int(_num(target.get(F["status"]))) != 0:
            self._end_session(t, wire.SESSION_ABORTED, "Aborted: target removed or disabled")
            return
        set_ = self.store.sets.get(target[F["set_guid"]])
        if set_ is None or int(_num(set_.get(wire.ADD_SET_PARAMS["status"]))) != 0:
            # A paused Set stops its session between frames, as a disabled target does.
            self._end_session(t, wire.SESSION_ABORTED, "Aborted: set disabled")
            return
        shot = self._next_shot(target, act.night.date)
        if shot is None:
            self._end_session(t, wire.SESSION_OK, "Sequence completed")
            return
        onset = self.planner.cloud_onset(act.night)
        if onset is not None and onset <= t:
            self._clouds(t)
            return
        act.cells = self.planner.cells(act.night, target)
        if not self.planner.window_ok(act.night, act.cells, t, t + self._duration(shot)):
            self._end_session(t, wire.SESSION_OK, "Target constraints no longer met")
            return
        seq = int(target.get(FRAMES, 0)) + 1
        target[FRAMES] = seq
        exposure = float(shot[SH["exposure"]])
        name = str(target.get(F["name"]) or "target")
        folder = Path(self.cfg.fit_dir) / f"{frames.safe_name(name)}_{act.target_guid[:8]}"
        stem = f"{frames.safe_name(name)}_{frames.safe_name(self._filter_name(shot))}_{exposure:g}s_{seq:03d}"
        act.frame = Frame(shot[SH["guid"]], t, t + self._duration(shot), exposure, seq, folder / f"{stem}.fit")
        self.emit("Signal", t, False, Code=SIG_SHOT)
        self.emit("ShotRunning", t, True, **self.shot_running(t))

    def shot_running(self, t: float) -> dict[str, Any]:
        """``ShotRunning`` fields for the frame in progress at ``t`` (§4)."""
        act = self.active
        if act is None or act.frame is None:
            return {"File": "", "Expo": 0, "Elapsed": 0, "ElapsedPerc": 0, "Status": 0}
        f = act.frame
        elapsed = min(max(t - f.start, 0.0), f.exposure)
        status = 1 if t - f.start < f.exposure else 2
        return {"File": str(f.fit_path), "Expo": f.exposure, "Elapsed": round(elapsed, 1),
                "ElapsedPerc": round(100.0 * elapsed / f.exposure, 1), "Status": status}

    async def _finish_frame(self, t: float) -> None:
        act = self.active
        assert act is not None and act.frame is not None
        frame, act.frame = act.frame, None
        target = self.store.targets.get(act.target_guid)
        shot = self.store.shots.get(frame.shot_guid)
        if target is None or shot is None:
            return
        night = act.night
        seq = frame.seq
        mid = frame.start + frame.exposure / 2
        i = night.index(mid)
        ra, dec = _num(target.get(F["ra_j2000"])), _num(target.get(F["dec_j2000"]))
        alt = float(self.sky.target_alt(night, ra, dec)[i])
        moon = float((await asyncio.to_thread(self.sky.moon_alt, night))[i])
        lit = await asyncio.to_thread(frames.moon_illumination, mid)
        rng = frames.seeded_rng(self.planner.seed, act.target_guid, seq)
        filter_index = int(shot[SH["filter_index"]])
        filter_name = self._filter_name(shot)
        binning = int(shot[SH["bin"]] or 1)
        quality = frames.frame_quality(self.seeing.fwhm(night.date, mid, rng), alt, moon, frame.exposure,
                                       filter_name, binning, self.cfg.pixel_scale, rng,
                                       sun_alt_deg=float(night.sun_alt[i]), moon_illumination=lit)
        name = str(target.get(F["name"]) or "target")
        folder = frame.fit_path.parent
        spec = frames.FrameSpec(act.target_guid, name, ra, dec, filter_name, frame.exposure, binning, quality,
                                frame.start, frame.fit_path, frame.fit_path.with_suffix(".jpg"), seq,
                                pa_deg=_num(target.get(F["pa"])), airmass=airmass(alt),
                                site=(self.cfg.latitude, self.cfg.longitude, self.cfg.elevation))
        w, h = max(self.cfg.frame_width // binning, 16), max(self.cfg.frame_height // binning, 16)
        self._rendering = asyncio.ensure_future(
            asyncio.to_thread(frames.render, spec, w, h, self.cfg.pixel_scale, self.cfg.jpg_quality))
        # Shielded: a cancelled driver leaves the thread writing files; settle() waits for it.
        rendered = await asyncio.shield(self._rendering)
        jpg = rendered.jpg
        quality = dataclasses.replace(quality, starindex=rendered.starindex)
        limit = _num(target.get(F["hfd_mean_limit"]))
        rejected = limit > 0 and quality.hfd > limit
        done = {
            D["guid"]: str(uuid.uuid4()), D["ref_guid_session"]: act.session[SE["guid"]], D["ref_guid_shot"]: frame.shot_guid,
            D["filename"]: spec.fit_path.name, D["path"]: str(folder), D["filter_index"]: filter_index,
            D["exposure"]: frame.exposure, D["bin"]: binning, D["hfd"]: quality.hfd, D["star_index"]: quality.starindex,
            D["min"]: quality.min, D["max"]: quality.max, D["mean"]: quality.mean, D["taken_at"]: int(frame.start),
            D["is_deleted"]: rejected, "refguidtarget": act.target_guid, "filtername": filter_name, "jpgfile": str(spec.jpg_path),
        }
        self.store.shots_done[done[D["guid"]]] = done
        if rejected:
            self.log(t, LOG_WARNING, f"Frame {spec.fit_path.name} rejected: HFD {quality.hfd:.2f} px > limit {limit:g} px")
        else:
            self.log(t, LOG_INFO, f"Frame saved: {spec.fit_path.name} (HFD {quality.hfd:.2f} px, {quality.starindex} stars)")
            shot[SH["done"]] = int(shot[SH["done"]]) + 1
            self.planner.record_frame(target, night.date, frame.shot_guid)
            act.accepted += 1
        act.session[SE["progress"]] = min(100, int(100 * act.accepted / act.planned)) if act.planned else 100
        act.session["imagecount"] = act.accepted
        self.store.dirty = True
        self.emit("ShotRunning", t, True, File=str(spec.fit_path), Expo=frame.exposure, Elapsed=frame.exposure,
                  ElapsedPerc=100.0, Status=0)
        self.emit("NewFITReady", t, False, File=str(spec.fit_path), Type=0, VoyType="SHOT", SeqTarget=name)
        self.emit("NewJPGReady", t, True, File=str(spec.fit_path), SequenceTarget=name, TimeInfo=float(int(frame.start)),
                  Expo=frame.exposure, Bin=binning, Filter=filter_name, HFD=quality.hfd, StarIndex=quality.starindex,
                  PixelDimX=w, PixelDimY=h, Base64Data=base64.b64encode(jpg).decode("ascii"))

    # ------------------------------------------------------------ restart

    def recover(self, t: float) -> None:
        """After a crash: sessions left running end as errors (result 3) at ``t``."""
        for s in self.store.sessions.values():
            if s[SE["result"]] == wire.SESSION_RUNNING:
                s[SE["end"]] = int(max(t, s[SE["start"]]))
                s[SE["result"]], s[SE["exit_text"]] = wire.SESSION_ERROR, "Error: Voyager restarted during the session"
                self.store.dirty = True


def weather_fields(safe: bool, cloudy: bool, dark: bool = True) -> dict[str, Any]:
    """``WeatherAndSafetyMonitorData`` fields (§4, §4a): both devices connected, clouds → ``CLOUDY``."""
    return {"WSConnected": True, "SMConnected": True, "SMStatus": "SAFE" if safe else "UNSAFE",
            "WSCloud": "CLOUDY" if cloudy else "CLEAR", "WSRain": "DRY", "WSWind": "CALM",
            "WSLight": "DARK" if dark else "LIGHT"}
