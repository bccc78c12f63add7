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
    PanelProgress,
    Progress,
    ShotOut,
)
from api.security import Principal
from api.services.order_schedule import Schedule, schedules
from core.settings import Settings, SiteSettings
from models.db import Customer, Order, OrderPanel, OrderShot, ShotDone, Telescope

LATEST_FRAMES = 5


async def get_order(session: AsyncSession, order_id: int, principal: Principal | None = None) -> Order:
    """The order; with ``principal``, only if it is theirs. Raises NotFound (also for others')."""
    order = await session.get(Order, order_id)
    if order is None or (principal is not None and order.customer_id != principal.customer_id):
        raise NotFound(f"order {order_id} not found")
    return order


def image_out(row: ShotDone, panel: str | None = None) -> ImageOut:
    return ImageOut(
        panel=panel,
        id=row.id, order_id=row.order_id, filter=row.filter, exposure=row.exposure, hfd=row.hfd,
        accepted=row.accepted, taken_at=row.taken_at, filename=row.filename,
        jpg_url=f"/api/images/{row.id}.jpg" if (row.jpg_key or row.jpg_path) else None,
        fits_url=f"/api/images/{row.id}/fits", fits_sha256=row.fits_sha256,
        status="expired" if row.expired_at else "available", expired_at=row.expired_at,
    )


def _workflow_url(settings: Settings, workflow_id: str | None) -> str | None:
    if not workflow_id:
        return None
    base = settings.temporal.ui_url.rstrip("/")
    return f"{base}/namespaces/{settings.temporal.namespace}/workflows/{workflow_id}"


async def _progress(session: AsyncSession, order: Order, shots: list[OrderShot], *, fresh: bool = False) -> Progress:
    """``fresh``: the order was just created and has no frame yet (no query for them)."""
    frames = ShotDone.__table__.c
    rows = [] if fresh else (
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
        per_panel=await _panel_progress(session, order, shots),
        shots_done=sum(p.done for p in per_filter),
        shots_total=sum(totals.values()),
        frames_accepted=accepted_total,
        integration_seconds=sum(p.integration_seconds for p in per_filter),
        requested_integration_seconds=order.requested_integration_seconds
        or sum(s.exposure * s.quantity * order.repeat for s in shots),
        mean_hfd=mean_hfd,
        per_filter=per_filter,
    )


async def _panels(session: AsyncSession, order_id: int) -> list[OrderPanel]:
    return list((await session.exec(
        select(OrderPanel).where(OrderPanel.order_id == order_id).order_by(OrderPanel.panel_index))).all())


async def _panel_progress(session: AsyncSession, order: Order, shots: list[OrderShot]) -> list[PanelProgress]:
    """Per mosaic panel: frames of its shot lines (a frame belongs to the panel of its shot GUID)."""
    if not order.mosaic:  # only a mosaic order has panels: no query for the others
        return []
    panels = await _panels(session, order.id)
    if not panels:
        return []
    frames = ShotDone.__table__.c
    rows = (await session.exec(
        select(frames.shot_guid, func.count(), func.sum(case((frames.accepted, 1), else_=0)),
               func.coalesce(func.sum(case((frames.accepted, frames.exposure), else_=0.0)), 0.0),
               func.avg(case((frames.accepted, frames.hfd), else_=None)))
        .where(frames.order_id == order.id, frames.is_deleted.is_(False))
        .group_by(frames.shot_guid)
    )).all()
    by_guid = {r[0]: (int(r[1]), int(r[2] or 0), float(r[3] or 0.0), r[4]) for r in rows}
    out = []
    for p in panels:
        per_filter: dict[str, FilterProgress] = {}
        for s in (s for s in shots if s.panel_index == p.panel_index):
            n, acc, secs, hfd = by_guid.get(s.shot_guid, (0, 0, 0.0, None)) if s.shot_guid else (0, 0, 0.0, None)
            f = per_filter.setdefault(s.filter, FilterProgress(filter=s.filter, done=0, total=0, accepted=0,
                                                               integration_seconds=0.0))
            f.done, f.total, f.accepted = f.done + n, f.total + s.quantity * order.repeat, f.accepted + acc
            f.integration_seconds += secs
            if hfd is not None:
                f.mean_hfd = round(float(hfd), 3)
        lines = list(per_filter.values())
        out.append(PanelProgress(
            panel_index=p.panel_index, name=p.name, column=p.column, row=p.row, ra_j2000=p.ra_j2000,
            dec_j2000=p.dec_j2000, done=sum(f.done for f in lines), total=sum(f.total for f in lines),
            accepted=sum(f.accepted for f in lines), integration_seconds=sum(f.integration_seconds for f in lines),
            per_filter=lines))
    return out


def _ordered_shots(shots: list[OrderShot]) -> list[ShotOut]:
    """The shot list as the customer ordered it: a mosaic's per-panel lines summed back by position."""
    merged: dict[int, ShotOut] = {}
    for s in shots:
        line = merged.get(s.position)
        if line is None:
            merged[s.position] = ShotOut(filter=s.filter, exposure=s.exposure, quantity=s.quantity, bin=s.bin,
                                         gain=s.gain, offset=s.offset)
        else:
            line.quantity += s.quantity
    return [merged[k] for k in sorted(merged)]


async def panel_names(session: AsyncSession, order_id: int) -> dict[str, str]:
    """A mosaic order's shot GUID → panel name (empty for a single-field order)."""
    rows = (await session.exec(
        select(OrderShot.shot_guid, OrderPanel.name)
        .join(OrderPanel, (OrderPanel.order_id == OrderShot.order_id)
              & (OrderPanel.panel_index == OrderShot.panel_index))
        .where(OrderShot.order_id == order_id)
    )).all()
    return {g: n for g, n in rows if g}


async def order_out(session: AsyncSession | None, order: Order, settings: Settings, *, live_frames: bool = True,
                    schedule: bool = True, fresh: bool = False, shots: list[OrderShot] | None = None,
                    telescope: str | None = None) -> OrderOut:
    """The full view of ``order``: constraints, credits, progress, latest frames, report, and while
    it waits its ``next_window``/``orders_ahead`` (api/services/order_schedule.py).
    ``live_frames`` False leaves ``latest_frames`` empty (an order still running, seen without the
    live dashboard: api/services/dashboard.py). ``schedule`` False leaves ``next_window`` and
    ``orders_ahead`` null (the ``POST /api/orders`` answer: its latency stays free of the ephemeris;
    the estimate gave the window before the order, GET gives it after). For an order just created
    (the ``POST`` answer) the caller says so (``fresh``: it has no frames) and passes what it wrote
    (``shots``, in position order; ``telescope``: the slug), so a single-field order's answer needs
    no query at all: ``session`` may then be None."""
    if shots is None:
        shots = list((await session.exec(
            select(OrderShot).where(OrderShot.order_id == order.id).order_by(OrderShot.position, OrderShot.id)
        )).all())
    latest = [] if fresh else list((await session.exec(
        select(ShotDone).where(ShotDone.order_id == order.id, ShotDone.is_deleted.is_(False))
        .order_by(ShotDone.id.desc()).limit(LATEST_FRAMES)
    )).all()) if live_frames else []
    when = (await schedules(session, settings.site, [order]))[order.id] if schedule else Schedule()
    names = await panel_names(session, order.id) if order.mosaic else {}
    return OrderOut(
        id=order.id, customer_id=order.customer_id, status=order.status, status_reason=order.status_reason,
        target_name=order.target_name, ra_j2000=order.ra_j2000, dec_j2000=order.dec_j2000, pa=order.pa,
        plan=order.plan, set_id=order.set_id, priority=order.priority, c_moon_down=order.c_moon_down,
        c_hfd_mean_limit=order.c_hfd_mean_limit, c_alt_min=order.c_alt_min, c_ha_start=order.c_ha_start,
        c_ha_end=order.c_ha_end, date_start=order.date_start, date_end=order.date_end, repeat=order.repeat,
        shots=_ordered_shots(shots), mosaic=order.mosaic,
        cost=order.cost,
        credits=Credits(cost=order.cost, held=order.credits_held, captured=order.credits_captured,
                        released=order.credits_released),
        workflow_id=order.workflow_id, workflow_url=_workflow_url(settings, order.workflow_id),
        progress=await _progress(session, order, shots, fresh=fresh),
        latest_frames=[image_out(r, names.get(r.shot_guid or "")) for r in latest],
        report=order.report, aborted_by=order.aborted_by, abort_reason=order.abort_reason,
        created_at=order.created_at, updated_at=order.updated_at, finished_at=order.finished_at,
        next_window=when.next_window, orders_ahead=when.orders_ahead,
        telescope=telescope if telescope is not None else (await _slugs(session, [order])).get(order.telescope_id),
        assignment_reason=order.assignment_reason,
    )


async def _slugs(session: AsyncSession, orders) -> dict[int, str]:
    """``{telescope id: slug}`` of ``orders``' telescopes."""
    ids = {o.telescope_id for o in orders if o.telescope_id is not None}
    if not ids:
        return {}
    return dict((await session.exec(select(Telescope.id, Telescope.slug).where(Telescope.id.in_(ids)))).all())


def _summary(o: Order, when: Schedule, slugs: dict[int, str]) -> OrderSummary:
    return OrderSummary(
        id=o.id, customer_id=o.customer_id, status=o.status, target_name=o.target_name, plan=o.plan,
        set_id=o.set_id, cost=o.cost,
        workflow_id=o.workflow_id, created_at=o.created_at, updated_at=o.updated_at, shots_done=o.shots_done,
        shots_total=o.shots_total, next_window=when.next_window, orders_ahead=when.orders_ahead,
        telescope=slugs.get(o.telescope_id),
    )


def _like(text: str) -> str:
    """``text`` with LIKE's wildcards escaped (searched literally)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_orders(
    session: AsyncSession, *, customer_id: int | None, status: str | None, limit: int, offset: int,
    site: SiteSettings | None = None, target: str | None = None, customer_email: str | None = None,
) -> OrderPage:
    """Orders newest first; ``customer_id`` None = every customer's (support). With ``site``, waiting
    orders carry ``next_window``/``orders_ahead``. ``target`` / ``customer_email``: case-insensitive
    substrings of the target name / the customer's e-mail (the support console's search)."""
    where = []
    if customer_id is not None:
        where.append(Order.customer_id == customer_id)
    if status is not None:
        where.append(Order.status == status)
    if target:
        where.append(Order.target_name.ilike(f"%{_like(target)}%", escape="\\"))
    if customer_email:
        where.append(Order.customer_id.in_(
            select(Customer.id).where(Customer.email.ilike(f"%{_like(customer_email)}%", escape="\\"))))
    total = await session.scalar(select(func.count()).select_from(Order).where(*where))
    rows = (await session.exec(
        select(Order).where(*where).order_by(Order.id.desc()).limit(limit).offset(offset)
    )).all()
    when = await schedules(session, site, rows) if site is not None else {}
    slugs = await _slugs(session, rows)
    return OrderPage(items=[_summary(o, when.get(o.id, Schedule()), slugs) for o in rows], total=int(total or 0),
                     limit=limit, offset=offset)


async def list_images(session: AsyncSession, order_id: int, *, limit: int, offset: int,
                      panel: int | None = None, with_deleted: bool = False) -> ImagePage:
    """The order's frames, oldest first; ``panel``: only a mosaic panel's (its ``panel_index``).
    ``with_deleted``: also the frames Voyager rejected and deleted (their rows: filter, time, HFD;
    no file of theirs is served, ``get_image`` refuses them)."""
    where = [ShotDone.order_id == order_id]
    if not with_deleted:
        where.append(ShotDone.is_deleted.is_(False))
    if panel is not None:
        where.append(ShotDone.shot_guid.in_(
            select(OrderShot.shot_guid).where(OrderShot.order_id == order_id, OrderShot.panel_index == panel)))
    total = await session.scalar(select(func.count()).select_from(ShotDone).where(*where))
    rows = (await session.exec(
        select(ShotDone).where(*where).order_by(ShotDone.id).limit(limit).offset(offset)
    )).all()
    names = await panel_names(session, order_id)
    return ImagePage(items=[image_out(r, names.get(r.shot_guid or "")) for r in rows], total=int(total or 0),
                     limit=limit, offset=offset)


async def get_image(session: AsyncSession, image_id: int, principal: Principal, *,
                    with_deleted: bool = False) -> ShotDone:
    """The frame if its order is the caller's; a frame Voyager rejected and deleted only
    ``with_deleted`` (its JPG preview may have been kept: the gallery shows it). Raises NotFound."""
    where = [ShotDone.id == image_id, Order.customer_id == principal.customer_id]
    if not with_deleted:
        where.append(ShotDone.is_deleted.is_(False))
    row = (await session.exec(select(ShotDone).join(Order, Order.id == ShotDone.order_id).where(*where))).first()
    if row is None:
        raise NotFound(f"image {image_id} not found")
    return row
