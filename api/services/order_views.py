"""Read side of orders: ownership checks, the order view with its progress, lists and images.

Progress per filter is computed from the ingested frames (``shot_done``), the source of truth the
workflow's session watch writes; totals come from the order's shot lines × repeat.
"""

from __future__ import annotations

from sqlalchemy import case, func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import NotFound
from api.schemas.orders import (
    Credits,
    FilterProgress,
    ImageOut,
    ImagePage,
    OrderOut,
    OrderPage,
    OrderSummary,
    Progress,
    ShotOut,
)
from api.security import Principal
from api.services.order_schedule import Schedule, schedules
from core.settings import Settings, SiteSettings
from models.db import Order, OrderShot, ShotDone

LATEST_FRAMES = 5


async def get_order(session: AsyncSession, order_id: int, principal: Principal | None = None) -> Order:
    """The order; with ``principal``, only if it is theirs. Raises NotFound (also for others')."""
    order = await session.get(Order, order_id)
    if order is None or (principal is not None and order.customer_id != principal.customer_id):
        raise NotFound(f"order {order_id} not found")
    return order


def image_out(row: ShotDone) -> ImageOut:
    return ImageOut(
        id=row.id, order_id=row.order_id, filter=row.filter, exposure=row.exposure, hfd=row.hfd,
        accepted=row.accepted, taken_at=row.taken_at, filename=row.filename,
        jpg_url=f"/api/images/{row.id}.jpg" if row.jpg_path else None, fits_url=f"/api/images/{row.id}/fits",
        status="expired" if row.expired_at else "available", expired_at=row.expired_at,
    )


def _workflow_url(settings: Settings, workflow_id: str | None) -> str | None:
    if not workflow_id:
        return None
    base = settings.temporal.ui_url.rstrip("/")
    return f"{base}/namespaces/{settings.temporal.namespace}/workflows/{workflow_id}"


async def _progress(session: AsyncSession, order: Order, shots: list[OrderShot]) -> Progress:
    frames = ShotDone.__table__.c
    rows = (
        await session.exec(
            select(
                frames.filter,
                func.count(),
                func.sum(case((frames.accepted, 1), else_=0)),
                func.coalesce(func.sum(case((frames.accepted, frames.exposure), else_=0.0)), 0.0),
                func.avg(case((frames.accepted, frames.hfd), else_=None)),
            )
            .where(frames.order_id == order.id, frames.is_deleted.is_(False))
            .group_by(frames.filter)
        )
    ).all()
    done = {r[0]: (int(r[1]), int(r[2] or 0), float(r[3] or 0.0), r[4]) for r in rows}
    totals: dict[str, int] = {}
    for s in shots:
        totals[s.filter] = totals.get(s.filter, 0) + s.quantity * order.repeat
    per_filter = []
    for name in list(totals) + [f for f in done if f not in totals]:
        n, accepted, seconds, hfd = done.get(name, (0, 0, 0.0, None))
        per_filter.append(FilterProgress(
            filter=name, done=n, total=totals.get(name, 0), accepted=accepted, integration_seconds=seconds,
            mean_hfd=round(float(hfd), 3) if hfd is not None else None,
        ))
    accepted_total = sum(p.accepted for p in per_filter)
    hfd_weighted = [(p.mean_hfd, p.accepted) for p in per_filter if p.mean_hfd is not None and p.accepted]
    mean_hfd = (
        round(sum(h * n for h, n in hfd_weighted) / sum(n for _, n in hfd_weighted), 3) if hfd_weighted else None
    )
    return Progress(
        shots_done=sum(p.done for p in per_filter),
        shots_total=sum(totals.values()),
        frames_accepted=accepted_total,
        integration_seconds=sum(p.integration_seconds for p in per_filter),
        requested_integration_seconds=order.requested_integration_seconds
        or sum(s.exposure * s.quantity * order.repeat for s in shots),
        mean_hfd=mean_hfd,
        per_filter=per_filter,
    )


async def order_out(session: AsyncSession, order: Order, settings: Settings, *, live_frames: bool = True,
                    schedule: bool = True) -> OrderOut:
    """The full view of ``order``: constraints, credits, progress, latest frames, report, and while
    it waits its ``next_window``/``orders_ahead`` (api/services/order_schedule.py).
    ``live_frames`` False leaves ``latest_frames`` empty (an order still running, seen without the
    live dashboard: api/services/dashboard.py). ``schedule`` False leaves ``next_window`` and
    ``orders_ahead`` null (the ``POST /api/orders`` answer: its latency stays free of the ephemeris;
    the estimate gave the window before the order, GET gives it after)."""
    shots = list((await session.exec(
        select(OrderShot).where(OrderShot.order_id == order.id).order_by(OrderShot.position, OrderShot.id)
    )).all())
    latest = list((await session.exec(
        select(ShotDone).where(ShotDone.order_id == order.id, ShotDone.is_deleted.is_(False))
        .order_by(ShotDone.id.desc()).limit(LATEST_FRAMES)
    )).all()) if live_frames else []
    when = (await schedules(session, settings.site, [order]))[order.id] if schedule else Schedule()
    return OrderOut(
        id=order.id, customer_id=order.customer_id, status=order.status, status_reason=order.status_reason,
        target_name=order.target_name, ra_j2000=order.ra_j2000, dec_j2000=order.dec_j2000, pa=order.pa,
        plan=order.plan, priority=order.priority, c_moon_down=order.c_moon_down,
        c_hfd_mean_limit=order.c_hfd_mean_limit, c_alt_min=order.c_alt_min, c_ha_start=order.c_ha_start,
        c_ha_end=order.c_ha_end, date_start=order.date_start, date_end=order.date_end, repeat=order.repeat,
        shots=[ShotOut(filter=s.filter, exposure=s.exposure, quantity=s.quantity, bin=s.bin, gain=s.gain,
                       offset=s.offset) for s in shots],
        cost=order.cost,
        credits=Credits(cost=order.cost, held=order.credits_held, captured=order.credits_captured,
                        released=order.credits_released),
        workflow_id=order.workflow_id, workflow_url=_workflow_url(settings, order.workflow_id),
        progress=await _progress(session, order, shots),
        latest_frames=[image_out(r) for r in latest],
        report=order.report, aborted_by=order.aborted_by, abort_reason=order.abort_reason,
        created_at=order.created_at, updated_at=order.updated_at, finished_at=order.finished_at,
        next_window=when.next_window, orders_ahead=when.orders_ahead,
    )


def _summary(o: Order, when: Schedule) -> OrderSummary:
    return OrderSummary(
        id=o.id, customer_id=o.customer_id, status=o.status, target_name=o.target_name, plan=o.plan, cost=o.cost,
        workflow_id=o.workflow_id, created_at=o.created_at, updated_at=o.updated_at, shots_done=o.shots_done,
        shots_total=o.shots_total, next_window=when.next_window, orders_ahead=when.orders_ahead,
    )


async def list_orders(
    session: AsyncSession, *, customer_id: int | None, status: str | None, limit: int, offset: int,
    site: SiteSettings | None = None,
) -> OrderPage:
    """Orders newest first; ``customer_id`` None = every customer's (support). With ``site``, waiting
    orders carry ``next_window``/``orders_ahead``."""
    where = []
    if customer_id is not None:
        where.append(Order.customer_id == customer_id)
    if status is not None:
        where.append(Order.status == status)
    total = await session.scalar(select(func.count()).select_from(Order).where(*where))
    rows = (await session.exec(
        select(Order).where(*where).order_by(Order.id.desc()).limit(limit).offset(offset)
    )).all()
    when = await schedules(session, site, rows) if site is not None else {}
    return OrderPage(items=[_summary(o, when.get(o.id, Schedule())) for o in rows], total=int(total or 0),
                     limit=limit, offset=offset)


async def list_images(session: AsyncSession, order_id: int, *, limit: int, offset: int) -> ImagePage:
    where = (ShotDone.order_id == order_id, ShotDone.is_deleted.is_(False))
    total = await session.scalar(select(func.count()).select_from(ShotDone).where(*where))
    rows = (await session.exec(
        select(ShotDone).where(*where).order_by(ShotDone.id).limit(limit).offset(offset)
    )).all()
    return ImagePage(items=[image_out(r) for r in rows], total=int(total or 0), limit=limit, offset=offset)


async def get_image(session: AsyncSession, image_id: int, principal: Principal) -> ShotDone:
    """The frame if its order is the caller's. Raises NotFound."""
    row = (await session.exec(
        select(ShotDone).join(Order, Order.id == ShotDone.order_id)
        .where(ShotDone.id == image_id, Order.customer_id == principal.customer_id, ShotDone.is_deleted.is_(False))
    )).first()
    if row is None:
        raise NotFound(f"image {image_id} not found")
    return row
