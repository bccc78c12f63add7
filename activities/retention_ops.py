"""Retention of frames (docs/operations.md §Retention): find what is due, notify, delete files.

An ended order's FITS and JPG are kept ``retention.days`` days after ``order.finished_at``; the
customer is told ``retention.notice_days`` before, through the notification outbox (an
``order_event`` of kind ``retention`` with ``email_status='pending'``) with the link to the order's
zip. Deletion never comes sooner than ``notice_days`` after the notice, so a missed run postpones
it instead of skipping the notice. Never touched: an order that is not terminal, or whose payment
is in dispute (``billing.disputes.order_payment_in_dispute``).

Every write is idempotent: the notice is recorded on the order row under its lock; each frame is
expired in its own transaction after its files are gone, so a killed worker's run resumes where it
stopped and a second run deletes nothing.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from activities._db import sql
from activities.order_store import lock_order
from billing.disputes import order_payment_in_dispute
from core.frame_files import fits_path, jpg_path
from core.frame_store import frame_store
from core.settings import Settings
from models.data_care import (
    RetentionDeleteResult,
    RetentionDue,
    RetentionNoticeResult,
    RetentionOrderInput,
    RetentionScanInput,
)
from models.db import Order, OrderEvent, ShotDone
from models.orders import FINAL_STATUSES

log = structlog.get_logger(__name__)

_FINAL = [s.value for s in FINAL_STATUSES]


def zip_url(settings: Settings, order_id: int) -> str:
    """The order's zip of every frame (``GET /api/orders/{id}/frames.zip``), absolute."""
    return f"{settings.api.public_url.rstrip('/')}/api/orders/{order_id}/frames.zip"


#: The daily pass starts at about the same time each day: one that starts a moment earlier in the
#: day than the pass that sent the notice must not postpone the deletion by a whole day.
PASS_JITTER = timedelta(hours=1)


def delete_on(order: Order, as_of: datetime, days: int, notice_days: int) -> datetime:
    """The deletion date the notice announces: ``days`` after the order ended, and never sooner
    than ``notice_days`` after the notice (sent at ``as_of`` when not yet sent)."""
    noticed = order.retention_notice_at or as_of
    return max(order.finished_at + timedelta(days=days), noticed + timedelta(days=notice_days))


def deletion_due(order: Order, as_of: datetime, days: int, notice_days: int) -> bool:
    """The notice went out and the pass at ``as_of`` is the one of the announced day (or later)."""
    if order.retention_notice_at is None:
        return False
    return as_of >= order.finished_at + timedelta(days=days) and \
        as_of >= order.retention_notice_at + timedelta(days=notice_days) - PASS_JITTER


class RetentionActivities:
    """Database and file side of ``RetentionWorkflow``. ``settings``: the defaults
    (``retention``), the image store and directories, the public URL for the zip link."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings

    @activity.defn(name="retention.scan")
    async def scan(self, inp: RetentionScanInput) -> RetentionDue:
        """Ended orders with frames still on disk that are due for a notice or a deletion at
        ``inp.as_of``; orders in dispute are reported in ``held_in_dispute`` and left alone."""
        days = inp.days or self.settings.retention.days
        notice_days = self.settings.retention.notice_days if inp.notice_days is None else inp.notice_days
        due = RetentionDue(days=days, notice_days=notice_days)
        horizon = inp.as_of - timedelta(days=max(days - notice_days, 0))
        live = sa.exists().where(ShotDone.order_id == Order.id, ShotDone.expired_at.is_(None),
                                 ShotDone.is_deleted.is_(False))
        async with self.sessionmaker() as session:
            orders = (await session.exec(
                select(Order).where(Order.status.in_(_FINAL), Order.finished_at.is_not(None),
                                    Order.finished_at <= horizon, live).order_by(Order.id))).all()
            for order in orders:
                if await order_payment_in_dispute(await session.connection(), order.id):
                    due.held_in_dispute.append(order.id)
                elif order.retention_notice_at is None:
                    due.notify.append(order.id)
                elif deletion_due(order, inp.as_of, days, notice_days):
                    due.delete.append(order.id)
        return due

    @activity.defn(name="retention.notify")
    async def notify(self, inp: RetentionOrderInput) -> RetentionNoticeResult:
        """Record the notice on the order and put it in the outbox, once."""
        async with self.sessionmaker() as session:
            order = await lock_order(session, inp.order_id)
            when = delete_on(order, inp.as_of, inp.days, inp.notice_days)
            url = zip_url(self.settings, order.id)
            if order.retention_notice_at is not None:
                return RetentionNoticeResult(order_id=order.id, sent=False, delete_on=when, zip_url=url)
            order.retention_notice_at = inp.as_of
            frames = await session.scalar(select(sa.func.count()).select_from(ShotDone).where(
                ShotDone.order_id == order.id, ShotDone.expired_at.is_(None), ShotDone.is_deleted.is_(False)))
            session.add(order)
            session.add(OrderEvent(order_id=order.id, kind="retention", email_status="pending", payload={
                "notice": "frames_expiring", "target_name": order.target_name, "delete_on": when.isoformat(),
                "frames": int(frames or 0), "zip_url": url, "retention_days": inp.days}))
            await session.commit()
        log.info("retention.notice_sent", order_id=inp.order_id, delete_on=when.isoformat(), frames=frames)
        return RetentionNoticeResult(order_id=inp.order_id, sent=True, delete_on=when, zip_url=url)

    async def _recheck(self, inp: RetentionOrderInput) -> str:
        """Why the order's files must not be deleted now ('' = they may): the scan is a moment
        ago, and a dispute or a late status change may have come in since."""
        async with self.sessionmaker() as session:
            order = await lock_order(session, inp.order_id)
            if order.status not in _FINAL or order.finished_at is None:
                return "not_terminal"
            if await order_payment_in_dispute(await session.connection(), order.id):
                return "in_dispute"
            if not deletion_due(order, inp.as_of, inp.days, inp.notice_days):
                return "not_due"
        return ""

    def _remove(self, row: ShotDone) -> tuple[int, int]:
        """Delete the frame's objects in the image store (docs/frames.md) and, for a frame ingested
        before the store, its files on this host; returns (files, bytes) deleted. Raises
        ObjectStoreError (the activity is retried; a deleted object is simply gone the next time)."""
        files = size = 0
        keys = [k for k in (row.jpg_key, row.fits_key) if k]
        if keys:
            store = frame_store(self.settings)
            present = [(k, m) for k, m in ((k, store.head(k)) for k in keys) if m is not None]
            store.delete([k for k, _ in present])  # only present ones: a local store refuses a missing key
            files += len(present)
            size += sum(m.size for _, m in present)
        legacy = (jpg_path(self.settings, row.jpg_path) if not row.jpg_key else None,
                  fits_path(self.settings, row.fits_path or row.filename) if not row.fits_key else None)
        for path in legacy:
            if path is not None:
                size += path.stat().st_size
                path.unlink(missing_ok=True)
                files += 1
        return files, size

    @activity.defn(name="retention.delete_frames")
    async def delete_frames(self, inp: RetentionOrderInput) -> RetentionDeleteResult:
        """Delete the FITS and JPG of every frame of the order not yet expired, then mark each
        ``expired_at = as_of``; heartbeats per frame. Logged per order (``retention.order_expired``)."""
        result = RetentionDeleteResult(order_id=inp.order_id)
        result.skipped = await self._recheck(inp)
        if result.skipped:
            log.info("retention.order_kept", order_id=inp.order_id, reason=result.skipped)
            return result
        async with self.sessionmaker() as session:
            rows = (await session.exec(select(ShotDone).where(
                ShotDone.order_id == inp.order_id, ShotDone.expired_at.is_(None)).order_by(ShotDone.id))).all()
        for row in rows:
            files, size = await asyncio.to_thread(self._remove, row)
            async with self.sessionmaker() as session:
                await sql(session, sa.update(ShotDone).where(ShotDone.id == row.id, ShotDone.expired_at.is_(None))
                          .values(expired_at=inp.as_of))
                await session.commit()
            result.frames += 1
            result.files += files
            result.bytes += size
            activity.heartbeat(result.frames)
        async with self.sessionmaker() as session:
            await sql(session, sa.update(Order).where(Order.id == inp.order_id, Order.frames_expired_at.is_(None))
                      .values(frames_expired_at=inp.as_of))
            await session.commit()
        log.info("retention.order_expired", order_id=inp.order_id, frames=result.frames, files=result.files,
                 bytes=result.bytes, as_of=inp.as_of.isoformat())
        return result
