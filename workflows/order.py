"""``OrderWorkflow``: one durable workflow per observation order (id ``order-<order id>``).

Life cycle (docs/order-workflow.md; replaces the former platform's PrepareObservation / SyncVoyagerSession / FinalizeSession
jobs and the stale-target sweep):

1. price + hold the credits (``rejected`` with the shortfall when the customer cannot pay);
2. store GUIDs from ``workflow.uuid4()`` on the order, then submit Set/Target/Shots to RoboTarget
   (``failed`` + hold released when Voyager refuses);
3. wait — a condition on signals, no activity, no poll — until the observatory monitor signals
   that a session of our target ended: the monitor has ingested its frames and written the night's
   status changes, and the signal carries the order's progress (a night costs one signal and its
   workflow task, ``contract.PATCH_ORDER_NIGHT_FROM_MONITOR``). A session signalled without progress
   (``session_started``, an older monitor, a session the monitor could not ingest) is ingested by a
   session watch activity, as orders started before that patch do for every session;
4. repeat while shots remain and the plan allows more nights (``is_repeat``);
5. settle with ``billing.settlement``, disable the target, write the report, final status.

What always runs together is one step (``contract.PATCH_ORDER_FEWER_STEPS``; orders started before
it replay their separate steps): the hold also stores the GUIDs and ``held``, the submit writes
``submitted``, ``ingest.close_target`` writes ``settling``, stops and sweeps the target, and
``ledger.settle_and_finalize`` settles and finalizes.

Control: ``abort`` as an update (validated: refused once settling/done) and as a signal, one effect;
a deadline timer (date window end or default lifetime) that expires the order; query ``status``;
search attributes ``CustomerId``/``OrderStatus``/``TargetName``/``Plan`` and a ``summary`` memo.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError as FailureTimeout, TimeoutType

with workflow.unsafe.imports_passed_through():
    from workflows import _options as opt  # constants only: one copy per worker, not one per workflow
    from activities.ingest import IngestActivities
    from activities.ledger_ops import LedgerActivities
    from activities.link_wait import SiteWaitActivities
    from activities.order_store import OrderStoreActivities
    from activities.session_status import WAITING_NEXT_NIGHT as _WAITING_NEXT_NIGHT
    from activities.session_status import WAITING_REST_OF_NIGHT as _WAITING_REST_OF_NIGHT
    from activities.voyager_ops import VoyagerActivities
    from models import temporal_contract as contract
    from models.billing import SettlementOutcome
    from models.customer_sets import default_set_guid, default_set_name, set_tag
    from models.orders import (
        NO_ABORT_STATUSES,
        AbortRecord,
        AbortRequest,
        AbortResult,
        AbortRole,
        CloseOrderRequest,
        ClosedOrder,
        CloseTargetRequest,
        CloseTargetResult,
        FinalizeRequest,
        GuidAssignment,
        HoldRequest,
        HoldResult,
        OrderProgress,
        OrderRef,
        OrderReport,
        OrderSnapshot,
        OrderStatus,
        OrderStatusView,
        OrderWorkflowInput,
        OrderWorkflowResult,
        RunEndRequest,
        SessionSignal,
        SessionView,
        SettleRequest,
        SettleResult,
        SiteWait,
        StatusChange,
        StatusQuery,
        StopTargetRequest,
        SubmitPanel,
        SubmitRequest,
        SubmitResult,
        SubmitShot,
        SweepRequest,
        WatchSessionRequest,
        WatchSessionResult,
        abort_role,
    )

SESSION_OK, SESSION_ABORTED, SESSION_ERROR = 1, 2, 3
_SESSION_OUTCOME = {
    SESSION_OK: SettlementOutcome.partial,
    SESSION_ABORTED: SettlementOutcome.voyager_abort,
    SESSION_ERROR: SettlementOutcome.voyager_error,
}


def set_guid_for(customer_id: int) -> str:
    """The customer's default Set GUID (``models.customer_sets.default_set_guid``)."""
    return default_set_guid(customer_id)


def _failure(err: ActivityError | ApplicationError | FailureTimeout) -> tuple[str, str, Any]:
    """(ApplicationError type, message, first detail) of an activity failure's cause (a failed
    local activity raises its ApplicationError itself, not wrapped in an ActivityError; a timed-out
    one its TimeoutError, type "")."""
    cause = err if isinstance(err, (ApplicationError, FailureTimeout)) else err.cause
    if isinstance(cause, ApplicationError):
        return cause.type or "", cause.message, cause.details[0] if cause.details else None
    return type(cause).__name__ if cause else "", str(cause or err), None


def _not_picked_up(err: ActivityError) -> bool:
    """True when no worker took the activity within its schedule-to-start timeout (a site worker
    that is down, network mode)."""
    return isinstance(err.cause, FailureTimeout) and err.cause.type == TimeoutType.SCHEDULE_TO_START


@workflow.defn(name=contract.ORDER_WORKFLOW)
class OrderWorkflow:
    @workflow.init
    def __init__(self, inp: OrderWorkflowInput) -> None:
        self._inp = inp
        self._status = OrderStatus.PENDING
        self._phase = "starting"
        self._reason = ""
        # The order as loaded, until its submit is built: then only what later steps read stays
        # (a waiting order's memory, bench/worker_memory.py).
        self._order: OrderSnapshot | None = None
        self._telescope: str | None = None
        self._site: str | None = None  # the site worker's queue (network mode), else None
        self._hold: HoldResult | None = None
        self._guids: GuidAssignment | None = None
        self._submitted = False  # a submit attempt ran: the target may exist in Voyager
        self._sessions: dict[str, SessionView] = {}
        self._session_failures: dict[str, int] = {}
        self._session_retry_at: dict[str, datetime] = {}  # a failed watch is due again then
        self._night_over: Any = None  # wait_run_end handle: a one-night order waits for its dawn
        self._abort: AbortRequest | None = None  # the abort that takes effect
        self._abort_key: tuple[int, str] | None = None
        self._abort_candidates: list[tuple[tuple[int, str], AbortRequest]] = []
        self._abort_signals = 0
        self._deadline: datetime | None = None
        self._deadline_reached = False
        self._progress: OrderProgress | None = None
        self._settled: SettleResult | None = None
        # The life cycle in fewer steps (contract.PATCH_ORDER_FEWER_STEPS); False while replaying an
        # order started before it, which then takes its recorded steps.
        self._fewer_steps = False
        # Nights closed by the monitor (contract.PATCH_ORDER_NIGHT_FROM_MONITOR): session GUID → the
        # progress its ``session_ended`` carried, until the session is decided on.
        self._closed_nights: dict[str, OrderProgress] = {}

    # ================================================================== run

    @workflow.run
    async def run(self, inp: OrderWorkflowInput) -> OrderWorkflowResult:
        self._fewer_steps = workflow.patched(contract.PATCH_ORDER_FEWER_STEPS)
        self._visibility(initial=True)
        deadline_timer = arbiter = None
        try:
            self._order = await self._db(OrderStoreActivities.load_order, OrderRef(order_id=inp.order_id))
            self._telescope, self._site = self._order.telescope, self._order.site_queue
            # The deadline runs on the workflow's clock: the date window end, else the default lifetime
            # from the workflow's start (this replaces the former platform's 24 h stale-target sweep).
            self._deadline = self._order.date_end or (
                workflow.info().start_time + timedelta(days=self._order.default_lifetime_days))
            deadline_timer = asyncio.create_task(self._deadline_timer(self._deadline))
            arbiter = asyncio.create_task(self._arbitrate_aborts())
            result = await self._life_cycle()
        except workflow.NondeterminismError:
            raise
        except (Exception, asyncio.CancelledError) as err:  # noqa: BLE001 - the one guard, below
            result = await self._guard(err)
        for task in (arbiter, deadline_timer, self._night_over):
            if task is not None and not task.done():
                task.cancel()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def _guard(self, err: BaseException) -> OrderWorkflowResult:
        """Whatever escaped the life cycle ends here, once: stop the target, settle by the delivered
        frames (nothing delivered: everything released), write a terminal status with the reason.

        A cancellation from the Temporal UI/CLI is a support abort. Database steps retry without a
        limit, so what arrives here is a permanent failure (a non-retryable activity error) or a bug;
        if the guard's own steps fail permanently too, the workflow fails and the repair sweep
        resolves the hold."""
        if isinstance(err, asyncio.CancelledError) and self._settled is None and self._abort is None \
                and self._phase not in ("stopping", "settling", "failing", "finalizing"):
            self._abort = AbortRequest(reason="workflow cancelled from Temporal", requested_by="support (cancel)",
                                       role=AbortRole.SUPPORT)
            return await self._stop_and_settle()
        detail = (_failure(err)[1] if isinstance(err, (ActivityError, ApplicationError))
                  else "workflow cancelled" if isinstance(err, asyncio.CancelledError) else str(err) or type(err).__name__)
        reason = f"stopped by a failure while {self._phase}: {detail}"
        workflow.logger.error("order %s: %s", self._inp.order_id, reason)
        self._phase = "failing"
        if self._fewer_steps:
            await self._close_target(reason, abort_session=True, sweep=self._settled is None)
            if self._settled is None:
                return await self._settle_and_finish(SettlementOutcome.voyager_error, OrderStatus.FAILED, reason)
            return await self._finish(OrderStatus.FAILED, reason)
        await self._set_status(OrderStatus.SETTLING, reason)
        await self._stop_target(abort=True)
        if self._settled is None:
            await self._sweep()
            await self._settle(SettlementOutcome.voyager_error, reason)
        return await self._finish(OrderStatus.FAILED, reason)

    async def _life_cycle(self) -> OrderWorkflowResult:
        order = self._order
        assert order is not None
        # 1. price and hold
        self._phase = "holding"
        hold_request = OrderRef(order_id=order.order_id)
        proposal = None
        if self._fewer_steps:  # the hold's transaction also stores the GUIDs and the ``held`` status
            proposal = self._propose_guids(order)
            hold_request = HoldRequest(order_id=order.order_id, guids=proposal, held=True)
        try:
            self._hold = await workflow.execute_activity_method(
                LedgerActivities.price_and_hold, hold_request, **opt.LEDGER
            )
        except ActivityError as err:
            kind, message, detail = _failure(err)
            if kind == contract.ERR_INSUFFICIENT_CREDITS and isinstance(detail, dict):
                return await self._finish(OrderStatus.REJECTED, (
                    f"insufficient credits: the order costs {detail.get('needed')}, "
                    f"{detail.get('available')} available, short by {detail.get('shortfall')}"))
            if kind == contract.ERR_PLAN_VIOLATION:
                return await self._finish(OrderStatus.REJECTED, f"plan violation: {message}")
            # A permanent failure (the ledger retries outages without a limit): void any hold, fail.
            await self._settle(SettlementOutcome.voyager_error, "could not hold credits", release=True)
            return await self._finish(OrderStatus.FAILED, f"could not hold credits: {message}")
        if self._fewer_steps:
            self._status_written(OrderStatus.HELD)
        else:
            await self._set_status(OrderStatus.HELD)
        if self._interrupted():
            return await self._stop_and_settle()

        # 2. submit, under GUIDs stored first
        self._phase = "submitting"
        # With fewer steps the hold stored them (a worker too old to know stored none: then as before).
        self._guids = self._hold.guids if self._fewer_steps else None
        if self._guids is None:
            self._guids = await self._db(OrderStoreActivities.assign_guids, proposal or self._propose_guids(order))
        self._submitted = True
        del order  # the submit request is the snapshot's last reader (_submit)
        try:
            submitted = await self._submit() is not None
        except ActivityError as err:
            # Only a refusal arrives here: Voyager unreachable is retried until the deadline/abort.
            kind, message, _ = _failure(err)
            if kind == contract.ERR_VOYAGER_REFUSED:
                return await self._fail(message)
            return await self._fail(f"could not submit the order to Voyager: {message}")
        if not submitted:
            return await self._stop_and_settle()
        if self._fewer_steps:
            self._status_written(OrderStatus.SUBMITTED)
        else:
            await self._set_status(OrderStatus.SUBMITTED)

        # 3-4. wait for sessions and watch them
        ending = await self._watch_sessions()
        if ending is None or self._abort is not None:
            # An abort accepted while the last session's watch was finishing still takes effect.
            return await self._stop_and_settle()
        outcome, status, reason = ending

        # 5. disable the target, ingest every frame it took, settle, then finalize
        if self._fewer_steps:
            self._phase = "settling"
            await self._close_target(reason, abort_session=False, sweep=True)
            return await self._settle_and_finish(outcome, status, reason)
        await self._set_status(OrderStatus.SETTLING, reason)
        self._phase = "settling"
        await self._stop_target(abort=False)
        await self._sweep()
        await self._settle(outcome, reason)
        return await self._finish(status, reason)

    async def _watch_sessions(self) -> tuple[SettlementOutcome, OrderStatus, str] | None:
        """Decide on session after session; None when interrupted (abort or deadline).

        A session the monitor closed (its ``session_ended`` carried the progress) is decided on at
        once, without an activity; any other is watched by ``ingest.watch_session``. A watch that
        fails is tried again later (back-off, or at once on ``session_ended``), never abandoned. A
        one-night order whose session ended with work left waits for Voyager to close that night's
        run: a second session the same night (clouds that cleared) is decided on too."""
        assert self._hold is not None and self._guids is not None
        last: tuple[SettlementOutcome, OrderStatus, str] | None = None
        while True:
            self._phase = "waiting"
            await self._wait_for_work()
            if self._interrupted():
                return None
            session = self._next_session()
            if session is None:
                if last is not None and self._night_over is not None and self._night_over.done():
                    return last
                continue  # a failed watch's back-off elapsed before it is due: wait again
            repeat = self._hold.constraints.is_repeat
            # The night's patch is checked where a night is decided, not at the start: there its
            # marker would sit in every waiting order's history, which cost each ~24 KiB more worker
            # memory (bench/report.md, section 5).
            closed = (self._closed_nights.pop(session.session_guid, None)
                      if session.ended and workflow.patched(contract.PATCH_ORDER_NIGHT_FROM_MONITOR) else None)
            if closed is not None:
                # The monitor ingested the session and wrote the night's status changes: no activity.
                res: WatchSessionResult | None = WatchSessionResult(
                    session_guid=session.session_guid, ended=True, result=session.result,
                    exit_text=session.exit_text, frames_ingested=0, progress=closed)
            else:
                try:
                    res = await self._watch(session, repeat)
                except ActivityError as err:
                    failures = self._session_failures.get(session.session_guid, 0) + 1
                    self._session_failures[session.session_guid] = failures
                    delay = min(opt.WATCH_RETRY_DELAY * 2 ** min(failures - 1, 16), opt.WATCH_RETRY_CAP)
                    self._session_retry_at[session.session_guid] = workflow.now() + delay
                    workflow.logger.warning("watch of session %s failed (%d), again in %s: %s",
                                            session.session_guid, failures, delay, err)
                    continue
            if res is None:
                return None
            session.ingested = session.ended = True
            session.result, session.exit_text = res.result, res.exit_text
            self._session_retry_at.pop(session.session_guid, None)
            self._progress = res.progress
            if res.progress.all_done:
                return SettlementOutcome.completed, OrderStatus.COMPLETED, "every shot done"
            if not repeat:
                # A one-night order: Voyager does not come back to it on a later night (planner repeat
                # rule), but may the same night; it ends when that night's run is closed.
                outcome = _SESSION_OUTCOME.get(res.result, SettlementOutcome.voyager_error)
                status = OrderStatus.PARTIAL if res.progress.frames_accepted > 0 else OrderStatus.FAILED
                last = outcome, status, res.exit_text or "session ended with shots remaining"
                if self._night_over is None:
                    night = RunEndRequest(order_id=self._inp.order_id, run_guid=session.run_guid)
                    if self._site_queue() is None:
                        self._night_over = workflow.start_activity_method(
                            IngestActivities.wait_run_end, night, **opt.WAIT_RUN_END)
                    else:  # a site worker down meanwhile is waited for, not taken for dawn
                        self._night_over = asyncio.create_task(
                            self._on_site(IngestActivities.wait_run_end, night, opt.WAIT_RUN_END))
                self._night_status(OrderStatus.SUBMITTED, f"{_WAITING_REST_OF_NIGHT} ({res.exit_text})")
                continue
            self._night_status(OrderStatus.SUBMITTED, f"{_WAITING_NEXT_NIGHT} ({res.exit_text})")

    async def _watch(self, session: SessionView, repeat: bool) -> WatchSessionResult | None:
        """The session watch activity (None: interrupted first); ``running`` while a session not yet
        ended is watched. The watch writes the night's two status changes itself
        (WatchSessionRequest). Raises its ActivityError."""
        assert self._guids is not None
        running = "" if session.ended else f"session {session.session_guid}"
        if running:
            self._phase = "observing"
            self._night_status(OrderStatus.RUNNING, running)
        return await self._on_site(
            IngestActivities.watch_session,
            WatchSessionRequest(order_id=self._inp.order_id,
                                target_guid=session.target_guid or self._guids.target_guid,
                                session_guid=session.session_guid, run_guid=session.run_guid,
                                sweep_only=session.ended, running_reason=running,
                                waiting_reason=_WAITING_NEXT_NIGHT if repeat else _WAITING_REST_OF_NIGHT),
            opt.WATCH_SESSION, interruptible=True)

    async def _wait_for_work(self) -> None:
        """Until a session is due, the night of a one-night order is over, or an interruption; wakes
        up when the earliest failed watch becomes due again."""
        night = self._night_over

        def ready() -> bool:
            return self._next_session() is not None or self._interrupted() or (night is not None and night.done())

        due = [t for g, t in self._session_retry_at.items() if not self._sessions[g].ingested]
        timeout = (min(due) - workflow.now()) if due else None
        if timeout is not None and timeout <= timedelta(0):
            return
        try:
            await workflow.wait_condition(ready, timeout=timeout)
        except asyncio.TimeoutError:
            pass

    async def _stop_and_settle(self) -> OrderWorkflowResult:
        """Abort or deadline: stop the target in Voyager, ingest what was taken, settle once."""
        aborted = self._abort is not None
        reason = (f"aborted by {self._abort.requested_by}: {self._abort.reason}" if self._abort is not None
                  else "the order's window ended with work left")
        self._phase = "stopping"
        if aborted:
            assert self._abort is not None
            outcome = (SettlementOutcome.support_abort if abort_role(self._abort) is AbortRole.SUPPORT
                       else SettlementOutcome.customer_abort)
        else:
            outcome = SettlementOutcome.expired
        final = OrderStatus.ABORTED if aborted else OrderStatus.EXPIRED
        if self._fewer_steps:
            await self._close_target(reason, abort_session=True, sweep=True, aborted=aborted)
            self._phase = "settling"
            return await self._settle_and_finish(outcome, final, reason)
        await self._set_status(OrderStatus.SETTLING, reason)
        if self._abort is not None:
            await self._db(
                OrderStoreActivities.record_abort,
                AbortRecord(order_id=self._inp.order_id, requested_by=self._abort.requested_by, reason=self._abort.reason,
                            role=abort_role(self._abort)),
            )
        await self._stop_target(abort=True)
        await self._sweep()
        self._phase = "settling"
        await self._settle(outcome, reason)
        return await self._finish(final, reason)

    async def _fail(self, reason: str) -> OrderWorkflowResult:
        """Voyager refused or was unreachable: make sure nothing half-created runs, void the hold."""
        self._phase = "failing"
        if self._fewer_steps:
            await self._close_target(reason, abort_session=True, sweep=False)
            return await self._settle_and_finish(SettlementOutcome.voyager_error, OrderStatus.FAILED, reason,
                                                 release=True)
        await self._set_status(OrderStatus.SETTLING, reason)
        await self._stop_target(abort=True)
        await self._settle(SettlementOutcome.voyager_error, reason, release=True)
        return await self._finish(OrderStatus.FAILED, reason)

    # ================================================================== steps

    async def _unless_interrupted(self, handle: Any) -> Any:
        """The activity's result, or None when an abort/deadline came first (then the activity is
        cancelled and, with WAIT_CANCELLATION_COMPLETED, has stopped before this returns)."""
        await workflow.wait_condition(lambda: handle.done() or self._interrupted())
        if handle.done():
            return handle.result()
        handle.cancel()
        try:
            await handle
        except (ActivityError, asyncio.CancelledError):
            pass
        return None

    async def _submit(self) -> SubmitResult | None:
        """Submit the order to Voyager (None: interrupted first). The loaded snapshot is dropped once
        the request is built: nothing later reads it, and a waiting order should not carry it."""
        request, self._order = self._submit_request(), None
        return await self._on_site(VoyagerActivities.submit_target, request, opt.VOYAGER_SUBMIT, interruptible=True)

    async def _stop_target(self, *, abort: bool) -> None:
        if not self._submitted or self._guids is None:
            return
        try:
            await self._on_site(
                VoyagerActivities.stop_target,
                StopTargetRequest(order_id=self._inp.order_id, target_guid=self._guids.target_guid,
                                  abort=abort, disable=True, panel_target_guids=self._other_panels()),
                opt.VOYAGER_CONTROL, until_deadline=True,
            )
        except ActivityError as err:
            # Voyager away past the deadline (and its grace): settle anyway; the repair sweep
            # disables a target left enabled for a terminal order.
            workflow.logger.error("could not stop target %s in Voyager: %s", self._guids.target_guid, err)

    async def _close_target(self, reason: str, *, abort_session: bool, sweep: bool, aborted: bool = False) -> None:
        """``settling`` (now for validators and visibility), then in one activity on the site: the
        status and, with ``aborted``, the abort's record in the database, the target disabled (its
        session aborted with ``abort_session``) and, with ``sweep``, every frame it took ingested.
        Never submitted: only the database steps. The activity given up past the deadline (Voyager
        or the site away): the database steps alone, then settle on what was ingested (the repair
        sweep disables a target left enabled for a terminal order)."""
        self._status_written(OrderStatus.SETTLING, reason)
        record = None
        if aborted and self._abort is not None:
            record = AbortRecord(order_id=self._inp.order_id, requested_by=self._abort.requested_by,
                                 reason=self._abort.reason, role=abort_role(self._abort))
        if self._submitted and self._guids is not None:
            try:
                closed: CloseTargetResult = await self._on_site(
                    IngestActivities.close_target,
                    CloseTargetRequest(order_id=self._inp.order_id, target_guid=self._guids.target_guid,
                                       panel_target_guids=self._other_panels(), reason=reason, abort=record,
                                       abort_session=abort_session, sweep=sweep),
                    opt.CLOSE_TARGET, until_deadline=True,
                )
                if closed.swept is not None:
                    self._progress = closed.swept.progress
                return
            except ActivityError as err:
                workflow.logger.error("could not close target %s in Voyager: %s", self._guids.target_guid, err)
        await self._db(OrderStoreActivities.set_status,
                       StatusChange(order_id=self._inp.order_id, status=OrderStatus.SETTLING, reason=reason))
        if record is not None:
            await self._db(OrderStoreActivities.record_abort, record)

    async def _settle_and_finish(self, outcome: SettlementOutcome, status: OrderStatus, reason: str, *,
                                 release: bool = False) -> OrderWorkflowResult:
        """Settle the hold and write the final status and report, in one activity."""
        closed: ClosedOrder = await workflow.execute_activity_method(
            LedgerActivities.settle_and_finalize,
            CloseOrderRequest(order_id=self._inp.order_id, outcome=outcome, reason=reason, release=release,
                              status=status),
            **opt.LEDGER)
        self._settled = closed.settled
        return self._finished(status, reason, closed.report)

    async def _sweep(self) -> None:
        """Ingest every frame the target took (any session) before settling: none goes unbilled."""
        if not self._submitted or self._guids is None:
            return
        try:
            sweep = await self._on_site(
                IngestActivities.sweep_target,
                SweepRequest(order_id=self._inp.order_id, target_guid=self._guids.target_guid,
                             panel_target_guids=self._other_panels()),
                opt.SWEEP, until_deadline=True,
            )
            self._progress = sweep.progress
        except ActivityError as err:
            # Voyager away past the deadline (and its grace): settle on what was ingested rather
            # than keep the hold open.
            workflow.logger.error("final ingest of order %s failed: %s", self._inp.order_id, err)

    def _site_queue(self) -> str | None:
        return self._site

    async def _on_site(self, activity: Any, arg: Any, options: dict[str, Any], *, interruptible: bool = False,
                       until_deadline: bool = False) -> Any:
        """A Voyager activity on the order's site queue (network mode) or the workflow's own.

        A site worker that does not pick the activity up within ``SITE_PICKUP`` is down: the order
        says ``waiting for site <slug> since …`` (a local activity, once per wait; the site activity
        clears it as it starts) and the activity is scheduled again — until it runs, an
        interruption (``interruptible``: then None, as :meth:`_unless_interrupted`) or, with
        ``until_deadline``, the deadline and its grace (then the timeout propagates). In the
        single-telescope shape this is exactly one activity, as before."""
        give_up = workflow.now() + max(self._to_deadline(), opt.VOYAGER_GRACE)
        noted = False
        while True:
            run_options = options
            if until_deadline:  # the first attempt gets max(time to deadline, grace), the next ones what is left
                run_options = {**options, "schedule_to_close_timeout": max(give_up - workflow.now(), timedelta(seconds=1))}
            handle = workflow.start_activity_method(activity, arg, **opt.on_site(run_options, self._site_queue()))
            try:
                return await (self._unless_interrupted(handle) if interruptible else handle)
            except ActivityError as err:
                if self._site_queue() is None or not _not_picked_up(err) or (until_deadline and workflow.now() >= give_up):
                    raise
            if not noted and self._telescope is not None:
                noted = True
                await self._db(SiteWaitActivities.note_site_wait,
                               SiteWait(order_id=self._inp.order_id, telescope=self._telescope))
            if interruptible and self._interrupted():
                return None

    def _other_panels(self) -> list[str]:
        """A mosaic's panel Targets other than ``target_guid`` (empty for a single-field order)."""
        g = self._guids
        return [] if g is None else [t for t in g.panel_target_guids.values() if t != g.target_guid]

    def _owns_target(self, target_guid: str) -> bool:
        g = self._guids
        return g is None or target_guid == g.target_guid or target_guid in g.panel_target_guids.values()

    def _to_deadline(self) -> timedelta:
        return (self._deadline - workflow.now()) if self._deadline is not None else timedelta(0)

    async def _settle(self, outcome: SettlementOutcome, reason: str, *, release: bool = False) -> None:
        request = SettleRequest(order_id=self._inp.order_id, outcome=outcome, reason=reason, release=release)
        self._settled = await workflow.execute_activity_method(LedgerActivities.settle, request, **opt.LEDGER)

    async def _finish(self, status: OrderStatus, reason: str) -> OrderWorkflowResult:
        self._phase = "finalizing"
        request = FinalizeRequest(order_id=self._inp.order_id, status=status, reason=reason)
        return self._finished(status, reason, await self._db(OrderStoreActivities.finalize_order, request))

    def _finished(self, status: OrderStatus, reason: str, report: OrderReport) -> OrderWorkflowResult:
        self._status, self._reason, self._phase = status, reason, "done"
        self._visibility(summary_extra={"captured": report.credits_captured, "released": report.credits_released})
        return OrderWorkflowResult(
            order_id=self._inp.order_id, status=status, reason=reason, cost=report.cost,
            credits_held=report.credits_held, credits_captured=report.credits_captured,
            credits_released=report.credits_released, frames_accepted=report.frames_accepted,
            integration_seconds=round(report.integration_minutes * 60.0, 3),
        )

    async def _db(self, activity: Any, arg: Any) -> Any:
        """A database step of the life cycle: a local activity (one marker event), and when its
        quick attempts give up (the database is down), the same step as a regular activity that
        retries without a limit: an outage delays the order, never fails it. A permanent failure
        (non-retryable error) propagates."""
        try:
            return await workflow.execute_local_activity_method(activity, arg, **opt.DB_SHORT)
        except (ActivityError, ApplicationError, FailureTimeout) as err:
            # A local activity whose last attempt timed out raises a bare TimeoutError when the
            # workflow is replayed from its marker (a worker restart, a cache eviction), where the
            # first execution went on to the patient activity: caught alike, or the replay takes
            # another path (the guard) and the workflow is stuck on a nondeterminism error.
            # The local attempts' last failure may be marked non-retryable whatever its kind, so
            # permanence is judged by type: only the activities' own permanent failures stop here.
            if _failure(err)[0] in opt.NON_RETRYABLE:
                raise
            workflow.logger.warning("order %s: database step failed, retrying until it works: %s",
                                    self._inp.order_id, err)
        return await workflow.execute_activity_method(activity, arg, **opt.DB_PATIENT)

    async def _set_status(self, status: OrderStatus, reason: str = "") -> None:
        """Move the status now (validators see it at once), then in the database and visibility."""
        self._status, self._reason = status, reason
        self._visibility()
        await self._db(OrderStoreActivities.set_status,
                       StatusChange(order_id=self._inp.order_id, status=status, reason=reason))

    def _status_written(self, status: OrderStatus, reason: str = "") -> None:
        """A status change an activity writes to the database in its own transaction (the hold,
        the submit, the close of the target): here the workflow's status and visibility."""
        self._status, self._reason = status, reason
        self._visibility()

    def _night_status(self, status: OrderStatus, reason: str) -> None:
        """A status change the session watch writes to the database (``running`` as it starts,
        ``submitted`` when it ends with shots left): here only the workflow's own status and the
        ``OrderStatus`` search attribute (one event when the status changes; the memo keeps the
        life cycle's milestones, not every night)."""
        changed = status is not self._status
        self._status, self._reason = status, reason
        if changed:
            workflow.upsert_search_attributes([contract.SA_ORDER_STATUS.value_set(status.value)])

    def _visibility(self, *, initial: bool = False, summary_extra: dict[str, Any] | None = None) -> None:
        updates = [contract.SA_ORDER_STATUS.value_set(self._status.value)]
        if initial:
            updates += [
                contract.SA_CUSTOMER_ID.value_set(str(self._inp.customer_id)),
                contract.SA_TARGET_NAME.value_set(self._inp.target_name),
                contract.SA_PLAN.value_set(self._inp.plan),
            ]
        workflow.upsert_search_attributes(updates)
        summary: dict[str, Any] = {
            "order_id": self._inp.order_id, "customer_id": self._inp.customer_id, "plan": self._inp.plan,
            "target_name": self._inp.target_name, "status": self._status.value, "reason": self._reason,
        }
        if self._hold is not None:
            summary["cost"] = self._hold.cost
        if self._guids is not None:
            summary["target_guid"] = self._guids.target_guid
        summary.update(summary_extra or {})
        workflow.upsert_memo({"summary": summary})

    def _propose_guids(self, order: OrderSnapshot) -> GuidAssignment:
        """The Set/Target/Shot GUIDs to store: those the order has, else new ones. Drawn in a fixed
        order (target, shots, then a mosaic's other panels): an order without panels draws exactly
        what it drew before mosaics existed (replay histories)."""
        target_guid = order.target_guid or str(workflow.uuid4())
        shot_guids = {str(s.id): s.shot_guid or str(workflow.uuid4()) for s in order.shots}
        panel_guids = {str(p.panel_index): p.target_guid or (target_guid if p.panel_index == 0
                                                             else str(workflow.uuid4()))
                       for p in order.panels}
        return GuidAssignment(order_id=order.order_id, set_guid=order.set_guid or set_guid_for(order.customer_id),
                              target_guid=target_guid, shot_guids=shot_guids, panel_target_guids=panel_guids)

    def _submit_request(self) -> SubmitRequest:
        order, hold, guids = self._order, self._hold, self._guids
        assert order is not None and hold is not None and guids is not None

        def shots(panel: int | None) -> list[SubmitShot]:
            lines = [s for s in order.shots if s.panel_index == panel]
            return [SubmitShot(guid=guids.shot_guids[str(s.id)], filter=s.filter, exposure=s.exposure,
                               quantity=s.quantity, bin=s.bin, gain=s.gain or 0, offset=s.offset or 0, order=i + 1)
                    for i, s in enumerate(lines)]

        if order.panels:  # a mosaic: one Target per panel, each with its share of the shots
            return SubmitRequest(
                order_id=order.order_id, customer_id=order.customer_id, set_guid=guids.set_guid,
                set_tag=f"user_{order.customer_id}", set_name=f"User_{order.customer_id}",
                target_guid=guids.target_guid, target_name=order.target_name,
                ra_j2000=order.ra_j2000, dec_j2000=order.dec_j2000, pa=order.pa, constraints=hold.constraints,
                mark_submitted=self._fewer_steps, shots=[],
                panels=[SubmitPanel(target_guid=guids.panel_target_guids[str(p.panel_index)], target_name=p.name,
                                    ra_j2000=p.ra_j2000, dec_j2000=p.dec_j2000, shots=shots(p.panel_index))
                        for p in order.panels],
            )
        return SubmitRequest(
            order_id=order.order_id, customer_id=order.customer_id, set_guid=guids.set_guid,
            set_tag=set_tag(order.customer_id), set_name=default_set_name(order.customer_id),
            target_guid=guids.target_guid, target_name=order.target_name,
            ra_j2000=order.ra_j2000, dec_j2000=order.dec_j2000, pa=order.pa, constraints=hold.constraints,
            mark_submitted=self._fewer_steps,
            shots=[
                SubmitShot(guid=guids.shot_guids[str(s.id)], filter=s.filter, exposure=s.exposure, quantity=s.quantity,
                           bin=s.bin, gain=s.gain or 0, offset=s.offset or 0, order=i + 1)
                for i, s in enumerate(order.shots)
            ],
        )

    async def _deadline_timer(self, deadline: datetime) -> None:
        remaining = (deadline - workflow.now()).total_seconds()
        if remaining > 0:
            await workflow.sleep(timedelta(seconds=remaining))
        self._deadline_reached = True

    def _interrupted(self) -> bool:
        return self._abort is not None or self._deadline_reached

    def _next_session(self) -> SessionView | None:
        """The first session not yet ingested whose watch is due (not backing off after a failure)."""
        now = workflow.now()
        return next((s for s in self._sessions.values() if not s.ingested
                     and self._session_retry_at.get(s.session_guid, now) <= now), None)

    # ================================================================== signals, update, query

    @workflow.signal(name="session_started")
    def session_started(self, sig: SessionSignal) -> None:
        """The monitor saw a session of our target running (at least once; duplicates ignored): the
        session is watched. Today's monitor no longer sends it (it closes the night itself and
        signals ``session_ended``); kept for histories and monitors that still do."""
        self._on_session(sig, ended=False)

    @workflow.signal(name="session_ended")
    def session_ended(self, sig: SessionSignal) -> None:
        """The monitor saw a session of our target finished (may come without ``session_started``);
        with ``progress``, it ingested the session and wrote the night's status already."""
        self._on_session(sig, ended=True)

    def _on_session(self, sig: SessionSignal, *, ended: bool) -> None:
        if not self._owns_target(sig.target_guid):
            workflow.logger.warning("ignoring session %s of another target %s", sig.session_guid, sig.target_guid)
            return
        session = self._sessions.get(sig.session_guid)
        if session is None:
            session = SessionView(session_guid=sig.session_guid, run_guid=sig.run_guid, target_guid=sig.target_guid,
                                  result=sig.result)
            self._sessions[sig.session_guid] = session
        if ended and not session.ended:
            session.ended, session.result, session.exit_text = True, sig.result, sig.exit_text
        if ended and sig.progress is not None and not session.ingested:
            # The monitor closed the night (used only with the patch: a handler may run before ``run``).
            self._closed_nights[sig.session_guid] = sig.progress
        if ended:
            self._session_retry_at.pop(sig.session_guid, None)  # a failed watch is due again now

    @workflow.signal(name="abort")
    def abort_signal(self, req: AbortRequest) -> None:
        """Abort from the Temporal UI/CLI: ``{"reason": ..., "requested_by": ..., "role": ...}``; an
        operator's tool, so a signal without requester is a support abort. Ignored once settling or
        done (the update says so; a signal cannot answer)."""
        if self._status in NO_ABORT_STATUSES:
            workflow.logger.info("abort signal ignored: order is %s", self._status.value)
            return
        self._abort_signals += 1
        self._abort_candidates.append(
            ((1, f"{self._abort_signals:09d}"),
             AbortRequest(reason=req.reason, requested_by=req.requested_by or "support (signal)",
                          role=req.role if req.role or req.requested_by else AbortRole.SUPPORT)))

    @workflow.update(name="abort")
    async def abort_update(self, req: AbortRequest) -> AbortResult:
        """Abort from the API. The first accepted abort takes effect; later ones return it.

        No lock: the handler changes state only before its one await (it adds its candidate) and
        then just waits for the arbiter, so concurrent aborts cannot interleave badly, and a lock's
        acquisition order would make the winner depend on the order of jobs in an activation."""
        key = (0, workflow.current_update_info().id)  # type: ignore[union-attr]
        self._abort_candidates.append((key, req))
        await workflow.wait_condition(lambda: self._abort is not None)
        assert self._abort is not None
        return AbortResult(order_id=self._inp.order_id, accepted=True, first=self._abort_key == key,
                           status=self._status, requested_by=self._abort.requested_by, reason=self._abort.reason)

    @abort_update.validator
    def _validate_abort(self, req: AbortRequest) -> None:
        if self._status in NO_ABORT_STATUSES:
            raise ApplicationError(f"order {self._inp.order_id} is {self._status.value}: it can no longer be aborted",
                                   self._status.value, type=contract.ERR_ABORT_REFUSED, non_retryable=True)

    async def _arbitrate_aborts(self) -> None:
        """Pick the abort that takes effect once the workflow task's handlers have all run.

        Signals and updates delivered in one workflow task may be ordered differently when the
        history is replayed (e.g. to answer a query after the order closed), so the winner among
        one task's candidates is chosen by content — updates first, then by update id / signal
        order — never by arrival order; candidates from later tasks never win."""
        await workflow.wait_condition(lambda: bool(self._abort_candidates))
        self._abort_key, self._abort = min(self._abort_candidates, key=lambda c: c[0])
        workflow.logger.info("abort requested by %s: %s", self._abort.requested_by, self._abort.reason)

    @workflow.query(name="status")
    def status(self, _q: StatusQuery | None = None) -> OrderStatusView:
        """Phase, status and every GUID the order owns in Voyager."""
        g, p, s, h = self._guids, self._progress, self._settled, self._hold
        return OrderStatusView(
            order_id=self._inp.order_id, status=self._status, phase=self._phase, reason=self._reason,
            set_guid=g.set_guid if g else None, target_guid=g.target_guid if g else None,
            shot_guids=list(g.shot_guids.values()) if g else [],
            sessions=[v.model_copy() for v in self._sessions.values()], deadline=self._deadline,
            cost=h.cost if h else 0, credits_held=h.credits_held if h else 0,
            credits_captured=s.captured if s else 0, credits_released=s.released if s else 0,
            abort_requested_by=self._abort.requested_by if self._abort else None,
            abort_reason=self._abort.reason if self._abort else None, aborts_received=len(self._abort_candidates),
            shots_done=p.shots_done if p else 0, shots_total=p.shots_total if p else 0,
        )


__all__ = ["OrderWorkflow", "set_guid_for"]
