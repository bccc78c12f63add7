"""Frame taken → SSE event delivered, for the end-to-end bench (bench report "Orders end to end").

"Taken" is when Voyager announces the frame: the simulator's ``NewFITReady`` dashboard event
(docs/voyager-protocol.md §4), read by a dashboard connection of the bench's own. "Delivered" is
when the order's ``GET /api/orders/{id}/events`` stream, opened by the bench right after the POST,
yields the ``progress`` event whose ``frame.fits_path`` is that file. Both instants are read with
``time.monotonic()`` in the bench process, so the difference is the whole path: the worker's watch
woken by the event, RoboTarget polled, the JPG fetched, the ``shot_done`` row and its OrderEvent
committed, PostgreSQL's NOTIFY, the API's catch-up query and the HTTP stream.

:func:`frame_waits` splits that path where a frame can wait (:data:`WAIT_STAGES`), from the wall
clock of the same machine: the order's workflow history (the monitor's signal, the submit's
return, the session watch scheduled and started) and the ``shot_done`` row's ``ingested_at``. A
frame stored before any watch or sweep of its order started was ingested by the observatory
monitor itself (activities/monitor_ingest.py): it waits only in the first stage and the last. A
watch already running when the frame is taken (it was woken by the frame) waits in none of the
stages before "watch started". (A frame the monitor stored after a watch started counts as the
watch's: the history cannot tell the two apart then.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError

from core.settings import VoyagerSettings
from core.voyager_clients import event_stream_from_settings

#: Goal: frames reach the SSE stream within this many seconds of being taken.
SSE_GOAL = 2.0
#: Where a frame waits between taken and delivered, in order (:func:`frame_waits`).
WAIT_STAGES = (
    ("taken → stored by the monitor", "the observatory monitor's wake and poll, then its own ingest: RoboTarget's "
                                      "frame list, the JPG, the files, the insert"),
    ("taken → signalled", "the observatory monitor's poll, then its signal to the order"),
    ("signalled → submit returned", "the order's own submit still running when its session came: Voyager ran "
                                    "the target before the submit activity returned"),
    ("submit returned → watch scheduled", "the order's workflow task (the worker's workflow-task queue)"),
    ("watch scheduled → started", "the activity task queue and the worker's activity slots"),
    ("watch started → stored", "the watch polling RoboTarget, fetching the JPG, storing files, the insert"),
    ("stored → delivered", "the commit's NOTIFY, the API's catch-up query, the HTTP stream"),
)
#: Activities that ingest a session's frames as it runs or once it ended.
_WATCHES = ("ingest.watch_session", "ingest.sweep_target", "ingest.close_target")
_SUBMIT = "voyager.submit_target"


@dataclass
class FrameLatency:
    """Instants (``time.monotonic()`` seconds) per FITS path: ``taken`` from Voyager, ``delivered``
    from the SSE streams."""

    taken: dict[str, float] = field(default_factory=dict)
    delivered: dict[str, float] = field(default_factory=dict)
    #: ``time.time() - time.monotonic()`` when the recording started: monotonic instants → wall clock.
    wall_offset: float = field(default_factory=lambda: time.time() - time.monotonic())
    streams: list[asyncio.Task] = field(default_factory=list)
    stream_errors: int = 0

    def latencies(self) -> list[float]:
        """Seconds from taken to delivered for every frame seen both ways."""
        return [self.delivered[f] - self.taken[f] for f in self.delivered if f in self.taken]

    def wall(self, monotonic: float) -> float:
        """A ``time.monotonic()`` instant of this process as a POSIX timestamp (seconds)."""
        return monotonic + self.wall_offset

    def follow(self, http: httpx.AsyncClient, api_key: str, order_id: int) -> None:
        """Open the order's SSE stream now and record each frame's delivery until the stream ends."""
        self.streams.append(asyncio.create_task(self._follow(http, api_key, order_id)))

    async def _follow(self, http: httpx.AsyncClient, api_key: str, order_id: int) -> None:
        try:
            async with http.stream("GET", f"/api/orders/{order_id}/events",
                                   headers={"Authorization": f"Bearer {api_key}"}, timeout=None) as r:
                data = ""
                async for line in r.aiter_lines():
                    if line.startswith("data:"):
                        data = line[5:].strip()
                    elif line == "" and data:
                        payload, data = json.loads(data), ""
                        fits = (payload.get("frame") or {}).get("fits_path")
                        if payload.get("kind") == "progress" and fits:
                            self.delivered.setdefault(fits, time.monotonic())
        except (httpx.HTTPError, json.JSONDecodeError):
            self.stream_errors += 1

    async def close(self, timeout: float = 10.0) -> None:
        """Wait ``timeout`` s for the streams to end (they end once their order is final), then stop them."""
        if self.streams:
            _done, pending = await asyncio.wait(self.streams, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


async def fetch_histories(client: Client, order_ids: list[int]) -> dict[int, WorkflowHistory]:
    """The ``order-<id>`` workflow histories (orders whose workflow is gone are left out)."""
    out: dict[int, WorkflowHistory] = {}
    for order_id in order_ids:
        with contextlib.suppress(RPCError):
            out[order_id] = await client.get_workflow_handle(f"order-{order_id}").fetch_history()
    return out


async def frame_waits(rec: FrameLatency, engine: AsyncEngine,
                      histories: dict[int, WorkflowHistory]) -> dict[str, list[float]]:
    """Seconds each delivered frame of the orders in ``histories`` spent in each of
    :data:`WAIT_STAGES` (stage label → one value per frame). Instants after taken are clamped to be
    monotonic (a watch already running when the frame was taken spends 0 s in the stages before
    it); each frame's stages add up to its latency."""
    delivered = {f: t for f, t in rec.delivered.items() if f in rec.taken}
    if not delivered:
        return {label: [] for label, _ in WAIT_STAGES}
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text(
            "SELECT fits_path, order_id, extract(epoch FROM ingested_at) AS stored FROM shot_done "
            "WHERE fits_path = ANY(:paths) AND order_id = ANY(:ids)"),
            {"paths": list(delivered), "ids": list(histories)})).all()
    marks = {order_id: _watch_marks(h) for order_id, h in histories.items()}
    out: dict[str, list[float]] = {label: [] for label, _ in WAIT_STAGES}
    for r in rows:
        taken = rec.wall(rec.taken[r.fits_path])
        stored = float(r.stored)
        order_marks = marks.get(r.order_id, [])
        by_monitor = not any(k == "started" and t <= stored for k, t in order_marks)
        # The signal, schedule and start of the watch that ingested the frame: the last of each at or
        # before the frame was stored (none of them for a frame the monitor stored).
        instants = [taken, stored if by_monitor else taken]
        for kind in ("signalled", "submitted", "scheduled", "started"):
            at = [t for k, t in order_marks if k == kind and t <= stored and not by_monitor]
            instants.append(max(at) if at else instants[-1])
        instants += [stored, rec.wall(delivered[r.fits_path])]
        clamped = [instants[0]]
        for t in instants[1:]:
            clamped.append(max(t, clamped[-1]))
        for (label, _), a, b in zip(WAIT_STAGES, clamped, clamped[1:]):
            out[label].append(b - a)
    return out


def _watch_marks(history: WorkflowHistory) -> list[tuple[str, float]]:
    """(``signalled``/``submitted``/``scheduled``/``started``, POSIX seconds) of a workflow history:
    session signals, the submit's completion, and the schedule and start of its session watches
    and sweeps."""
    e_type = EventType
    watches: set[int] = set()
    submits: set[int] = set()
    marks: list[tuple[str, float]] = []
    for e in history.events:
        at = e.event_time.ToDatetime().timestamp() if e.event_time else math.nan
        if e.event_type == e_type.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED and \
                e.workflow_execution_signaled_event_attributes.signal_name.startswith("session_"):
            marks.append(("signalled", at))
        elif e.event_type == e_type.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED and \
                e.activity_task_scheduled_event_attributes.activity_type.name in _WATCHES:
            watches.add(e.event_id)
            marks.append(("scheduled", at))
        elif e.event_type == e_type.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED and \
                e.activity_task_scheduled_event_attributes.activity_type.name == _SUBMIT:
            submits.add(e.event_id)
        elif e.event_type == e_type.EVENT_TYPE_ACTIVITY_TASK_COMPLETED and \
                e.activity_task_completed_event_attributes.scheduled_event_id in submits:
            marks.append(("submitted", at))
        elif e.event_type == e_type.EVENT_TYPE_ACTIVITY_TASK_STARTED and \
                e.activity_task_started_event_attributes.scheduled_event_id in watches:
            marks.append(("started", at))
    return marks


def waits_table(waits: dict[str, list[float]]) -> list[str]:
    """Markdown lines: each stage's median and p99 over every frame (0 for a frame that did not pass
    there), the frames that waited there at all, and the stage's share of the summed latency."""
    total = sum(sum(v) for v in waits.values()) or math.nan
    lines = ["| where the frame waits | p50 s | p99 s | frames waiting there | share of the latency |",
             "|---|---:|---:|---:|---:|"]
    for label, what in WAIT_STAGES:
        v = waits.get(label, [])
        p50 = statistics.median(v) if v else math.nan
        p99 = statistics.quantiles(v, n=100, method="inclusive")[98] if len(v) > 1 else (v[0] if v else math.nan)
        waited = sum(x > 0 for x in v)
        lines.append(f"| {label} ({what}) | {p50:.2f} | {p99:.2f} | {waited} | {sum(v) / total:.0%} |")
    return lines


@contextlib.asynccontextmanager
async def frame_latency(voyager: VoyagerSettings) -> AsyncIterator[FrameLatency]:
    """A :class:`FrameLatency` whose ``taken`` fills from a dashboard connection to ``voyager``
    while the ``async with`` body runs."""
    out = FrameLatency()
    stream = event_stream_from_settings(voyager, names={"NewFITReady"})
    await stream.start(timeout=30.0)  # connected before the first order can take a frame

    async def listen() -> None:
        async for event in stream:
            path = str(event.data.get("File") or "")
            if path:
                out.taken.setdefault(path, time.monotonic())

    task = asyncio.create_task(listen())
    try:
        yield out
    finally:
        await out.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await stream.close()
