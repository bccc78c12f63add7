"""When will it run: an order's ``next_window`` and ``orders_ahead``, and a target's window before
it is bought (``POST /api/pricing/estimate``).

The window is :func:`core.ephemeris.next_window` on the site's night grids (``GRID_STEP``, the
site's ``horizon_alt``): the same cells the simulated telescope schedules on
(voyager/simulator/planner.py), so what the API promises is when the telescope starts. Nights,
moon and target altitudes are computed once per site and kept (:func:`site_sky`), and the astropy
work runs in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Iterable

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.catalog import UnknownTarget, resolve
from api.errors import Unprocessable
from api.schemas.orders import NextWindow
from api.schemas.pricing import EstimateTarget
from core import ephemeris
from core.ephemeris import GRID_STEP, Constraints, Sky
from core.settings import SiteSettings
from models.db import Order, Telescope
from models.orders import OrderStatus

#: Orders that have not started imaging yet (a running or ended order has no next window).
WAITING = (OrderStatus.PENDING.value, OrderStatus.HELD.value, OrderStatus.SUBMITTED.value)
#: Nights of one site kept in memory: a moon-down target's look-ahead (about a lunation) and more.
KEEP_NIGHTS = ephemeris.MAX_NIGHTS_AHEAD + 15


@lru_cache(maxsize=16)
def _sky(latitude: float, longitude: float, elevation: float) -> Sky:
    return Sky(latitude, longitude, elevation, GRID_STEP, keep_nights=KEEP_NIGHTS)


def site_of(t: Telescope) -> SiteSettings:
    """A telescope's site in the shape the ephemeris helpers take."""
    return SiteSettings(name=t.site_name, latitude=t.latitude, longitude=t.longitude, elevation=t.elevation,
                        horizon_alt=t.horizon_alt, time_zone=t.time_zone)


def site_sky(site: SiteSettings) -> Sky:
    """The one :class:`Sky` of ``site`` in this process (its nights are cached across requests)."""
    return _sky(site.latitude, site.longitude, site.elevation)


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def constraints(site: SiteSettings, *, ra_j2000: float, dec_j2000: float, c_alt_min: float,
                c_moon_down: bool, c_ha_start: float | None = None, c_ha_end: float | None = None,
                date_start: datetime | None = None, date_end: datetime | None = None) -> Constraints:
    """An order's (or an estimate's) constraints as the ephemeris takes them. ``ra_j2000``: hours;
    ``dec_j2000``, ``c_alt_min``: degrees; ``c_ha_*``: hours; dates: datetimes (naive = UTC)."""
    return Constraints(ra_hours=ra_j2000, dec_deg=dec_j2000, alt_min=c_alt_min, horizon_alt=site.horizon_alt,
                       ha_start=c_ha_start, ha_end=c_ha_end, moon_down=c_moon_down,
                       date_start=_epoch(date_start), date_end=_epoch(date_end))


def order_constraints(site: SiteSettings, order: Order) -> Constraints:
    """The constraints stored on ``order`` (moon-down as gated: forced on for Quasar)."""
    return constraints(site, ra_j2000=order.ra_j2000, dec_j2000=order.dec_j2000, c_alt_min=order.c_alt_min,
                       c_moon_down=order.c_moon_down, c_ha_start=order.c_ha_start, c_ha_end=order.c_ha_end,
                       date_start=order.date_start, date_end=order.date_end)


def _window_out(window: tuple[float, float] | None) -> NextWindow | None:
    if window is None:
        return None
    return NextWindow(start=datetime.fromtimestamp(window[0], tz=UTC), end=datetime.fromtimestamp(window[1], tz=UTC))


async def target_window(site: SiteSettings, c: Constraints, now: datetime | None = None) -> NextWindow | None:
    """The next window of ``c`` from ``now`` (default: the current time). None: none ahead."""
    after = (now or datetime.now(UTC)).timestamp()
    return _window_out(await asyncio.to_thread(ephemeris.next_window, site_sky(site), c, after))


def target_coordinates(t: EstimateTarget) -> tuple[float, float]:
    """(RA hours, Dec degrees) of an estimate's target: as given, else from the offline catalogue.
    Raises Unprocessable ``unknown_target``."""
    if t.ra_j2000 is not None and t.dec_j2000 is not None:
        return t.ra_j2000, t.dec_j2000
    try:
        entry = resolve(t.target_name)
    except UnknownTarget as exc:
        raise Unprocessable(str(exc), code="unknown_target", fields={"target.target_name": str(exc)}) from None
    return entry.ra_j2000, entry.dec_j2000


async def estimate_window(site: SiteSettings, t: EstimateTarget, *, moon_down: bool,
                          now: datetime | None = None) -> NextWindow | None:
    """``next_window`` of an estimate's target: None without a target (neither ``target_name`` nor
    both coordinates). ``moon_down``: as the plan gate forces it (Quasar: always;
    ``api.services.orders.gate_order``). Raises Unprocessable ``unknown_target`` for a name the
    offline catalogue does not know."""
    if not t.has_target():
        return None
    ra, dec = target_coordinates(t)
    c = constraints(site, ra_j2000=ra, dec_j2000=dec, c_alt_min=t.c_alt_min,
                    c_moon_down=moon_down, c_ha_start=t.c_ha_start,
                    c_ha_end=t.c_ha_end, date_start=t.date_start, date_end=t.date_end)
    return await target_window(site, c, now)


@dataclass(frozen=True)
class Schedule:
    """``next_window``: None when the order is not waiting or has no window ahead; ``orders_ahead``:
    waiting orders of higher priority whose own next window overlaps it (None without a window)."""

    next_window: NextWindow | None = None
    orders_ahead: int | None = None


async def schedules(session: AsyncSession, site: SiteSettings, orders: Iterable[Order],
                    now: datetime | None = None) -> dict[int, Schedule]:
    """``{order id: Schedule}`` for ``orders``. One query reads the waiting orders of every customer
    (a telescope is shared: another customer's order of higher priority on the same telescope goes
    first); their windows are computed together in one thread, each at its telescope's site."""
    mine = [o for o in orders if o.status in WAITING]
    if not mine:
        return {o.id: Schedule() for o in orders}
    floor = min(o.priority for o in mine)
    rivals = list((await session.exec(
        select(Order).where(Order.status.in_(WAITING), Order.priority > floor)  # type: ignore[attr-defined]
    )).all())
    after = (now or datetime.now(UTC)).timestamp()
    todo = {o.id: o for o in [*mine, *rivals]}
    # Each order waits for its own telescope's sky (docs/telescopes.md); ``site`` for an order
    # without one (rows written before telescopes existed, or directly by tests).
    ids = {o.telescope_id for o in todo.values() if o.telescope_id is not None}
    sites = {t.id: site_of(t) for t in (await session.exec(
        select(Telescope).where(Telescope.id.in_(ids)))).all()} if ids else {}  # type: ignore[union-attr]

    def compute() -> dict[int, tuple[float, float] | None]:
        out = {}
        for oid, o in todo.items():
            at = sites.get(o.telescope_id, site)
            out[oid] = ephemeris.next_window(site_sky(at), order_constraints(at, o), after)
        return out

    windows = await asyncio.to_thread(compute)
    out = {o.id: Schedule() for o in orders}
    for o in mine:
        w = windows[o.id]
        if w is None:
            continue
        ahead = sum(1 for r in rivals if r.id != o.id and r.priority > o.priority and windows[r.id] is not None
                    and r.telescope_id == o.telescope_id
                    and windows[r.id][0] < w[1] and w[0] < windows[r.id][1])
        out[o.id] = Schedule(_window_out(w), ahead)
    return out
