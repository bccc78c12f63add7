"""Order rows in PostgreSQL: load, status changes, GUIDs, abort record, final report.

Every write is idempotent (check-then-write under ``SELECT … FOR UPDATE`` on the order row), because
activities are retried. Status changes insert an ``OrderEvent`` (the API's live stream is fed by its
NOTIFY trigger); the final one carries the report and ``email_status='pending'`` for the e-mail
outbox.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities._db import sql
from activities.order_constraints import aware_utc, stored_constraints
from activities.order_sql import FINALIZE_WRITE, REPORT_READ, one_statement, read_order
from activities.progress import order_lines, progress_now
from core.frame_store import FRAMES_PREFIX, frame_store
from core.settings import Settings
from models.db import Order, OrderEvent, OrderPanel, OrderShot, ShotDone
from models.orders import (
    FINAL_STATUSES,
    AbortRecord,
    AbortRequest,
    Done,
    FilterReport,
    FinalizeRequest,
    GuidAssignment,
    OrderProgress,
    OrderRef,
    OrderReport,
    OrderSnapshot,
    OrderStatus,
    PanelLine,
    PanelReport,
    SettleResult,
    ShotLine,
    StatusChange,
    StatusChanged,
    abort_role,
)
from models.telescopes import site_task_queue
from models.temporal_contract import ERR_INVALID_ORDER, ERR_ORDER_NOT_FOUND

log = structlog.get_logger(__name__)
ORDER = Order.__table__


async def lock_order(session: AsyncSession, order_id: int) -> Order:
    """The order row, locked for this transaction. Raises non-retryable ``OrderNotFound``."""
    order = (await session.exec(select(Order).where(Order.id == order_id).with_for_update())).first()
    if order is None:
        raise ApplicationError(f"order {order_id} does not exist", type=ERR_ORDER_NOT_FOUND, non_retryable=True)
    return order


def status_event(order: Order, status: OrderStatus, reason: str, *, final: bool, extra: dict | None = None) -> OrderEvent:
    """The ``status`` notification record for a change (``email_status`` pending when final)."""
    payload = {"status": status.value, "reason": reason, "target_name": order.target_name}
    if extra:
        payload.update(extra)
    return OrderEvent(order_id=order.id, kind="status", payload=payload, email_status="pending" if final else "none")


def move_status(session: AsyncSession, order: Order, status: OrderStatus, reason: str, *,
                only_from: tuple[str, ...] | None = None) -> bool:
    """Set a non-final ``status`` with ``reason`` on the locked ``order`` and add its ``status``
    OrderEvent to ``session`` (the caller commits), once: nothing changes when the order already
    has ``status``, is final, or (``only_from``) is in none of those statuses. Returns True when it
    changed. Shared by :meth:`OrderStoreActivities.set_status` and the steps that write their
    status in their own transaction (hold, submit, close of the target)."""
    if order.status == status.value or order.status in FINAL_STATUSES:
        return False
    if only_from is not None and order.status not in only_from:
        return False
    order.status, order.status_reason, order.updated_at = status.value, reason, datetime.now(UTC)
    session.add(order)
    session.add(status_event(order, status, reason, final=False))
    return True


async def store_guids(session: AsyncSession, order: Order, proposal: GuidAssignment) -> GuidAssignment:
    """Store the proposed Set/Target/Shot/panel GUIDs on the locked ``order`` and its lines where
    none is stored yet (the caller commits); returns the GUIDs in force. Raises non-retryable
    ``InvalidOrder`` when a line or panel has no GUID stored or proposed."""
    order.set_guid = order.set_guid or proposal.set_guid
    order.target_guid = order.target_guid or proposal.target_guid
    session.add(order)
    shots: dict[str, str] = {}
    for line in await order_lines(session, proposal.order_id):
        key = str(line.id)
        if not line.shot_guid:
            if key not in proposal.shot_guids:
                raise ApplicationError(f"no GUID proposed for shot {key}", type=ERR_INVALID_ORDER, non_retryable=True)
            line.shot_guid = proposal.shot_guids[key]
            session.add(line)
        shots[key] = line.shot_guid
    panels: dict[str, str] = {}
    for panel in await order_panels(session, proposal.order_id):
        key = str(panel.panel_index)
        if not panel.target_guid:
            if key not in proposal.panel_target_guids:
                raise ApplicationError(f"no GUID proposed for panel {key}", type=ERR_INVALID_ORDER,
                                       non_retryable=True)
            panel.target_guid = proposal.panel_target_guids[key]
            session.add(panel)
        panels[key] = panel.target_guid
    return GuidAssignment(order_id=proposal.order_id, set_guid=order.set_guid or proposal.set_guid,
                          target_guid=order.target_guid or proposal.target_guid, shot_guids=shots,
                          panel_target_guids=panels)


def guids_in_force(order: Any, proposal: GuidAssignment | None) -> tuple[GuidAssignment | None, dict[str, str],
                                                                              dict[str, str]]:
    """:func:`store_guids`'s rule on an order row as ``activities.order_sql.read_order`` returns it
    (locked): the GUIDs in force (None without a ``proposal``), and the shot GUIDs (line id → GUID)
    and panel GUIDs (panel index → GUID) to store, where none is stored yet. Raises non-retryable
    ``InvalidOrder`` when a line or panel has no GUID stored or proposed."""
    if proposal is None:
        return None, {}, {}
    shots, new_shots = _in_force(order.shots, "id", "shot_guid", proposal.shot_guids, "shot")
    panels, new_panels = _in_force(order.panels, "panel_index", "target_guid", proposal.panel_target_guids, "panel")
    in_force = GuidAssignment(order_id=proposal.order_id, set_guid=order.set_guid or proposal.set_guid,
                              target_guid=order.target_guid or proposal.target_guid, shot_guids=shots,
                              panel_target_guids=panels)
    return in_force, new_shots, new_panels


def _in_force(rows: list[dict] | None, key: str, field: str, proposed: dict[str, str],
              what: str) -> tuple[dict[str, str], dict[str, str]]:
    """Per row (``key`` → its ``field`` GUID): the GUIDs in force, and those to store (proposed
    where the row has none). Raises non-retryable ``InvalidOrder`` for a row with neither."""
    in_force: dict[str, str] = {}
    new: dict[str, str] = {}
    for row in rows or ():
        name = str(row[key])
        if not row[field]:
            if name not in proposed:
                raise ApplicationError(f"no GUID proposed for {what} {name}", type=ERR_INVALID_ORDER,
                                       non_retryable=True)
            new[name] = proposed[name]
        in_force[name] = row[field] or proposed[name]
    return in_force, new


def note_abort(session: AsyncSession, order: Order, record: AbortRecord) -> None:
    """Record who aborted the locked ``order``, as what and why (the first abort only; the caller
    commits)."""
    if order.aborted_by is None:
        order.aborted_by = record.requested_by or "unknown"
        order.abort_reason = record.reason
        order.abort_role = abort_role(AbortRequest(requested_by=record.requested_by, role=record.role)).value
        session.add(order)


async def order_panels(session: AsyncSession, order_id: int) -> list[OrderPanel]:
    """A mosaic order's panels by index (empty for a single-field order)."""
    return list((await session.exec(
        select(OrderPanel).where(OrderPanel.order_id == order_id).order_by(OrderPanel.panel_index)
    )).all())


async def panel_reports(session: AsyncSession, order_id: int) -> list[PanelReport]:
    """Per panel of a mosaic: accepted frames, rejected frames, integration and mean HFD per filter
    (a frame belongs to the panel of its shot line)."""
    panels = await order_panels(session, order_id)
    if not panels:
        return []
    rows = (await sql(session,
        sa.select(
            OrderShot.panel_index, ShotDone.filter,
            sa.func.count().filter(ShotDone.accepted.is_(True)),  # type: ignore[union-attr]
            sa.func.count().filter(ShotDone.accepted.is_(False)),  # type: ignore[union-attr]
            sa.func.coalesce(sa.func.sum(ShotDone.exposure).filter(ShotDone.accepted.is_(True)), 0.0),  # type: ignore[union-attr]
            sa.func.avg(ShotDone.hfd).filter(ShotDone.accepted.is_(True)),  # type: ignore[union-attr]
        )
        .join(OrderShot, sa.and_(OrderShot.shot_guid == ShotDone.shot_guid, OrderShot.order_id == ShotDone.order_id))
        .where(ShotDone.order_id == order_id)
        .group_by(OrderShot.panel_index, ShotDone.filter)
        .order_by(OrderShot.panel_index, ShotDone.filter)
    )).all()
    by_panel: dict[int, list[FilterReport]] = {}
    for panel, f, acc, rej, secs, hfd in rows:
        by_panel.setdefault(panel, []).append(FilterReport(
            filter=f, frames=int(acc), frames_rejected=int(rej), integration_minutes=round(float(secs) / 60.0, 2),
            mean_hfd=round(float(hfd), 3) if hfd is not None else None))
    return [
        PanelReport(panel_index=p.panel_index, name=p.name, column=p.column, row=p.row, ra_j2000=p.ra_j2000,
                    dec_j2000=p.dec_j2000, filters=by_panel.get(p.panel_index, []),
                    frames_accepted=sum(f.frames for f in by_panel.get(p.panel_index, [])),
                    integration_minutes=round(sum(f.integration_minutes for f in by_panel.get(p.panel_index, [])), 2))
        for p in panels
    ]


class OrderStoreActivities:
    """Database side of ``OrderWorkflow``. ``settings``: for the default order lifetime
    (``billing.order_default_lifetime_days``) and the image directory in reports."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings

    @activity.defn(name="order_store.load_order")
    async def load_order(self, ref: OrderRef) -> OrderSnapshot:
        """The order and its shot lines; records the workflow id on the row. ``telescope``: the
        order's telescope slug (``orders.telescope`` for an order without one); ``site_queue``: in
        network mode (``orders.site_workers``) ``site-<slug>``, where its Voyager activities run,
        else None (docs/network.md). Raises non-retryable ``OrderNotFound`` or ``InvalidOrder``
        (no shot lines)."""
        # One statement, its own transaction: the row, its lines and panels, and the workflow id
        # recorded (activities/order_sql.py READ_ORDER).
        async with one_statement(self.sessionmaker) as conn:
            order = await read_order(conn, ref.order_id, workflow_id=activity.info().workflow_id)
        if not order.shots:
            raise ApplicationError(f"order {ref.order_id} has no shots", type=ERR_INVALID_ORDER, non_retryable=True)
        slug = order.telescope_slug if order.telescope_slug is not None else self.settings.orders.telescope
        return OrderSnapshot(
            telescope=slug,
            site_queue=site_task_queue(slug) if self.settings.orders.site_workers else None,
            order_id=order.id,
            customer_id=order.customer_id,
            plan=order.plan,
            status=OrderStatus(order.status),
            target_name=order.target_name,
            ra_j2000=order.ra_j2000,
            dec_j2000=order.dec_j2000,
            pa=order.pa,
            **stored_constraints(order),
            created_at=aware_utc(order.created_at) or datetime.now(UTC),
            default_lifetime_days=self.settings.billing.order_default_lifetime_days,
            set_guid=order.set_guid,
            target_guid=order.target_guid,
            shots=[ShotLine.model_validate(s) for s in order.shots],
            panels=[PanelLine.model_validate(p) for p in order.panels or ()],
        )

    @activity.defn(name="order_store.set_status")
    async def set_status(self, change: StatusChange) -> StatusChanged:
        """Set a non-final status and insert its ``status`` OrderEvent, once (a retry that finds the
        status already set changes nothing). Final statuses go through :meth:`finalize_order`."""
        if change.status in FINAL_STATUSES:
            raise ApplicationError("final statuses go through finalize_order", type=ERR_INVALID_ORDER, non_retryable=True)
        async with self.sessionmaker() as session:
            order = await lock_order(session, change.order_id)
            if not move_status(session, order, change.status, change.reason):
                return StatusChanged(order_id=change.order_id, status=OrderStatus(order.status), changed=False)
            await session.commit()
        log.info("order.status_changed", order_id=change.order_id, status=change.status.value)
        return StatusChanged(order_id=change.order_id, status=change.status, changed=True)

    @activity.defn(name="order_store.assign_guids")
    async def assign_guids(self, proposal: GuidAssignment) -> GuidAssignment:
        """Store the proposed Set/Target/Shot GUIDs unless the order already has some; returns the
        GUIDs in force. Runs before the submit, so a retried submit finds what an earlier attempt
        created in Voyager under these very GUIDs."""
        async with self.sessionmaker() as session:
            order = await lock_order(session, proposal.order_id)
            guids = await store_guids(session, order, proposal)
            await session.commit()
            return guids

    @activity.defn(name="order_store.record_abort")
    async def record_abort(self, record: AbortRecord) -> Done:
        """Record who aborted, as what and why (the first abort only)."""
        async with self.sessionmaker() as session:
            note_abort(session, await lock_order(session, record.order_id), record)
            await session.commit()
        return Done()

    @activity.defn(name="order_store.finalize_order")
    async def finalize_order(self, req: FinalizeRequest) -> OrderReport:
        """Write the per-filter report into ``Order.report``, set the final status and insert the
        final ``status`` OrderEvent (e-mail outbox: ``pending``), once. A retry returns the stored
        report."""
        return await self.finalize(req)

    async def finalize(self, req: FinalizeRequest, *, refresh: bool = True,
                       settled: SettleResult | None = None) -> OrderReport:
        """:meth:`finalize_order`'s work, also the last part of ``ledger.settle_and_finalize``, which
        passes ``refresh=False`` (it has just recomputed the progress) and its ``settled`` credits
        (stored in this transaction). Raises non-retryable ``InvalidOrder`` for a status that is not
        final."""
        if req.status not in FINAL_STATUSES:
            raise ApplicationError(f"{req.status} is not final", type=ERR_INVALID_ORDER, non_retryable=True)
        async with self.sessionmaker() as session:
            conn = await session.connection()
            # The row as a column tuple (no ORM object), locked for the transaction.
            order = (await conn.execute(sa.select(ORDER).where(ORDER.c.id == req.order_id).with_for_update())).first()
            if order is None:
                raise ApplicationError(f"order {req.order_id} does not exist", type=ERR_ORDER_NOT_FOUND,
                                       non_retryable=True)
            if order.status in FINAL_STATUSES and order.report:
                return OrderReport.model_validate(order.report)
            progress = await progress_now(conn, req.order_id) if refresh else None
            report = await self._report(session, order, req, progress, settled)
            stored = report.model_dump(mode="json")
            payload = {"status": req.status.value, "reason": req.reason, "target_name": order.target_name,
                       "report": stored}
            await conn.execute(FINALIZE_WRITE, {
                "order_id": req.order_id, "status": req.status.value, "reason": req.reason, "report": stored,
                "payload": payload, "now": datetime.now(UTC),
                "captured": settled.captured if settled else None, "released": settled.released if settled else None})
            await session.commit()
        log.info("order.finalized", order_id=req.order_id, status=req.status.value,
                 frames=report.frames_accepted, captured=report.credits_captured)
        return report

    async def _report(self, session: AsyncSession, order: Any, req: FinalizeRequest,
                      progress: OrderProgress | None, settled: SettleResult | None) -> OrderReport:
        """The report of the locked ``order`` row: its progress columns unless ``progress`` (just
        recomputed) is given, its credits unless ``settled`` is; the rest from one read
        (activities/order_sql.py REPORT_READ), a mosaic's panels from a second."""
        read = (await (await session.connection()).execute(REPORT_READ, {"order_id": order.id})).one()
        filters = [
            FilterReport(filter=f["filter"], frames=int(f["frames"]), frames_rejected=int(f["rejected"]),
                         integration_minutes=round(float(f["seconds"]) / 60.0, 2),
                         mean_hfd=round(float(f["hfd"]), 3) if f["hfd"] is not None else None)
            for f in read.filters or ()
        ]
        frames_accepted = progress.frames_accepted if progress else order.frames_accepted
        integration = progress.integration_seconds if progress else order.integration_seconds
        requested = progress.requested_integration_seconds if progress else order.requested_integration_seconds
        mean_hfd = progress.mean_hfd if progress else order.mean_hfd
        return OrderReport(
            order_id=order.id,
            status=req.status,
            reason=req.reason,
            target_name=order.target_name,
            filters=filters,
            frames_accepted=frames_accepted,
            integration_minutes=round(integration / 60.0, 2),
            requested_integration_minutes=round(requested / 60.0, 2),
            mean_hfd=mean_hfd,
            sessions=max(int(read.sessions), int(read.seen_sessions)),
            cost=order.cost,
            credits_held=order.credits_held,
            credits_captured=settled.captured if settled else order.credits_captured,
            credits_released=settled.released if settled else order.credits_released,
            aborted_by=order.aborted_by,
            abort_reason=order.abort_reason,
            jpg_dir=f"{frame_store(self.settings).description}/{FRAMES_PREFIX}/{order.id}/",
            fits_paths=[p for p in read.fits or () if p],
            panels=await panel_reports(session, order.id) if read.has_panels else [],
        )
