"""Session ingest: each new frame written exactly once, by whoever reaches it first — the observatory
monitor (activities/monitor_ingest.py: as the session runs, and to its last frame when it ends), the
final sweep, and, for a session the monitor did not close (orders started before it closed nights, a
session it could not ingest), the order's heartbeating session watch activity.

Per frame (a RoboTarget *shot done*, docs/voyager-protocol.md §7): read its FITS where Voyager wrote
it (``path``/``filename``; this process runs beside Voyager, else ``images.fit_dir`` reaches it),
fetch its JPG preview (``RemoteRoboTargetGetShotJpg``), upload both with their SHA-256 to the image
store (``frames/<order_id>/<guid>.fits|.jpg``, docs/frames.md), and only then, in one transaction,
insert the ``shot_done`` row with the object keys (``ON CONFLICT (shot_done_guid) DO NOTHING``),
recompute the order's progress and insert a ``progress`` OrderEvent. Progress and the settlement
count rows, so a frame is billed only once its files are stored; a retried activity re-uploads
nothing (same key, same hash) and can never ingest a frame twice. Polls and per-frame progress stay
here, out of workflow history (docs/order-workflow.md, step 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from datetime import UTC, datetime
from dataclasses import dataclass, field

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from activities._db import db_unavailable, sql
from activities._heartbeat import heartbeating
from activities.link_wait import clear_site_wait, note_link_down
from activities.order_sql import move_status_now, one_statement
from activities.order_store import lock_order
from activities.progress import order_lines, refresh_progress, store_progress
from activities.session_status import move_night_status
from activities.session_wake import SessionWake
from activities.voyager_ops import stop_target
from core.frame_files import fits_path
from core.frame_store import StoredFile, frame_key, frame_store, store_frame_file
from core.object_store import ObjectStoreError
from core.settings import Settings
from models.db import OrderEvent, OrderShot, ShotDone
from models.orders import (
    CloseTargetRequest,
    CloseTargetResult,
    OrderProgress,
    OrderStatus,
    RunEndRequest,
    RunEndResult,
    StopTargetRequest,
    SweepRequest,
    SweepResult,
    WatchSessionRequest,
    WatchSessionResult,
)
from voyager import wire
from voyager.errors import VoyagerActionFailed, VoyagerConnectionError, VoyagerRejected, VoyagerTimeout
from voyager.robotarget import RoboTarget
from voyager.types import SessionInfo
from voyager.types import ShotDone as VoyagerShotDone

log = structlog.get_logger(__name__)
_TRANSIENT = (VoyagerConnectionError, VoyagerTimeout)
#: Waited out by the session watch like Voyager's link: the image store unreachable or refusing.
_WAITED_OUT = (*_TRANSIENT, ObjectStoreError)
#: Polls without finding the session in its run before the watch gives up on it, ``MISS_RETRY``
#: seconds apart at most.
MAX_MISSES = 5
MISS_RETRY = 3.0
#: Real seconds between two polls of a watch at least, however many events wake it (an accelerated
#: simulator emits several a second; one poll ingests every frame listed so far).
MIN_POLL_GAP = 0.05
#: Real seconds between the final sweep's polls at most while an aborted session finishes (its end
#: wakes the sweep at once; this bounds the wait when that event is lost).
SWEEP_POLL_CAP = 3.0
#: Seconds between two heartbeats of a session watch: ≤ 30 an observing hour (billable actions).
#: ``workflows/_options.py`` ``WATCH_SESSION`` gives it a heartbeat timeout with a margin above this.
WATCH_HEARTBEAT_EVERY = 120.0


@dataclass(frozen=True)
class FrameFiles:
    """A frame's files once stored: the FITS (None when Voyager deleted a rejected frame's file)
    and the JPG (None when Voyager has no preview)."""

    fits: StoredFile | None
    jpg: StoredFile | None


@dataclass
class _SessionGate:
    """One session's ingest lock and how many calls hold or wait for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class FitsUnreadable(RuntimeError):
    """The FITS file Voyager reported is not readable on this host (the frame waits, unbilled)."""


class IngestActivities:
    """``robotarget`` on the pool beside Voyager; ``settings.image_store`` for the frames' files,
    ``settings.images.fit_dir`` where Voyager's FITS files are, ``settings.orders`` for poll
    intervals; ``wake``: the worker's dashboard-event fan-out (None = poll only)."""

    def __init__(self, robotarget: RoboTarget, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings,
                 wake: SessionWake | None = None) -> None:
        self.rt = robotarget
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.wake = wake or SessionWake(None)
        #: One ingest of a session at a time in this process: the watch, the sweep and the observatory
        #: monitor (activities/monitor_ingest.py) reach a session together, and each would otherwise
        #: fetch and store the same frames before the insert's unique key dropped all but one.
        self._session_locks: dict[str, _SessionGate] = {}

    # ------------------------------------------------------------------ activities

    @activity.defn(name="ingest.watch_session")
    async def watch_session(self, req: WatchSessionRequest) -> WatchSessionResult:
        """Ingest the session's frames as Voyager announces them (``NewFITReady``/``Signal``
        dashboard events wake the watch, ``activities/session_wake.py``), and at least every
        ``orders.watch_poll_interval`` seconds (the safety poll for events lost on a dropped link),
        until Voyager lists the session as finished (``result`` 1 OK, 2 aborted, 3 error), then once
        more, and return. A session its run does not list (``MAX_MISSES`` polls, one with
        ``sweep_only``) ends as an error after its frames are ingested.

        Heartbeats every ``WATCH_HEARTBEAT_EVERY`` seconds (``workflows/_options.py``): billable, so
        few; an abort does not wait for them (the workflow does not wait for the watch to
        acknowledge its cancellation). A dropped Voyager link, a timeout or the database unreachable
        is waited out (the pool reconnects); the activity only ends by the session ending, by
        cancellation, by a refusal or bug, or by a worker death (then Temporal retries it after
        ``heartbeat_timeout`` and ingest resumes where the database says)."""
        poll = self.settings.orders.watch_poll_interval
        frames = misses = 0
        await clear_site_wait(self.sessionmaker, req.order_id, activity.info().task_queue)
        running = req.sweep_only or not req.running_reason  # the ``running`` status is written (or not wanted)
        async with self.wake.subscribe() as woken, heartbeating(lambda: {"frames": frames}, every=WATCH_HEARTBEAT_EVERY):
            while True:
                woken.clear()  # an event during this poll triggers the next one
                try:
                    if not running:
                        await move_night_status(self.sessionmaker, req.order_id, OrderStatus.RUNNING, req.running_reason)
                        running = True
                    # The session's state first, then its frames: a session seen finished has listed
                    # every frame by then, so one ingest after it is the last one needed.
                    info = await self._session(req.run_guid, req.session_guid)
                    frames += await self.ingest_session(req.order_id, req.session_guid)
                    if info is not None and info.finished:
                        log.info("session.watched", order_id=req.order_id, session_guid=req.session_guid,
                                 result=info.result, frames=frames)
                        return await self._watched(req, info.result, info.exit_text, frames)
                    if info is None:
                        misses += 1
                        if misses >= (1 if req.sweep_only else MAX_MISSES):
                            return await self._watched(req, wire.SESSION_ERROR, "session not found in its run", frames)
                    else:
                        misses = 0
                except Exception as exc:
                    # Voyager or the database unreachable is waited out; anything else fails the attempt.
                    if not (isinstance(exc, _WAITED_OUT) or db_unavailable(exc)):
                        raise
                    log.warning("session.watch_waiting", order_id=req.order_id, error=str(exc))
                # A session its run does not list yet may appear a moment later: look again soon.
                await _wait_wake(woken, min(poll, MISS_RETRY) if misses else poll)

    async def _watched(self, req: WatchSessionRequest, result: int, exit_text: str, frames: int) -> WatchSessionResult:
        """The watch's result; the order goes back to ``submitted`` when shots remain (``waiting_reason``)."""
        progress = await self.progress(req.order_id)
        if req.waiting_reason and not progress.all_done:
            await move_night_status(self.sessionmaker, req.order_id, OrderStatus.SUBMITTED,
                                    f"{req.waiting_reason} ({exit_text})")
        return WatchSessionResult(session_guid=req.session_guid, ended=True, result=result, exit_text=exit_text,
                                  frames_ingested=frames, progress=progress)

    @activity.defn(name="ingest.sweep_target")
    async def sweep_target(self, req: SweepRequest) -> SweepResult:
        """Ingest every session of the target (after an abort, at the deadline). Waits up to
        ``orders.sweep_wait_for_end`` seconds for a session still running (an aborted one finishing
        its current exposure) so its last frames are not lost. Voyager unreachable: recorded on the
        order (``activities/link_wait.py``) and raised, so the activity's retry policy waits."""
        await clear_site_wait(self.sessionmaker, req.order_id, activity.info().task_queue)
        try:
            return await self._sweep(req)
        except _TRANSIENT as exc:
            await note_link_down(self.sessionmaker, req.order_id, exc)
            raise

    @activity.defn(name="ingest.close_target")
    async def close_target(self, req: CloseTargetRequest) -> CloseTargetResult:
        """The order leaves Voyager, in one activity instead of a status step, a stop and a sweep
        (docs/order-workflow.md, Life cycle 5): write ``settling`` with ``req.reason`` and the
        abort's record in one transaction (each once), disable the target (and abort its session
        with ``abort_session``, ``voyager.stop_target``), then with ``sweep`` ingest every session
        of it (``ingest.sweep_target``). A retry repeats the stop (disabling twice is harmless;
        aborting a target that no longer runs is a refusal, reported in ``detail``) and the sweep,
        which never ingests a frame twice. Voyager unreachable: recorded on the order and raised
        (retried)."""
        await clear_site_wait(self.sessionmaker, req.order_id, activity.info().task_queue)
        async with one_statement(self.sessionmaker) as conn:  # the status and the abort's record, one statement
            await move_status_now(conn, req.order_id, OrderStatus.SETTLING, req.reason, abort=req.abort)
        try:
            async with heartbeating():
                stopped = await stop_target(self.rt, StopTargetRequest(
                    order_id=req.order_id, target_guid=req.target_guid, abort=req.abort_session, disable=True,
                    panel_target_guids=req.panel_target_guids))
            swept = None
            if req.sweep:
                swept = await self._sweep(SweepRequest(order_id=req.order_id, target_guid=req.target_guid,
                                                       panel_target_guids=req.panel_target_guids))
        except _TRANSIENT as exc:
            await note_link_down(self.sessionmaker, req.order_id, exc)
            raise
        return CloseTargetResult(stopped=stopped, swept=swept)

    async def _sweep(self, req: SweepRequest) -> SweepResult:
        loop = asyncio.get_running_loop()
        until = loop.time() + self.settings.orders.sweep_wait_for_end
        frames = 0
        days = max(self.settings.orders.monitor_run_days, self.settings.billing.order_default_lifetime_days + 1)
        async with self.wake.subscribe() as woken, heartbeating(lambda: {"frames": frames}):
            targets = [req.target_guid, *(t for t in req.panel_target_guids if t != req.target_guid)]
            while True:
                sessions = []
                for guid in targets:  # a mosaic: every panel's Target
                    sessions += await self.rt.get_sessions_for_target(guid, self.settings.voyager.profile_name, days)
                if all(s.finished for s in sessions) or loop.time() >= until:
                    break
                woken.clear()
                await _wait_wake(woken, min(self.settings.orders.watch_poll_interval, SWEEP_POLL_CAP))
            for s in sessions:
                frames += await self.ingest_session(req.order_id, s.guid)
        progress = await self.progress(req.order_id)
        return SweepResult(sessions=[s.guid for s in sessions], frames_ingested=frames, progress=progress)

    @activity.defn(name="ingest.wait_run_end")
    async def wait_run_end(self, req: RunEndRequest) -> RunEndResult:
        """Return once Voyager lists the scheduler run ``run_guid`` (a night) as closed, or no
        longer lists it (``MAX_MISSES`` polls). Polls the run list every
        ``orders.monitor_poll_interval`` seconds; Voyager unreachable is waited out."""
        poll = self.settings.orders.monitor_poll_interval
        days = self.settings.orders.monitor_run_days
        misses = 0
        async with heartbeating():
            while True:
                try:
                    runs = await self.rt.get_run_list(self.settings.voyager.profile_name, days)
                    run = next((r for r in runs if r.guid == req.run_guid), None)
                    if run is not None and run.end is not None:
                        return RunEndResult(run_guid=req.run_guid, end=run.end)
                    misses = misses + 1 if run is None else 0
                    if misses >= MAX_MISSES:
                        return RunEndResult(run_guid=req.run_guid)
                except _TRANSIENT as exc:
                    log.warning("run.wait_voyager_unavailable", order_id=req.order_id, error=str(exc))
                await asyncio.sleep(poll)

    # ------------------------------------------------------------------ ingest

    async def _session(self, run_guid: str, session_guid: str) -> SessionInfo | None:
        """The session as its run lists it; None when the run or the session is unknown."""
        try:
            sessions = await self.rt.get_sessions_by_run(run_guid, session_guid=session_guid)
        except (VoyagerActionFailed, VoyagerRejected) as exc:
            log.warning("session.run_unknown", run_guid=run_guid, error=str(exc))
            return None
        return next(iter(sessions), None)

    async def progress(self, order_id: int) -> OrderProgress:
        return await store_progress(self.sessionmaker, order_id)

    async def ingest_session(self, order_id: int, session_guid: str) -> int:
        """Ingest the frames of one session not yet in ``shot_done``; returns how many were new.
        A frame whose FITS is not readable here is left out (logged ``frame.fits_unreadable``) and
        tried again at the next call. Raises VoyagerConnectionError / VoyagerTimeout /
        ObjectStoreError (the caller retries later); frames stored before that are kept. A call while
        another of this process ingests the session waits for it, then lists what is still new."""
        gate = self._session_locks.setdefault(session_guid, _SessionGate())
        gate.users += 1
        try:
            async with gate.lock:
                return await self._ingest_session(order_id, session_guid)
        finally:
            gate.users -= 1
            if not gate.users:
                del self._session_locks[session_guid]  # no one holds or waits: forget the session

    async def _ingest_session(self, order_id: int, session_guid: str) -> int:
        done = await self.rt.get_shots_done(session_guid)
        if not done:
            return 0
        async with self.sessionmaker() as session:
            known = set((await sql(session,
                sa.select(ShotDone.shot_done_guid).where(ShotDone.shot_done_guid.in_([d.guid for d in done]))  # type: ignore[attr-defined]
            )).scalars())
            lines = await order_lines(session, order_id)
        count = 0
        for frame in sorted((d for d in done if d.guid not in known), key=lambda d: (d.taken_at is None, d.taken_at)):
            line = _line_of(frame, lines)
            try:
                files = await self._store_files(order_id, frame)
            except FitsUnreadable as exc:
                log.error("frame.fits_unreadable", order_id=order_id, shot_done_guid=frame.guid, error=str(exc))
                continue
            count += await self._insert(order_id, session_guid, frame, line, files)
        return count

    async def _store_files(self, order_id: int, frame: VoyagerShotDone) -> FrameFiles:
        """Upload the frame's FITS and JPG to the image store (each skipped when already there).
        Raises FitsUnreadable for an accepted frame whose FITS is not here, ObjectStoreError."""
        recorded = _recorded_fits(frame)
        source = fits_path(self.settings, recorded)
        store = frame_store(self.settings)
        fits = None
        if source is not None:
            try:
                fits = await asyncio.to_thread(store_frame_file, store, frame_key(order_id, frame.guid, "fits"), source)
            except OSError as exc:  # Voyager still writing or moving it: try again at the next poll
                raise FitsUnreadable(f"{recorded}: {exc}") from exc
        elif not frame.is_deleted:  # Voyager deletes a rejected frame's file: nothing to store then
            raise FitsUnreadable(f"{recorded or '(no path)'} is not on this host (images.fit_dir "
                                 f"{self.settings.images.fit_dir})")
        jpg = None
        data = await self._fetch_jpg(order_id, frame)
        if data:
            jpg = await asyncio.to_thread(store_frame_file, store, frame_key(order_id, frame.guid, "jpg"), data)
        log.info("frame.stored", order_id=order_id, shot_done_guid=frame.guid,
                 fits_key=fits.key if fits else None, fits_uploaded=bool(fits and fits.uploaded),
                 jpg_key=jpg.key if jpg else None)
        return FrameFiles(fits, jpg)

    async def _fetch_jpg(self, order_id: int, frame: VoyagerShotDone) -> bytes | None:
        """The preview Voyager rendered; None when it has none (the frame is still ingested)."""
        try:
            return await self.rt.get_shot_jpg(frame.guid, frame.filename) or None
        except (VoyagerActionFailed, VoyagerRejected) as exc:
            log.warning("frame.jpg_unavailable", order_id=order_id, shot_done_guid=frame.guid, error=str(exc))
            return None

    async def _insert(self, order_id: int, session_guid: str, frame: VoyagerShotDone, line: OrderShot | None,
                      files: FrameFiles) -> int:
        accepted = not frame.is_deleted
        filter_name = line.filter if line else _filter_name(frame.filter_index)
        fits = _recorded_fits(frame)
        stored_fits, stored_jpg = files.fits, files.jpg
        async with self.sessionmaker() as session:
            order = await lock_order(session, order_id)  # serializes concurrent ingests of one order
            row_id = (await sql(session,
                pg_insert(ShotDone.__table__).values(
                    order_id=order_id, session_guid=session_guid or frame.ref_guid_session,
                    shot_done_guid=frame.guid, shot_guid=line.shot_guid if line else (frame.ref_guid_shot or None),
                    filter=filter_name, exposure=frame.exposure, bin=frame.bin, hfd=_finite(frame.hfd),
                    star_index=_finite(frame.star_index), adu_min=_finite(frame.min), adu_max=_finite(frame.max),
                    adu_mean=_finite(frame.mean), filename=frame.filename, fits_path=fits or None,
                    fits_key=stored_fits.key if stored_fits else None,
                    fits_sha256=stored_fits.sha256 if stored_fits else None,
                    jpg_key=stored_jpg.key if stored_jpg else None,
                    jpg_sha256=stored_jpg.sha256 if stored_jpg else None,
                    taken_at=frame.taken_at, is_deleted=frame.is_deleted, accepted=accepted,
                    ingested_at=datetime.now(UTC),
                ).on_conflict_do_nothing(index_elements=["shot_done_guid"]).returning(ShotDone.__table__.c.id)
            )).scalar()
            if row_id is None:
                await session.rollback()
                return 0
            progress = await refresh_progress(session, order)
            session.add(OrderEvent(order_id=order_id, kind="progress", payload={
                "frame": {
                    "id": row_id, "shot_done_guid": frame.guid, "session_guid": session_guid, "filter": filter_name,
                    "exposure": frame.exposure, "hfd": _finite(frame.hfd), "accepted": accepted,
                    "taken_at": frame.taken_at.isoformat() if frame.taken_at else None,
                    "jpg": stored_jpg is not None, "fits_path": fits,
                    "fits_key": stored_fits.key if stored_fits else None,
                },
                "progress": progress.model_dump(mode="json"),
            }))
            await session.commit()
        log.info("frame.ingested", order_id=order_id, shot_done_guid=frame.guid, filter=filter_name,
                 hfd=frame.hfd, accepted=accepted, shots_done=progress.shots_done, shots_total=progress.shots_total)
        return 1


async def _wait_wake(woken: asyncio.Event, timeout: float) -> None:
    """Until ``woken`` is set (not sooner than ``MIN_POLL_GAP``) or ``timeout`` seconds passed."""
    await asyncio.sleep(min(MIN_POLL_GAP, timeout))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(0.0, timeout - MIN_POLL_GAP)):
            await woken.wait()


def _line_of(frame: VoyagerShotDone, lines: list[OrderShot]) -> OrderShot | None:
    """The order's shot line a frame belongs to: by shot GUID, else by filter index."""
    for line in lines:
        if frame.ref_guid_shot and line.shot_guid == frame.ref_guid_shot:
            return line
    for line in lines:
        if line.filter_index is not None and line.filter_index == frame.filter_index:
            return line
    name = _filter_name(frame.filter_index)
    return next((line for line in lines if line.filter.lower() == name.lower()), None)


def _filter_name(index: int) -> str:
    return next((name for name, i in wire.FILTER_FALLBACK.items() if i == index), f"F{index}")


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _recorded_fits(frame: VoyagerShotDone) -> str:
    """The FITS path as Voyager reported it (``path`` joined with ``filename``)."""
    return os.path.join(frame.path, frame.filename) if frame.path else frame.filename
