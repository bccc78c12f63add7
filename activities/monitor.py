"""The observatory monitor's watch: one per telescope, however many orders wait.

It polls RoboTarget's run list and the sessions of the recent runs (``RemoteRoboTargetGetRunList``,
``RemoteRoboTargetGetSessionListByRun``, docs/voyager-protocol.md §7), waking early on dashboard events
(``Signal``, ``NewFITReady``; §4), maps each session to its order by target GUID (``order.target_guid``,
or a mosaic panel's ``order_panel.target_guid``)
and signals ``order-<id>`` once per session, when it sees it finished: ``session_ended``, after it
has **closed the night** — ingested the session's last frames (awaited, :meth:`SessionIngests.finish`),
recomputed the order's progress (``activities/progress.py``) and written the night's end status —
carrying that progress, so the order decides without a watch activity of its own (a night is one
signal and its workflow task in the order's history, docs/order-workflow.md, step 3). Voyager's
load is therefore one run-list poll per interval per telescope, whatever the number of waiting orders.

**Status.** On first sight of a session running, the monitor writes the order's ``running`` (with
its ``status`` event, ``activities/session_status.py``) and records the session; no signal (the
order has nothing to do while it runs). When the session ends with shots left, ``submitted`` with
the waiting reason (``waiting for the next night`` for a multi-night plan, ``… the rest of the
night`` for a one-night plan, then the exit text) — written on an order already ``submitted`` too
(its session ran while it was ``held``, so it never showed ``running``): the reason and a ``status``
event, so the order says what it waits for; not while the order runs in a later session (closed
after that one began: a held order's next night, a mosaic's next panel), nor on a settling or final
order. An order whose submit has not returned (``held``: Voyager may start the target before) is
left for the next poll: a session of it still running once it is ``submitted`` is taken as first
seen then (``running``, its frames ingested), one that ended is closed then; the monitor without
an ingest (tests that count commands), or a session whose ingest fails other than by an outage (a refusal, the
image store), signals ``session_ended`` without progress: the order's own watch ingests it then, as
it did before. The closes run in the background of the polls (up to ``SIGNAL_CONCURRENCY`` at a
time), so one order's last ingest never delays the poll that finds the next session; an outage
(Voyager, the database, Temporal) during a close is logged: nothing is signalled or recorded, and a
later poll closes the night again.

**Frames.** A running session that is new or announced a frame (``NewFITReady`` since the last poll,
or its progress moved) is ingested at once, in the background of the poll
(``activities/monitor_ingest.py``), when its order is ``running``; a ``NewFITReady`` also starts
the ingest of the sessions the last poll saw running, before the poll it wakes. So a frame reaches
the order's event stream without waiting for any workflow task (bench/report.md, section 1). A
session seen ended is ingested to its last frame before its signal (above), when its order is
``submitted`` or ``running`` (a settling order's final sweep ingests before billing). The final
sweep still ingests every frame; the ``shot_done`` insert keeps each frame once whoever gets there
first. Voyager's extra load: one
``RemoteRoboTargetGetShotDoneBySessionList`` per such session and poll or frame (none while orders
only wait).

Each session's last recorded state is kept in ``voyager_session`` (the ended row is written *after*
the signal): a monitor that crashed between the two closes the night again (the ingest finds nothing
new, the status is already written) and re-sends the signal, and the order workflow ignores a signal
it already has (at-least-once delivery, deduplicated by session GUID). A session whose
``session_started`` an earlier monitor sent (recorded running) is closed the same way at its end.

**Catch-up.** The regular poll only sees the runs of the last ``orders.monitor_run_days`` days; a
session that ran and ended while the monitor could not work (database or Temporal down, worker
dead, Voyager unreachable) may be older than that once the monitor is back (a multi-day outage, or
the simulator fast-forwarding an idle day), and nothing else would ever signal it. So a catch-up
pass runs at the start of every watch activity (i.e. after any monitor failure or restart), after
every failed poll once polls work again, and every ``orders.monitor_catchup_interval`` seconds: it
reads the non-terminal orders that wait for or are in a session (``submitted``/``running`` with a
target GUID) and, when there is one, polls exactly like the regular poll (same dedup rules against
``voyager_session``) over a look-back covering the whole life of the oldest of them
(:func:`catch_up_days`). Voyager's load per catch-up: nothing when no order waits; otherwise one
``RemoteRoboTargetGetRunList`` plus one ``RemoteRoboTargetGetSessionListByRun`` per run of the
look-back that this worker has not yet seen closed and fully signalled, shared by all waiting
orders (not per order). It runs inside the activity, so it adds nothing to workflow history.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities._db import db_unavailable, sql
from activities._heartbeat import heartbeating
from activities.monitor_ingest import SessionIngests, finish_or_cancel
from activities.observatory_status import ObservatoryStatusRecorder
from activities.order_store import lock_order, status_event
from activities.progress import store_progress
from activities.session_status import move_night_status, running_reason, waiting_reason
from billing.errors import UnknownPlan
from billing.plans import get_plan
from core.settings import Settings
from models.db import Order, OrderPanel, VoyagerSession
from models.orders import (
    FINAL_STATUSES,
    MonitorWatchRequest,
    MonitorWatchResult,
    OrderProgress,
    OrderStatus,
    SessionSignal,
)
from models.temporal_contract import order_workflow_id
from voyager import wire
from voyager.errors import VoyagerConnectionError, VoyagerError, VoyagerTimeout
from core.voyager_clients import event_stream_from_settings
from voyager.robotarget import RoboTarget
from voyager.types import RunInfo, SessionInfo

log = structlog.get_logger(__name__)
#: Dashboard events after which a poll is worth doing at once (a session or frame changed).
WAKE_EVENTS = frozenset({"Signal", "NewFITReady", "ShutDown"})
#: Real seconds between two polls at least, however many events wake the monitor (an accelerated
#: simulator emits several per second).
MIN_POLL_GAP = 0.2
#: Signals (each with its ``voyager_session`` row) in flight at once in one poll. A burst of orders
#: ends sessions faster than one signal round trip after another can announce them (a frame then
#: waited for the monitor, not for the telescope: bench/report.md, section 1); the rows' database
#: connections stay within the worker's pool.
SIGNAL_CONCURRENCY = 8
#: Statuses of an order that waits for a session or is in one: what the catch-up looks for.
WAITING_STATUSES = (OrderStatus.SUBMITTED.value, OrderStatus.RUNNING.value)
#: The dashboard event that announces a frame: the next poll ingests the running sessions too.
FRAME_EVENT = "NewFITReady"


def catch_up_days(orders: Iterable[tuple[datetime, datetime | None]], *, now: datetime, run_days: int,
                  lifetime_days: int) -> int:
    """``Days`` of ``RemoteRoboTargetGetRunList`` covering the whole life of every order given as
    (``created_at``, ``date_end`` or None), UTC: from its creation to the later of now and its
    deadline (``date_end``, else ``created_at`` + ``lifetime_days``), plus one day for a run begun
    the evening before; never less than ``run_days``. Days: whole days, ``≥ run_days``."""
    days = run_days
    for created_at, date_end in orders:
        deadline = date_end or created_at + timedelta(days=lifetime_days)
        span = max(now, deadline) - created_at
        days = max(days, math.ceil(span.total_seconds() / 86400) + 1)
    return days


def _is_repeat(plan: str | None) -> bool:
    """Whether the order's plan is multi-night (``IsRepeat``, billing/plans.py); an unknown plan
    name reads as one night (it only words the waiting reason)."""
    try:
        return get_plan(plan).repeat
    except UnknownPlan:
        return False


def _poll_failure(exc: BaseException) -> bool:
    """True for a failure a later poll can get past (Voyager, the database or Temporal unreachable)."""
    return isinstance(exc, (VoyagerError, RPCError)) or db_unavailable(exc)


class MonitorActivities:
    """``client``: Temporal client used to signal order workflows; ``events``: start a dashboard
    :class:`voyager.events.EventStream` to wake early (off in tests that count commands);
    ``ingest``: ``(order_id, session_guid) -> frames ingested`` (``IngestActivities.ingest_session``)
    for the monitor's own frame ingest (module docstring), None = frames only through the watches."""

    def __init__(self, robotarget: RoboTarget, sessionmaker: async_sessionmaker[AsyncSession], client: Client,
                 settings: Settings, *, events: bool = True,
                 ingest: Callable[[int, str], Awaitable[int]] | None = None) -> None:
        self.rt = robotarget
        self.sessionmaker = sessionmaker
        self.client = client
        self.settings = settings
        self.events = events
        self._closed_runs: set[str] = set()
        self._done_sessions: set[str] = set()  # signalled and recorded finished: nothing more to do
        self.status = ObservatoryStatusRecorder(sessionmaker, settings.orders.telescope)
        self.ingests = SessionIngests(ingest) if ingest is not None else None
        self._frame_announced = False  # a NewFITReady came since the last poll began
        #: Session GUID → order id of the sessions the last poll saw running (orders not settling).
        self._running: dict[str, int] = {}
        #: Session GUID → the close of its night in flight (:meth:`_end_session`, in the background of
        #: the polls: one order's last ingest never delays the poll that finds the next session).
        self._closing: dict[str, asyncio.Task[None]] = {}
        self._close_gate = asyncio.Semaphore(SIGNAL_CONCURRENCY)
        self._closes_signalled = 0  # signals sent by the closes (added to the watch's tally)

    @activity.defn(name="monitor.watch_observatory")
    async def watch_observatory(self, req: MonitorWatchRequest) -> MonitorWatchResult:
        """Poll and signal for ``orders.monitor_run_for`` seconds (at most 90 min), heartbeating,
        then return so the monitor workflow can continue as new with a fresh history."""
        cfg = self.settings.orders
        loop = asyncio.get_running_loop()
        until = loop.time() + min(cfg.monitor_run_for, 90 * 60)
        tally = MonitorWatchResult(polls=0, signals_sent=0, sessions_seen=0)
        self._closes_signalled = 0
        wake = asyncio.Event()
        stream_task = asyncio.create_task(self._listen(wake)) if self.events else None
        # A new watch activity follows a start, a restart after failures or a worker death: whatever
        # ran meanwhile may be older than the poll's window, so it catches up first.
        catch_up_at = loop.time()
        try:
            async with heartbeating(lambda: tally.polls):
                while loop.time() < until:
                    wake.clear()  # an event during this poll triggers the next one at once
                    try:
                        if loop.time() >= catch_up_at:
                            _seen, sent = await self.catch_up()
                            tally.signals_sent += sent
                            catch_up_at = loop.time() + cfg.monitor_catchup_interval
                        seen, sent = await self.poll_once()
                        tally.polls += 1
                        tally.sessions_seen = max(tally.sessions_seen, seen)
                        tally.signals_sent += sent
                        await self._record_status(True, "answered the run-list poll")
                    except Exception as exc:
                        if not _poll_failure(exc):
                            raise  # a defect, not an outage: the activity's retry policy decides
                        # The database, Temporal or Voyager is away: keep polling (no activity
                        # failure, no restart pause), and catch up once a poll works again.
                        log.warning("monitor.poll_failed", telescope=req.telescope, error=str(exc))
                        await self._record_status(False, f"{type(exc).__name__}: {exc}")
                        catch_up_at = loop.time()
                    await asyncio.sleep(min(MIN_POLL_GAP, cfg.monitor_poll_interval))
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(min(cfg.monitor_poll_interval, max(0.0, until - loop.time()))):
                            await wake.wait()
        finally:
            if stream_task is not None:
                stream_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await stream_task
            await self._closes_done()
            if self.ingests is not None:
                await self.ingests.close()
        tally.signals_sent += self._closes_signalled
        log.info("monitor.watch_done", telescope=req.telescope, polls=tally.polls, signals=tally.signals_sent,
                 frames=self.ingests.frames if self.ingests is not None else 0)
        return tally

    async def _record_status(self, ok: bool, detail: str) -> None:
        # Health reporting must never stop the watch: a database hiccup only costs a stale row.
        try:
            await self.status.record(ok, detail)
        except Exception as exc:  # noqa: BLE001
            log.warning("monitor.status_not_recorded", error=str(exc))

    async def _listen(self, wake: asyncio.Event) -> None:
        async with event_stream_from_settings(self.settings.voyager, names=WAKE_EVENTS) as stream:
            async for event in stream:
                if event.name == FRAME_EVENT:
                    self._frame_announced = True
                    # The sessions last seen running get their frame now, without waiting for a poll.
                    if self.ingests is not None:
                        for session_guid, order_id in self._running.items():
                            self.ingests.kick(order_id, session_guid)
                wake.set()

    # ------------------------------------------------------------------ one poll

    async def catch_up(self) -> tuple[int, int]:
        """The catch-up pass (module docstring): when an order waits for or is in a session, one
        poll over the whole life of the oldest such order. Returns (sessions of known orders seen,
        signals sent); (0, 0) without a Voyager call when no order waits. Raises what a poll raises."""
        async with self.sessionmaker() as db:
            waiting = (await sql(db,
                sa.select(Order.created_at, Order.date_end)
                .where(Order.target_guid.is_not(None))  # type: ignore[union-attr]
                .where(Order.status.in_(WAITING_STATUSES))  # type: ignore[attr-defined]
            )).all()
        if not waiting:
            return 0, 0
        days = catch_up_days([(r.created_at, r.date_end) for r in waiting], now=datetime.now(UTC),
                             run_days=self.settings.orders.monitor_run_days,
                             lifetime_days=self.settings.billing.order_default_lifetime_days)
        seen, sent = await self.poll_once(days)
        log.info("monitor.caught_up", orders_waiting=len(waiting), days=days, sessions_seen=seen, signals=sent)
        return seen, sent

    async def poll_once(self, days: int | None = None) -> tuple[int, int]:
        """One pass over the runs of the last ``days`` days (default ``orders.monitor_run_days``),
        skipping runs this worker already saw closed and fully signalled; returns (sessions of known
        orders seen, signals sent)."""
        days = days or self.settings.orders.monitor_run_days
        # Taken before the lists are read: a frame announced during this poll is ingested by the next.
        framed, self._frame_announced = self._frame_announced, False
        runs = await self.rt.get_run_list(self.settings.voyager.profile_name, days)
        seen = sent = 0
        for run in runs:
            if run.guid in self._closed_runs:
                continue
            sessions = await self.rt.get_sessions_by_run(run.guid)
            s, n, settled = await self._handle_run(run, sessions, framed)
            seen += s
            sent += n
            if run.end is not None and settled:
                self._closed_runs.add(run.guid)  # nothing more can change in it
                self._done_sessions.difference_update(s.guid for s in sessions)  # never listed again
        return seen, sent

    async def _handle_run(self, run: RunInfo, sessions: list[SessionInfo],
                          framed: bool = False) -> tuple[int, int, bool]:
        """Signal (and ingest, module docstring) the sessions of ``run`` that changed; ``framed``: a
        frame was announced, so the running sessions are ingested too. Returns (sessions of known
        orders seen, signals sent, every session finished)."""
        every_finished = all(s.finished for s in sessions)
        # A night's run lists every session of the night: those already signalled and recorded
        # finished need nothing more, so they cost no database lookup on every later poll.
        done = sum(s.guid in self._done_sessions for s in sessions)
        sessions = [s for s in sessions if s.guid not in self._done_sessions]
        targets = {s.ref_guid_target for s in sessions if s.ref_guid_target}
        if not targets:
            return done, 0, every_finished
        async with self.sessionmaker() as db:
            live = Order.status.not_in([s.value for s in FINAL_STATUSES])  # type: ignore[attr-defined]
            found = (await sql(db,
                sa.select(Order.target_guid, Order.id, Order.status, Order.plan)
                .where(Order.target_guid.in_(targets)).where(live)  # type: ignore[union-attr]
            )).all()
            # A mosaic's panels are Targets of their own (docs/mosaics.md).
            found += (await sql(db,
                sa.select(OrderPanel.target_guid, OrderPanel.order_id, Order.status, Order.plan)
                .join(Order, Order.id == OrderPanel.order_id)
                .where(OrderPanel.target_guid.in_(targets)).where(live)  # type: ignore[union-attr]
            )).all()
            rows = {r.session_guid: r for r in (await db.exec(
                select(VoyagerSession).where(VoyagerSession.session_guid.in_([s.guid for s in sessions]))  # type: ignore[attr-defined]
            )).all()}
        orders = {r[0]: r[1] for r in found}
        statuses = {r[0]: r[2] for r in found}
        repeats = {r[0]: _is_repeat(r[3]) for r in found}
        seen = done
        steps = []
        waiting = False  # a finished session left for a later poll (its order's submit not returned)
        for s in sessions:
            order_id = orders.get(s.ref_guid_target)
            row = rows.get(s.guid)
            if order_id is None:
                self._running.pop(s.guid, None)  # its order ended
                continue
            seen += 1
            status = statuses[s.ref_guid_target]
            # A session first seen while its order was ``held`` (Voyager ran it before the submit
            # returned) is seen anew once the order is ``submitted``: running, its frames ingested.
            first_seen_running = not s.finished and (
                row is None or (row.result == wire.SESSION_RUNNING and status == OrderStatus.SUBMITTED.value))
            # The order's stream shows ``running`` before the frames of a session seen running (the
            # monitor writes it on first sight, below). Left to the order's final sweep: a settling
            # order (it ingests before the frames are billed).
            if first_seen_running:
                steps.append(self._start_session(order_id, s, run, status))
                continue
            if row is not None and row.result != 0:
                self._done_sessions.add(s.guid)  # closed already
                self._running.pop(s.guid, None)
                continue
            if s.finished:  # first seen ended, or recorded running until now: close the night
                self._running.pop(s.guid, None)
                waiting = True  # the run is settled once a later poll finds the session recorded ended
                # Voyager ran it before the submit returned (``held``): a later poll closes it.
                if status != OrderStatus.HELD.value and s.guid not in self._closing:
                    self._close_later(order_id, s, run, status, repeats[s.ref_guid_target])
                continue
            ingestible = status == OrderStatus.RUNNING.value
            if self.ingests is not None and ingestible and (row is None or row.progress != s.progress or framed):
                self.ingests.kick(order_id, s.guid)
            if ingestible:
                self._running[s.guid] = order_id
            else:
                self._running.pop(s.guid, None)
            if row is not None and row.progress != s.progress:
                steps.append(self._update_row(s, run, order_id))
        sent = sum(await _all_of(steps, SIGNAL_CONCURRENCY))
        return seen, sent, every_finished and not waiting

    async def _start_session(self, order_id: int, s: SessionInfo, run: RunInfo, status: str) -> int:
        """A session first seen running, its order ``status`` when the poll read it: the order becomes
        ``running`` (and its ``status`` event; nothing unless it is ``submitted``,
        ``activities/session_status.py``), then, once it is, the session's frames are ingested in the
        background; the session is recorded running. No signal: the order learns of the night at its
        end (:meth:`_end_session`). 0 signals sent."""
        moved = await move_night_status(self.sessionmaker, order_id, OrderStatus.RUNNING, running_reason(s.guid))
        if self.ingests is not None and (moved or status == OrderStatus.RUNNING.value):
            self._running[s.guid] = order_id
            self.ingests.kick(order_id, s.guid)
        await self._store(s, run, order_id)
        return 0

    def _close_later(self, order_id: int, s: SessionInfo, run: RunInfo, status: str, is_repeat: bool) -> None:
        """:meth:`_end_session` in the background, once per session at a time. An outage is logged:
        nothing was signalled or recorded, so a later poll closes the night again."""

        async def close() -> None:
            try:
                async with self._close_gate:
                    self._closes_signalled += await self._end_session(order_id, s, run, status, is_repeat)
            except Exception as exc:  # noqa: BLE001 - an outage (or Temporal away): the next poll retries
                log.warning("monitor.close_failed", order_id=order_id, session_guid=s.guid, error=str(exc))
            finally:
                self._closing.pop(s.guid, None)

        self._closing[s.guid] = asyncio.create_task(close(), name=f"monitor-close-{s.guid}")

    async def _closes_done(self, grace: float = 10.0) -> None:
        """Let the closes in flight finish for up to ``grace`` seconds, then cancel the rest (a close
        cut short recorded nothing after its signal: the next monitor closes the night again)."""
        await finish_or_cancel(list(self._closing.values()), grace)

    async def _end_session(self, order_id: int, s: SessionInfo, run: RunInfo, status: str, is_repeat: bool) -> int:
        """Close the night of a finished session of a live order (``status`` as the poll read it,
        ``is_repeat``: its plan's): for a ``submitted``/``running`` order, ingest the session's last
        frames (awaited), recompute the progress and, with shots left, write ``submitted`` with the
        waiting reason; then signal ``session_ended`` with that progress and record the session
        ended. A settling order, a monitor without ingest, or an ingest failing other than by an
        outage: the signal carries no progress (the order's watch ingests it). Raises an outage
        (Voyager, the database, Temporal): nothing signalled or recorded. 1 when signalled."""
        progress: OrderProgress | None = None
        if self.ingests is not None and status in WAITING_STATUSES:
            try:
                await self.ingests.finish(order_id, s.guid)
                progress = await store_progress(self.sessionmaker, order_id)
                if not progress.all_done:
                    await self._write_night_end(order_id, s.guid, waiting_reason(is_repeat, s.exit_text))
            except Exception as exc:
                if isinstance(exc, (VoyagerConnectionError, VoyagerTimeout)) or db_unavailable(exc):
                    raise
                log.warning("monitor.session_not_closed", order_id=order_id, session_guid=s.guid, error=str(exc))
                progress = None
        return await self._signal_and_store(order_id, "session_ended", s, run, progress)

    async def _write_night_end(self, order_id: int, session_guid: str, reason: str) -> bool:
        """The end of the night of ``session_guid`` on its order, once, in one locked transaction:
        ``submitted`` with ``reason`` (the waiting reason) and its ``status`` event — from ``running``
        in that session, or on an order already ``submitted`` that does not say it yet (its session
        ran while it was ``held``, so it never showed ``running``). Nothing when the order runs in
        another session (a later one began before this one was closed: the order shows that one),
        or is neither ``submitted`` nor ``running``. True when written. Raises what the database
        raises (the close is tried again at a later poll)."""
        async with self.sessionmaker() as db:
            order = await lock_order(db, order_id)
            in_another = (order.status_reason.startswith(running_reason(""))
                          and order.status_reason != running_reason(session_guid))
            running_here = order.status == OrderStatus.RUNNING.value and not in_another
            unsaid = order.status == OrderStatus.SUBMITTED.value and order.status_reason != reason
            if not (running_here or unsaid):
                return False
            order.status, order.status_reason, order.updated_at = OrderStatus.SUBMITTED.value, reason, datetime.now(UTC)
            db.add(order)
            db.add(status_event(order, OrderStatus.SUBMITTED, reason, final=False))
            await db.commit()
        log.info("order.status_changed", order_id=order_id, status=OrderStatus.SUBMITTED.value, reason=reason)
        return True

    async def _signal_and_store(self, order_id: int, name: str, s: SessionInfo, run: RunInfo,
                                progress: OrderProgress | None = None) -> int:
        """Signal, then write the row (a crash between the two re-sends the signal); 1 when sent."""
        sent = await self._signal(order_id, name, s, run, progress)
        await self._store(s, run, order_id)
        return int(sent)

    async def _signal(self, order_id: int, name: str, s: SessionInfo, run: RunInfo,
                      progress: OrderProgress | None = None) -> bool:
        handle = self.client.get_workflow_handle(order_workflow_id(order_id))
        payload = SessionSignal(session_guid=s.guid, run_guid=run.guid, target_guid=s.ref_guid_target,
                                result=s.result, started_at=s.start, ended_at=s.end, exit_text=s.exit_text,
                                progress=progress)
        try:
            await handle.signal(name, payload)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:  # the order's workflow already closed
                log.info("monitor.order_closed", order_id=order_id, session_guid=s.guid)
                return False
            raise
        log.info("monitor.signalled", order_id=order_id, signal=name, session_guid=s.guid, result=s.result,
                 progress=progress is not None)
        return True

    async def _store(self, s: SessionInfo, run: RunInfo, order_id: int) -> None:
        """Upsert the ``voyager_session`` row with what Voyager says now."""
        values = dict(order_id=order_id, session_guid=s.guid, run_guid=run.guid, target_guid=s.ref_guid_target,
                      started_at=s.start, ended_at=s.end, result=s.result, exit_text=s.exit_text[:2000],
                      progress=float(s.progress))
        async with self.sessionmaker() as db:
            await sql(db, pg_insert(VoyagerSession.__table__).values(**values).on_conflict_do_update(
                index_elements=["session_guid"],
                set_={k: values[k] for k in ("ended_at", "result", "exit_text", "progress")},
            ))
            await db.commit()

    async def _update_row(self, s: SessionInfo, run: RunInfo, order_id: int) -> int:
        """A signalled session's row brought up to date (no signal: 0 sent)."""
        await self._store(s, run, order_id)
        return 0


async def _all_of(steps: list[Coroutine[Any, Any, int]], limit: int) -> list[int]:
    """Run ``steps`` at most ``limit`` at a time, every one to its end; then raise the first
    failure, if any (the poll's caller waits outages out; what succeeded is recorded)."""
    gate = asyncio.Semaphore(limit)

    async def one(step: Coroutine[Any, Any, int]) -> int:
        async with gate:
            return await step

    results = await asyncio.gather(*(one(step) for step in steps), return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return [r for r in results if isinstance(r, int)]
