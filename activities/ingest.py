"""Session ingest: one heartbeating activity per session writes each new frame exactly once.

Per frame (a RoboTarget *shot done*, docs/voyager-protocol.md §7): fetch its JPG preview
(``RemoteRoboTargetGetShotJpg``) into ``images.jpg_dir/order_<id>/<guid>.jpg``, record its FITS path
(``path``/``filename`` as Voyager wrote it), and in one transaction insert the ``shot_done`` row
(``ON CONFLICT (shot_done_guid) DO NOTHING``), recompute the order's progress and insert a
``progress`` OrderEvent — so a retried activity, a second watcher or a final sweep can never ingest
a frame twice. Polls and per-frame progress stay here, out of workflow history (docs/order-workflow.md, step 3).
"""

from __future__ import annotations

import asyncio
import math
import os
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from activities._db import db_unavailable, sql
from activities._heartbeat import heartbeating
from activities.link_wait import clear_site_wait, note_link_down
from activities.order_store import lock_order
from activities.progress import order_lines, refresh_progress
from core.settings import Settings
from models.db import OrderEvent, OrderShot, ShotDone
from models.orders import (
    OrderProgress,
    RunEndRequest,
    RunEndResult,
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
#: Polls without finding the session in its run before the watch gives up on it.
MAX_MISSES = 5


class IngestActivities:
    """``robotarget`` on the worker's pool; ``settings.images.jpg_dir`` for previews,
    ``settings.orders`` for poll intervals."""

    def __init__(self, robotarget: RoboTarget, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.rt = robotarget
        self.sessionmaker = sessionmaker
        self.settings = settings

    # ------------------------------------------------------------------ activities

    @activity.defn(name="ingest.watch_session")
    async def watch_session(self, req: WatchSessionRequest) -> WatchSessionResult:
        """Ingest the session's frames every ``orders.watch_poll_interval`` seconds until Voyager
        lists it as finished (``result`` 1 OK, 2 aborted, 3 error), then once more, and return.
        A session its run does not list (``MAX_MISSES`` polls, one with ``sweep_only``) ends as an
        error after its frames are ingested.

        A dropped Voyager link, a timeout or the database unreachable is waited out (the pool
        reconnects) while heartbeating; the activity only ends by the session ending, by
        cancellation, by a refusal or bug, or by a worker death (then Temporal retries it after
        ``heartbeat_timeout`` and ingest resumes where the database says)."""
        poll = self.settings.orders.watch_poll_interval
        frames = misses = 0
        await clear_site_wait(self.sessionmaker, req.order_id, activity.info().task_queue)
        async with heartbeating(lambda: {"frames": frames}):
            while True:
                try:
                    frames += await self.ingest_session(req.order_id, req.session_guid)
                    info = await self._session(req.run_guid, req.session_guid)
                    if info is not None and info.finished:
                        frames += await self.ingest_session(req.order_id, req.session_guid)
                        progress = await self.progress(req.order_id)
                        log.info("session.watched", order_id=req.order_id, session_guid=req.session_guid,
                                 result=info.result, frames=frames)
                        return WatchSessionResult(session_guid=req.session_guid, ended=True, result=info.result,
                                                  exit_text=info.exit_text, frames_ingested=frames, progress=progress)
                    if info is None:
                        misses += 1
                        if misses >= (1 if req.sweep_only else MAX_MISSES):
                            progress = await self.progress(req.order_id)
                            return WatchSessionResult(session_guid=req.session_guid, ended=True,
                                                      result=wire.SESSION_ERROR,
                                                      exit_text="session not found in its run",
                                                      frames_ingested=frames, progress=progress)
                    else:
                        misses = 0
                except Exception as exc:
                    # Voyager or the database unreachable is waited out; anything else fails the attempt.
                    if not (isinstance(exc, _TRANSIENT) or db_unavailable(exc)):
                        raise
                    log.warning("session.watch_waiting", order_id=req.order_id, error=str(exc))
                await asyncio.sleep(poll)

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

    async def _sweep(self, req: SweepRequest) -> SweepResult:
        loop = asyncio.get_running_loop()
        until = loop.time() + self.settings.orders.sweep_wait_for_end
        frames = 0
        days = max(self.settings.orders.monitor_run_days, self.settings.billing.order_default_lifetime_days + 1)
        async with heartbeating(lambda: {"frames": frames}):
            targets = [req.target_guid, *(t for t in req.panel_target_guids if t != req.target_guid)]
            while True:
                sessions = []
                for guid in targets:  # a mosaic: every panel's Target
                    sessions += await self.rt.get_sessions_for_target(guid, self.settings.voyager.profile_name, days)
                if all(s.finished for s in sessions) or loop.time() >= until:
                    break
                await asyncio.sleep(self.settings.orders.watch_poll_interval)
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
            sessions = await self.rt.get_sessions_by_run(run_guid)
        except (VoyagerActionFailed, VoyagerRejected) as exc:
            log.warning("session.run_unknown", run_guid=run_guid, error=str(exc))
            return None
        return next((s for s in sessions if s.guid == session_guid), None)

    async def progress(self, order_id: int) -> OrderProgress:
        async with self.sessionmaker() as session:
            order = await lock_order(session, order_id)
            progress = await refresh_progress(session, order)
            await session.commit()
            return progress

    async def ingest_session(self, order_id: int, session_guid: str) -> int:
        """Ingest the frames of one session not yet in ``shot_done``; returns how many were new.
        Raises VoyagerConnectionError / VoyagerTimeout (the caller retries later)."""
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
            jpg = await self._store_jpg(order_id, frame)
            count += await self._insert(order_id, session_guid, frame, line, jpg)
        return count

    async def _store_jpg(self, order_id: int, frame: VoyagerShotDone) -> str | None:
        """Fetch and write the preview; None when Voyager has none (the frame is still ingested)."""
        try:
            data = await self.rt.get_shot_jpg(frame.guid, frame.filename)
        except (VoyagerActionFailed, VoyagerRejected) as exc:
            log.warning("frame.jpg_unavailable", order_id=order_id, shot_done_guid=frame.guid, error=str(exc))
            return None
        if not data:
            return None
        folder = Path(self.settings.images.jpg_dir) / f"order_{order_id}"
        path = folder / f"{frame.guid}.jpg"
        await asyncio.to_thread(_write_atomic, path, data)
        return str(path)

    async def _insert(self, order_id: int, session_guid: str, frame: VoyagerShotDone, line: OrderShot | None,
                      jpg: str | None) -> int:
        accepted = not frame.is_deleted
        filter_name = line.filter if line else _filter_name(frame.filter_index)
        fits = os.path.join(frame.path, frame.filename) if frame.path else frame.filename
        async with self.sessionmaker() as session:
            order = await lock_order(session, order_id)  # serializes concurrent ingests of one order
            row_id = (await sql(session,
                pg_insert(ShotDone.__table__).values(
                    order_id=order_id, session_guid=session_guid or frame.ref_guid_session,
                    shot_done_guid=frame.guid, shot_guid=line.shot_guid if line else (frame.ref_guid_shot or None),
                    filter=filter_name, exposure=frame.exposure, bin=frame.bin, hfd=_finite(frame.hfd),
                    star_index=_finite(frame.star_index), adu_min=_finite(frame.min), adu_max=_finite(frame.max),
                    adu_mean=_finite(frame.mean), filename=frame.filename, fits_path=fits or None, jpg_path=jpg,
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
                    "jpg": jpg is not None, "fits_path": fits,
                },
                "progress": progress.model_dump(mode="json"),
            }))
            await session.commit()
        log.info("frame.ingested", order_id=order_id, shot_done_guid=frame.guid, filter=filter_name,
                 hfd=frame.hfd, accepted=accepted, shots_done=progress.shots_done, shots_total=progress.shots_total)
        return 1


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


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
