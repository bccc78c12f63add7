"""Which telescope runs an order: a named one, or for ``any`` the one that can image it first
(docs/telescopes.md §2).

A telescope *fits* an order when it is online, has every filter of its shot list, its field of view
is at least the order's ``min_field_arcmin`` (if given), and the target is observable from its site
under the order's constraints within the order's window (:func:`core.ephemeris.check_visibility`,
floor = max(``c_alt_min``, the site's ``horizon_alt``)). Among fitting telescopes ``any`` takes the
earliest :func:`core.ephemeris.next_window` (the site's night grid), ties broken by fewer waiting
orders on that telescope, then by slug. Both sky answers are kept per site, target, constraints
and time cell (api/services/sky_verdicts.py), so a burst of orders does not recompute them. Nothing
here writes: the caller raises before any credit moves.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import NO_TELESCOPE_FITS, TARGET_NEVER_OBSERVABLE, TELESCOPE_UNAVAILABLE, Unprocessable, domain_error
from api.services import sky_verdicts
from api.services import telescopes as service
from api.services.order_schedule import WAITING, constraints, site_of, site_sky
from models.db import Order, Telescope
from models.telescopes import ANY, TelescopeStatus, optics_of


@dataclass(frozen=True)
class Need:
    """What an order asks of a telescope. ``ra_j2000`` hours; ``dec_j2000``, ``c_alt_min`` degrees;
    ``c_ha_*`` hours; ``start``/``end``: the window to image in (aware UTC); ``date_start``/``date_end``:
    the order's own bounds (None = open); ``min_field_arcmin``: shorter side of the field, arcminutes."""

    target_name: str
    ra_j2000: float
    dec_j2000: float
    filters: list[str]
    c_alt_min: float
    c_moon_down: bool
    c_ha_start: float | None
    c_ha_end: float | None
    start: datetime
    end: datetime
    date_start: datetime | None = None
    date_end: datetime | None = None
    min_field_arcmin: float | None = None


@dataclass(frozen=True)
class Verdict:
    """One telescope judged for one order. ``problem``: why it cannot take it (None: it fits);
    ``sky``: the problem is the sky; ``window``: next observable interval (epoch s) when it fits."""

    telescope: Telescope
    problem: str | None = None
    sky: bool = False
    window: tuple[float, float] | None = None
    orders_ahead: int = 0


@dataclass(frozen=True)
class Assignment:
    """The telescope chosen, the reason shown on the order, and its next observable interval
    there (epoch s; None when none lies within the look-ahead)."""

    telescope: Telescope
    reason: str
    window: tuple[float, float] | None = None


def missing_filters(t: Telescope, wanted: list[str]) -> list[str]:
    have = {n.lower() for n in service.filter_names(t)}
    return [f for f in dict.fromkeys(wanted) if f.lower() not in have]


def _judge(t: Telescope, need: Need, after: float, kept_only: bool = False) -> Verdict:
    """``kept_only``: from kept sky answers only, else raises sky_verdicts.NotKept."""
    missing = missing_filters(t, need.filters)
    if missing:
        return Verdict(t, f"{t.slug} has no {', '.join(missing)} filter (it has {', '.join(service.filter_names(t))})")
    if need.min_field_arcmin:
        fov = optics_of(t).field_of_view
        short = min(fov.width_deg, fov.height_deg) * 60
        if short < need.min_field_arcmin:
            return Verdict(t, f"{t.slug}'s field of view ({short:.0f}′ on its short side) is narrower than the "
                              f"{need.min_field_arcmin:g}′ the order needs")
    floor = max(need.c_alt_min, t.horizon_alt)
    v = sky_verdicts.visibility(need.ra_j2000, need.dec_j2000, alt_min=floor, start=need.start, end=need.end,
                                latitude=t.latitude, longitude=t.longitude, ha_start=need.c_ha_start,
                                ha_end=need.c_ha_end, kept_only=kept_only)
    if not v.observable:
        best = "never in darkness" if v.best_altitude is None else f"at best {v.best_altitude}°"
        return Verdict(t, f"{need.target_name} never rises above {floor:g}° in darkness at {t.site_name} "
                          f"({t.slug}) between {need.start:%Y-%m-%d %H:%M} and {need.end:%Y-%m-%d %H:%M} UTC "
                          f"({best})", sky=True)
    site = site_of(t)
    c = constraints(site, ra_j2000=need.ra_j2000, dec_j2000=need.dec_j2000, c_alt_min=need.c_alt_min,
                    c_moon_down=need.c_moon_down, c_ha_start=need.c_ha_start, c_ha_end=need.c_ha_end,
                    date_start=need.date_start, date_end=need.date_end)
    return Verdict(t, window=sky_verdicts.window(site_sky(site), c, after, kept_only=kept_only))


async def _orders_ahead(session: AsyncSession, ids: list[int]) -> dict[int, int]:
    rows = (await session.exec(
        select(Order.telescope_id, sa.func.count()).where(
            Order.telescope_id.in_(ids), Order.status.in_(WAITING))  # type: ignore[union-attr,attr-defined]
        .group_by(Order.telescope_id))).all()
    return {tid: n for tid, n in rows}


async def judge(session: AsyncSession, rows: list[Telescope], need: Need, now: datetime | None = None,
                queues: dict[int, int] | None = None) -> list[Verdict]:
    """Every telescope of ``rows`` judged for ``need`` (the astropy work in one thread). ``queues``:
    waiting orders per telescope id when the caller has read them (``POST /api/orders`` reads them
    with its caller, api/services/order_context.py)."""
    after = (now or datetime.now(UTC)).timestamp()
    ahead = queues if queues is not None else await _orders_ahead(session, [t.id for t in rows]) if rows else {}
    try:
        # Kept answers (a burst of orders for the same targets) are read here: a hop to a worker
        # thread costs more than the lookups, and under load waits for the event loop's GIL.
        verdicts = [_judge(t, need, after, kept_only=True) for t in rows]
    except sky_verdicts.NotKept:
        verdicts = await asyncio.to_thread(lambda: [_judge(t, need, after) for t in rows])
    return [Verdict(v.telescope, v.problem, v.sky, v.window, ahead.get(v.telescope.id, 0)) for v in verdicts]


def _when(window: tuple[float, float] | None) -> str:
    if window is None:
        return "no observable window in the look-ahead yet"
    return f"next observable window {datetime.fromtimestamp(window[0], UTC):%Y-%m-%d %H:%M} UTC"


def _best(fitting: list[Verdict]) -> Verdict:
    return min(fitting, key=lambda v: (v.window[0] if v.window else float("inf"), v.orders_ahead, v.telescope.slug))


def _refuse(verdicts: list[Verdict], need: Need):
    if not verdicts:
        return domain_error(NO_TELESCOPE_FITS, "no telescope is online", fields={"telescope": "no telescope is online"})
    fields = {f"telescope.{v.telescope.slug}": v.problem or "" for v in verdicts}
    message = "; ".join(v.problem or "" for v in verdicts)
    if all(v.sky for v in verdicts):
        fields["c_alt_min"] = message  # the constraint the customer can relax
        return domain_error(TARGET_NEVER_OBSERVABLE, message, fields=fields)
    return domain_error(NO_TELESCOPE_FITS, f"no online telescope can take this order: {message}", fields=fields)


async def assign(session: AsyncSession, telescope: str, need: Need, now: datetime | None = None, *,
                 online: list[Telescope] | None = None, queues: dict[int, int] | None = None) -> Assignment:
    """The telescope for an order naming ``telescope`` (a slug or ``any``), and the reason shown on it.

    Raises NotFound ``unknown_telescope``; Conflict ``telescope_unavailable`` (not online: names its
    status and the online telescopes that fit); Unprocessable: a filter the named telescope lacks
    (``shots.N.filter``, listing its filters), ``target_never_observable`` (why, per telescope),
    ``no_telescope_fits`` (why, per telescope). ``online``: the online telescopes, when the caller
    has just read them (one query less; a named telescope among them is not read again);
    ``queues``: with them, their waiting orders (one more query less; api/services/order_context.py)."""
    if telescope == ANY:
        rows = online if online is not None else await service.online(session)
        verdicts = await judge(session, rows, need, now, queues if online is not None else None)
        fitting = [v for v in verdicts if v.problem is None]
        if not fitting:
            raise _refuse(verdicts, need)
        best = _best(fitting)
        others = len(fitting) - 1
        reason = (f"any: {best.telescope.slug} at {best.telescope.site_name}, {_when(best.window)}, "
                  f"{best.orders_ahead} order(s) waiting there; {others} other telescope(s) fit, "
                  f"{len(verdicts) - len(fitting)} online one(s) do not")
        return Assignment(best.telescope, reason, best.window)

    # A named telescope among ``online`` needs no query; one that is not is read (404 or 409).
    row = next((t for t in online if t.slug == telescope), None) if online is not None else None
    if row is None:
        row = await service.by_slug(session, telescope)
    if row.status != TelescopeStatus.ONLINE.value:
        others = [t for t in await service.online(session) if t.id != row.id]
        can = [v.telescope.slug for v in await judge(session, others, need, now) if v.problem is None]
        alternatives = ", ".join(can) if can else "none"
        message = f"telescope {row.slug} is in {row.status}; telescopes that can take this order: {alternatives}"
        raise domain_error(TELESCOPE_UNAVAILABLE, message, fields={"telescope": message})
    missing = missing_filters(row, need.filters)
    if missing:
        have = ", ".join(service.filter_names(row))
        raise Unprocessable("invalid order", fields={
            f"shots.{i}.filter": f"unknown filter {f!r}; telescope {row.slug} has {have}"
            for i, f in enumerate(need.filters) if f in missing})
    (verdict,) = await judge(session, [row], need, now, queues if online is not None else None)
    if verdict.problem is not None:
        raise _refuse([verdict], need)
    return Assignment(row, f"named: {row.slug} at {row.site_name}, {_when(verdict.window)}", verdict.window)
