"""Telescopes as data: create, update, disable, list, and their public view (docs/telescopes.md §1).

The admin API and ``stellar telescope`` both call these. A telescope's site is handed to the
ephemeris helpers as a :class:`core.settings.SiteSettings` (``order_schedule.site_of``), so the code
that took the one configured site takes any telescope's.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import TELESCOPE_EXISTS, UNKNOWN_TELESCOPE, ApiError, Unprocessable, domain_error
from api.schemas.telescopes import (
    DarkWindow, FieldOfViewOut, FilterSlot, SiteOut, TelescopeIn, TelescopeOut, TelescopePublic, TelescopeUpdate,
)
from api.services.order_schedule import site_of, site_sky
from models.db import Customer, Telescope
from models.telescopes import TelescopeStatus, optics_of


def filter_names(t: Telescope) -> list[str]:
    return [f["name"] for f in sorted(t.filters, key=lambda f: f["index"])]


def unknown_telescope(slug: str) -> ApiError:
    """The NotFound ``unknown_telescope`` error for ``slug``."""
    return domain_error(UNKNOWN_TELESCOPE, f"no telescope {slug!r}", fields={"telescope": f"no telescope {slug!r}"})


async def by_slug(session: AsyncSession, slug: str) -> Telescope:
    """Raises NotFound ``unknown_telescope``."""
    row = (await session.exec(select(Telescope).where(Telescope.slug == slug))).first()
    if row is None:
        raise unknown_telescope(slug)
    return row


async def all_telescopes(session: AsyncSession, *, include_retired: bool = True) -> list[Telescope]:
    query = select(Telescope).order_by(Telescope.slug)
    if not include_retired:
        query = query.where(Telescope.status != TelescopeStatus.RETIRED.value)
    return list((await session.exec(query)).all())


async def online(session: AsyncSession) -> list[Telescope]:
    return list((await session.exec(
        select(Telescope).where(Telescope.status == TelescopeStatus.ONLINE.value).order_by(Telescope.slug))).all())


async def _check_host(session: AsyncSession, customer_id: int | None) -> None:
    if customer_id is not None and await session.get(Customer, customer_id) is None:
        raise Unprocessable("invalid telescope", fields={"host_customer_id": f"no customer {customer_id}"})


def _values(body: TelescopeIn | TelescopeUpdate) -> dict:
    values = body.model_dump(exclude_unset=True, exclude_none=True)
    if "filters" in values:
        values["filters"] = [{"name": f.name, "index": f.index} for f in body.filters]
    return values


async def create(session: AsyncSession, body: TelescopeIn) -> Telescope:
    """Insert a telescope. Raises Conflict ``telescope_exists``, Unprocessable (unknown host)."""
    await _check_host(session, body.host_customer_id)
    row = Telescope(**{"price_multiplier": Decimal(1), "host_share_percent": 0,
                       "status": TelescopeStatus.ONLINE.value, **_values(body)})
    session.add(row)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise domain_error(TELESCOPE_EXISTS, f"telescope {body.slug!r} already exists",
                           fields={"slug": "already taken"}) from None
    await session.refresh(row)
    return row


async def update(session: AsyncSession, slug: str, body: TelescopeUpdate) -> Telescope:
    """Change the given fields. Orders already placed keep their telescope and their price.
    Raises NotFound ``unknown_telescope``, Unprocessable (unknown host)."""
    row = await by_slug(session, slug)
    await _check_host(session, body.host_customer_id)
    for key, value in _values(body).items():
        setattr(row, key, value)
    row.updated_at = datetime.now(UTC)
    session.add(row)
    await session.commit()
    await session.refresh(row)
    return row


async def disable(session: AsyncSession, slug: str, status: str = TelescopeStatus.MAINTENANCE.value) -> Telescope:
    """Take a telescope out of assignment (``maintenance``, or ``retired`` for good)."""
    return await update(session, slug, TelescopeUpdate(status=status))


def _dark_window(t: Telescope, now: datetime) -> DarkWindow | None:
    sky = site_sky(site_of(t))
    night = sky.night(now.timestamp())
    if night.dawn is not None and night.dawn < now.timestamp():
        night = sky.night(night.end + 1)
    if night.dusk is None or night.dawn is None:
        return None
    return DarkWindow(start=datetime.fromtimestamp(night.dusk, UTC), end=datetime.fromtimestamp(night.dawn, UTC))


def _public_fields(t: Telescope, tonight: DarkWindow | None) -> dict:
    optics = optics_of(t)
    fov = optics.field_of_view
    return dict(
        slug=t.slug, name=t.name,
        site=SiteOut(name=t.site_name, latitude=t.latitude, longitude=t.longitude, elevation=t.elevation,
                     time_zone=t.time_zone, horizon_alt=t.horizon_alt),
        aperture_mm=t.aperture_mm, focal_length_mm=t.focal_length_mm,
        field_of_view=FieldOfViewOut(width_deg=round(fov.width_deg, 4), height_deg=round(fov.height_deg, 4),
                                     scale_arcsec_px=round(optics.scale_arcsec_per_px, 4)),
        filters=filter_names(t), status=t.status, price_multiplier=t.price_multiplier, tonight=tonight)


async def public_views(rows: list[Telescope], now: datetime | None = None) -> list[TelescopePublic]:
    """The public view of ``rows``; the dark windows are computed in a thread (astropy)."""
    when = now or datetime.now(UTC)
    windows = await asyncio.to_thread(lambda: [_dark_window(t, when) for t in rows])
    return [TelescopePublic(**_public_fields(t, w)) for t, w in zip(rows, windows)]


async def admin_view(t: Telescope, now: datetime | None = None) -> TelescopeOut:
    tonight = await asyncio.to_thread(_dark_window, t, now or datetime.now(UTC))
    return TelescopeOut(
        **_public_fields(t, tonight), id=t.id, sensor_width_px=t.sensor_width_px,
        sensor_height_px=t.sensor_height_px, pixel_size_um=t.pixel_size_um,
        filter_slots=[FilterSlot(**f) for f in t.filters], voyager_profile=t.voyager_profile,
        host_customer_id=t.host_customer_id, host_share_percent=t.host_share_percent,
        last_seen_at=t.last_seen_at, created_at=t.created_at, updated_at=t.updated_at)
