"""The repair sweep: find orders and credits that drifted from what their workflow promises, and
mend them (docs/order-workflow.md, "Repair"). Run by ``RepairWorkflow`` on the ``order-repair``
Temporal Schedule and by ``stellar repair [--dry-run]``; both call :meth:`OrderRepair.run`.

An order is left alone while its workflow ``order-<id>`` runs (the workflow owns it) and while it
is younger than ``repair.grace_seconds`` (the API inserts the row before it starts the workflow).
Otherwise:

* a terminal order whose hold is still open → settle it by its delivered frames under the
  settlement rule of its status (``rejected``: release);
* a ``pending`` or ``held`` order (nothing observed yet) whose workflow failed, was terminated or
  is missing → start the workflow again under the same id (``ALLOW_DUPLICATE_FAILED_ONLY``): the
  hold and the GUIDs are keyed by the order, so the new run finds them; after
  ``repair.max_restarts`` restarts the order is settled instead;
* any other non-terminal order (submitted, running, settling) whose workflow is closed or missing →
  disable and abort its target in Voyager, ingest the frames its sessions took, settle by delivered
  frames, and write a terminal status (``completed`` / ``partial`` / ``failed``) with the reason;
* a terminal order whose target is still enabled in Voyager → disable it.

Every repair writes an ``order_event`` of kind ``repair`` (``actor: repair``, ``finding``,
``action``, ``reason``); money moves through the ledger with ``actor='repair'``. Every action is
idempotent (the ledger resolves a hold once, the final status is written once, disabling a
disabled target is harmless), so a second run finds nothing to do.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities._heartbeat import heartbeating
from activities.ingest import IngestActivities
from activities.ledger_ops import settle_order
from activities.order_store import OrderStoreActivities, lock_order
from activities.progress import refresh_progress
from billing.ledger import Ledger
from core.database import make_sessionmaker
from core.order_control import start_order_workflow
from core.settings import Settings
from models.billing import SettlementOutcome
from models.db import CreditHold, Order, OrderEvent, OrderPanel
from models.orders import FINAL_STATUSES, AbortRole, FinalizeRequest, OrderProgress, OrderStatus, SettleRequest
from models.repair import RepairInput, RepairItem, RepairReport
from models.temporal_contract import order_workflow_id
from voyager import wire
from voyager.errors import VoyagerActionFailed, VoyagerConnectionError, VoyagerRejected, VoyagerTimeout
from voyager.robotarget import RoboTarget

log = structlog.get_logger(__name__)
ACTOR = "repair"
ORDER, HOLD, EVENT, PANEL = Order.__table__, CreditHold.__table__, OrderEvent.__table__, OrderPanel.__table__
FINAL = sorted(s.value for s in FINAL_STATUSES)
#: Orders that never reached Voyager's scheduler: restarting their workflow loses nothing.
RESTARTABLE = {OrderStatus.PENDING.value, OrderStatus.HELD.value}
#: The settlement rule of a terminal status, for a hold its workflow left open.
OUTCOME_OF = {
    "completed": SettlementOutcome.completed,
    "partial": SettlementOutcome.partial,
    "aborted": SettlementOutcome.customer_abort,
    "expired": SettlementOutcome.expired,
    "failed": SettlementOutcome.voyager_error,
}
_VOYAGER_DOWN = (VoyagerConnectionError, VoyagerTimeout, OSError, asyncio.TimeoutError)
A_SETTLE, A_RESTART, A_FINISH, A_DISABLE = ("settle the hold by delivered frames", "restart the workflow",
                                             "stop the target, settle by delivered frames, end the order",
                                             "disable the target in Voyager")


class OrderRepair:
    """The sweep. ``engine``: the database; ``client``: Temporal (describe/start ``order-<id>``);
    ``robotarget``: Voyager (None: targets are neither checked nor stopped; the report says so);
    ``task_queue``: where restarted workflows run."""

    def __init__(self, engine: AsyncEngine, client: Client, robotarget: RoboTarget | None, settings: Settings,
                 *, task_queue: str | None = None) -> None:
        self.engine = engine
        self.client = client
        self.rt = robotarget
        self.settings = settings
        self.task_queue = task_queue or settings.temporal.task_queue
        self.sessionmaker = make_sessionmaker(engine)
        self.ledger = Ledger(engine)
        self.store = OrderStoreActivities(self.sessionmaker, settings)

    async def run(self, dry_run: bool = False) -> RepairReport:
        """Find every drift and, unless ``dry_run``, mend it. Raises ``OSError``/``sqlalchemy``
        errors when the database cannot be reached (before anything changed)."""
        report = RepairReport(dry_run=dry_run)
        rows = await self._candidates()
        report.checked = len(rows)
        for listed in rows:
            state = await self._workflow_state(listed.id)
            if state == "running":
                continue
            # Read the order again now that its workflow is seen closed: the list may predate the
            # workflow's last steps (it settled and ended the order meanwhile: nothing to repair).
            row = await self._candidate(listed.id)
            if row is None:
                continue
            item = await self._decide(row, state)
            if item is None:
                continue
            if not dry_run:
                await self._apply(row, item)
            report.items.append(item)
        await self._targets(report, dry_run)
        log.info("repair.swept", dry_run=dry_run, checked=report.checked, found=len(report.items),
                 done=sum(i.done for i in report.items), voyager=report.voyager)
        return report

    # ------------------------------------------------------------------ find

    async def _candidates(self, order_id: int | None = None) -> list[Any]:
        """Non-terminal orders, and terminal ones whose hold is open, past the grace period (only
        ``order_id`` when given)."""
        before = datetime.now(UTC) - timedelta(seconds=self.settings.repair.grace_seconds)
        query = (
            sa.select(ORDER.c.id, ORDER.c.customer_id, ORDER.c.status, ORDER.c.plan, ORDER.c.target_name,
                      ORDER.c.target_guid, ORDER.c.abort_role, HOLD.c.status.label("hold_status"))
            .select_from(ORDER.outerjoin(HOLD, HOLD.c.order_id == ORDER.c.id))
            .where(ORDER.c.created_at < before,
                   sa.or_(ORDER.c.status.not_in(FINAL), HOLD.c.status == "open"))
            .order_by(ORDER.c.id)
        )
        if order_id is not None:
            query = query.where(ORDER.c.id == order_id)
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).all())

    async def _candidate(self, order_id: int) -> Any | None:
        """The order as it is now, if it is still a candidate."""
        rows = await self._candidates(order_id)
        return rows[0] if rows else None

    async def _workflow_state(self, order_id: int) -> str:
        try:
            desc = await self.client.get_workflow_handle(order_workflow_id(order_id)).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return "missing"
            raise
        if desc.status == WorkflowExecutionStatus.RUNNING:
            return "running"
        return f"closed:{desc.status.name.lower() if desc.status else 'unknown'}"

    async def _decide(self, row: Any, state: str) -> RepairItem | None:
        item = RepairItem(order_id=row.id, customer_id=row.customer_id, status=row.status, workflow=state,
                          finding="", action="")
        if row.status in FINAL:
            if row.hold_status != "open":
                return None
            item.finding, item.action = f"hold open on a terminal order ({row.status})", A_SETTLE
        elif row.status in RESTARTABLE and row.hold_status in (None, "open") and state != "closed:completed" and \
                await self._restarts(row.id) < self.settings.repair.max_restarts:
            item.finding, item.action = f"{row.status} order without a running workflow", A_RESTART
        else:
            item.finding, item.action = f"{row.status} order without a running workflow", A_FINISH
        return item

    async def _restarts(self, order_id: int) -> int:
        async with self.engine.connect() as conn:
            payloads = (await conn.execute(sa.select(EVENT.c.payload).where(
                EVENT.c.order_id == order_id, EVENT.c.kind == "repair"))).scalars().all()
        return sum(1 for p in payloads if (p or {}).get("action") == A_RESTART)

    # ------------------------------------------------------------------ mend

    async def _apply(self, row: Any, item: RepairItem) -> None:
        reason = f"repair: {item.finding} (workflow {item.workflow})"
        try:
            if item.action == A_SETTLE:
                outcome = OUTCOME_OF.get(row.status, SettlementOutcome.voyager_error)
                if row.status == "aborted" and row.abort_role == AbortRole.SUPPORT.value:
                    outcome = SettlementOutcome.support_abort
                res = await settle_order(self.ledger, self.sessionmaker, self.settings, SettleRequest(
                    order_id=row.id, outcome=outcome, reason=reason, release=row.status == "rejected"), actor=ACTOR)
                item.credits_captured, item.credits_released = res.captured, res.released
                item.detail = f"{outcome.value}: captured {res.captured}, released {res.released}"
            elif item.action == A_RESTART:
                await start_order_workflow(self.client, row.id, customer_id=row.customer_id, plan=row.plan,
                                           target_name=row.target_name, task_queue=self.task_queue,
                                           restart_failed=True)
                item.detail = f"started {order_workflow_id(row.id)} on {self.task_queue}"
            else:
                await self._finish(row, item, reason)
            item.done = True
        except Exception as exc:  # one order's failure must not stop the sweep; the next run retries
            item.detail = f"failed: {type(exc).__name__}: {exc}"
            log.warning("repair.failed", order_id=row.id, action=item.action, error=str(exc))
            return
        await self._event(row.id, item, reason)

    async def _finish(self, row: Any, item: RepairItem, reason: str) -> None:
        """Stop the target, ingest its frames, settle by them and write the terminal status."""
        notes: list[str] = []
        if row.target_guid and self.rt is not None:
            try:
                targets = await self._order_targets(row.id, row.target_guid)  # a mosaic: every panel
                for guid in targets:
                    await self._disable(guid, abort=True)
                notes.append("target disabled" if len(targets) == 1 else f"{len(targets)} panel targets disabled")
                ingest = IngestActivities(self.rt, self.sessionmaker, self.settings)
                days = max(self.settings.orders.monitor_run_days, self.settings.billing.order_default_lifetime_days + 1)
                for guid in targets:
                    for s in await self.rt.get_sessions_for_target(guid, self.settings.voyager.profile_name, days):
                        await ingest.ingest_session(row.id, s.guid)
            except _VOYAGER_DOWN as exc:
                # Settle on what was ingested; the target check of a later run disables it.
                notes.append(f"Voyager unreachable ({type(exc).__name__}), settled on frames already ingested")
        progress = await self._progress(row.id)
        if progress.all_done:
            outcome, status = SettlementOutcome.completed, OrderStatus.COMPLETED
        elif progress.frames_accepted > 0:
            outcome, status = SettlementOutcome.partial, OrderStatus.PARTIAL
        else:
            outcome, status = SettlementOutcome.voyager_error, OrderStatus.FAILED
        res = await settle_order(self.ledger, self.sessionmaker, self.settings, SettleRequest(
            order_id=row.id, outcome=outcome, reason=reason, release=status == OrderStatus.FAILED), actor=ACTOR)
        await self.store.finalize_order(FinalizeRequest(order_id=row.id, status=status, reason=reason))
        item.credits_captured, item.credits_released = res.captured, res.released
        item.detail = "; ".join([*notes, f"{status.value}: captured {res.captured}, released {res.released}"])

    async def _progress(self, order_id: int) -> OrderProgress:
        """The order's progress recomputed from its ingested frames."""
        async with self.sessionmaker() as session:
            order = await lock_order(session, order_id)
            progress = await refresh_progress(session, order)
            await session.commit()
            return progress

    async def _disable(self, target_guid: str, *, abort: bool) -> None:
        assert self.rt is not None
        with contextlib.suppress(VoyagerActionFailed, VoyagerRejected):  # unknown target: nothing runs
            await self.rt.enable_disable(target_guid, wire.OBJECT_TARGET, enable=False)
        if abort:
            with contextlib.suppress(VoyagerActionFailed, VoyagerRejected):  # nothing running
                await self.rt.abort(target_guid=target_guid)

    async def _order_targets(self, order_id: int, target_guid: str) -> list[str]:
        """The order's Target GUID and, for a mosaic, its other panels' (docs/mosaics.md)."""
        async with self.engine.connect() as conn:
            panels = (await conn.execute(sa.select(PANEL.c.target_guid).where(
                PANEL.c.order_id == order_id, PANEL.c.target_guid.is_not(None)))).scalars().all()
        return [target_guid, *(g for g in panels if g != target_guid)]

    async def _targets(self, report: RepairReport, dry_run: bool) -> None:
        """Terminal orders whose target is still enabled in Voyager: disable them."""
        if self.rt is None:
            report.voyager = "not checked (no Voyager connection)"
            return
        try:
            enabled = {t.guid.lower() for t in await self.rt.get_targets("") if t.status == 0}
        except _VOYAGER_DOWN as exc:
            report.voyager = f"unreachable ({type(exc).__name__}: {exc}); targets checked on the next run"
            return
        if not enabled:
            return
        async with self.engine.connect() as conn:
            rows = list((await conn.execute(
                sa.select(ORDER.c.id, ORDER.c.customer_id, ORDER.c.status, ORDER.c.target_guid)
                .where(ORDER.c.status.in_(FINAL), sa.func.lower(ORDER.c.target_guid).in_(enabled))
                .order_by(ORDER.c.id))).all())
            # A mosaic's other panels are Targets of their own.
            rows += (await conn.execute(
                sa.select(ORDER.c.id, ORDER.c.customer_id, ORDER.c.status, PANEL.c.target_guid)
                .select_from(PANEL.join(ORDER, ORDER.c.id == PANEL.c.order_id))
                .where(ORDER.c.status.in_(FINAL), sa.func.lower(PANEL.c.target_guid).in_(enabled),
                       PANEL.c.target_guid != ORDER.c.target_guid)
                .order_by(ORDER.c.id))).all()
        for row in rows:
            state = await self._workflow_state(row.id)
            if state == "running":  # the workflow disables it itself as it finishes
                continue
            item = RepairItem(order_id=row.id, customer_id=row.customer_id, status=row.status, workflow=state,
                              finding=f"target still enabled in Voyager for a terminal order ({row.status})",
                              action=A_DISABLE)
            report.items.append(item)
            if dry_run:
                continue
            try:
                await self._disable(row.target_guid, abort=False)
                item.done, item.detail = True, "disabled"
            except _VOYAGER_DOWN as exc:
                item.detail = f"failed: Voyager unreachable ({type(exc).__name__})"
                continue
            await self._event(row.id, item, f"repair: {item.finding}")

    async def _event(self, order_id: int, item: RepairItem, reason: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(EVENT.insert().values(
                order_id=order_id, kind="repair", email_status="none", created_at=datetime.now(UTC),
                payload={"actor": ACTOR, "finding": item.finding, "action": item.action, "reason": reason,
                         "workflow": item.workflow, "detail": item.detail}))
        log.info("repair.done", order_id=order_id, action=item.action, detail=item.detail)


class RepairActivities:
    """The sweep as an activity of the worker (``RepairWorkflow``): its engine, Voyager and the
    Temporal client the activity runs under."""

    def __init__(self, engine: AsyncEngine, robotarget: RoboTarget | None, settings: Settings) -> None:
        self.engine = engine
        self.rt = robotarget
        self.settings = settings

    @activity.defn(name="repair.sweep")
    async def sweep(self, inp: RepairInput) -> RepairReport:
        """One sweep (:meth:`OrderRepair.run`); restarted workflows go to this worker's task queue.
        Heartbeats in the background: one order's Voyager ingest may outlast a heartbeat timeout."""
        repair = OrderRepair(self.engine, activity.client(), self.rt, self.settings,
                             task_queue=activity.info().task_queue)
        async with heartbeating():
            return await repair.run(inp.dry_run)
