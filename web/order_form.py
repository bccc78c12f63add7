"""The new-order form ↔ ``api.schemas.orders.OrderCreate``, and what the page shows before submit.

The checks are the API's own: the schema, ``api.catalog.resolve`` (or RA/Dec typed in, parsed by
astropy: ``web.coordinates``), the plan gate, the telescope assignment ``create_order`` makes (the
same ``order_need`` and ``assign``: the telescope named, or for ``any`` the one that can image it
first, docs/telescopes.md §2), and the price through ``POST /api/pricing/estimate``'s function with
that telescope's multiplier — so the page shows where the order would run and what it would hold,
or why it would be refused, before it is sent. The night chart is drawn at the chosen telescope's
site. Options the plan does not allow are shown disabled with the plan that unlocks them
(``billing.plans.locked_options``).

Mosaic (docs/mosaics.md) and Set (docs/sets.md) fields are ``OrderCreate``'s ``mosaic`` and
``set_id``; their inputs are ``order_new.html``'s ``mosaic_and_sets`` block. The estimate prices the
mosaic (its quantity-divisibility refusal lands beside the shot quantity), and a chosen Set is
checked with ``api.services.sets`` as ``create_order`` checks it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError
from sqlmodel import select

from api.catalog import UnknownTarget, resolve
from api.errors import NO_TELESCOPE_FITS, TARGET_NEVER_OBSERVABLE, ApiError
from api.resources import Resources
from api.routes.pricing import post_estimate
from api.schemas.orders import OrderCreate
from api.schemas.pricing import EstimateRequest, Estimation
from api.security import Principal
from api.services import telescopes
from api.services.assignment import Assignment, assign
from api.services.customers import effective_plan
from api.services.orders import order_need
from api.services.sets import find_set, require_sets
from billing.errors import BillingError
from billing.plans import plan_moon_down
from models.db import Telescope
from models.telescopes import ANY
from web.coordinates import parse_ra_dec
from web.sky_chart import NightCurves, night_curves

SHOT_LINES = 3
#: ``MosaicIn``'s fields; the form's inputs are ``mosaic_<name>``, sent when ``mosaic_on`` is ticked.
MOSAIC_FIELDS = ("columns", "rows", "overlap_percent", "rotation_deg")
#: Form fields an error can be shown next to (ids of the inputs of ``order_new.html``).
FORM_FIELDS = ("target_name", "ra_j2000", "dec_j2000", "telescope", "priority", "c_moon_down", "c_hfd_mean_limit", "repeat",
               "shots",
               *(f"shots.{i}.{n}" for i in range(SHOT_LINES) for n in ("filter", "exposure", "quantity")),
               "mosaic", *(f"mosaic.{n}" for n in MOSAIC_FIELDS), "set_id")
#: Suggestions of the target field: the Messier catalogue (any OpenNGC name is accepted).
SUGGESTIONS = [f"M{i}" for i in range(1, 111)] + ["NGC 7000", "NGC 6960", "NGC 2237", "IC 1396", "IC 434"]


@dataclass
class Preview:
    """What the page shows as the form changes. ``errors``: field → message (the API's);
    ``assignment``: the telescope the order would run on and why (None: refused or not judged);
    ``next_window``: its next observable start there (UTC)."""

    order: OrderCreate | None = None
    errors: dict[str, str] = field(default_factory=dict)
    estimation: Estimation | None = None
    curves: NightCurves | None = None
    assignment: Assignment | None = None
    next_window: datetime | None = None

    def by_field(self) -> tuple[dict[str, str], dict[str, str]]:
        """(messages placed next to a field of the form, by field id; the others). The estimate
        names shot fields ``target.shots.<i>.<name>``, the order ``shots.<i>.<name>``."""
        placed, other = {}, {}
        for name, message in self.errors.items():
            key = name.removeprefix("target.")
            (placed if key in FORM_FIELDS else other)[key] = message
        return placed, other

    @property
    def can_submit(self) -> bool:
        return (not self.errors and self.estimation is not None and self.estimation.can_afford
                and self.assignment is not None)


def parse_form(form: Any) -> tuple[OrderCreate | None, dict[str, str]]:
    """The order a form describes, or the per-field errors of the API's schema."""
    shots = []
    for i in range(SHOT_LINES):
        exposure, quantity = (form.get(f"exposure_{i}") or "").strip(), (form.get(f"quantity_{i}") or "").strip()
        if exposure or quantity:
            shots.append({"filter": form.get(f"filter_{i}") or "", "exposure": exposure or "0",
                          "quantity": quantity or "0"})
    body: dict[str, Any] = {
        "target_name": (form.get("target_name") or "").strip(), "priority": form.get("priority") or "0",
        "c_moon_down": form.get("c_moon_down") == "on", "repeat": (form.get("repeat") or "").strip() or "1",
        # The slider always has a value; it counts only when the customer asks for a custom limit.
        "c_hfd_mean_limit": form.get("c_hfd_mean_limit") or "0" if form.get("hfd_custom") == "on" else "0",
        "telescope": (form.get("telescope") or "").strip() or ANY, "shots": shots}
    if form.get("mosaic_on") == "on":
        body["mosaic"] = {n: (form.get(f"mosaic_{n}") or "").strip() for n in MOSAIC_FIELDS}
    if (set_id := (form.get("set_id") or "").strip()):  # empty: the default Set
        body["set_id"] = set_id
    errors: dict[str, str] = {}
    if form.get("target_mode") == "coordinates":
        ra, dec, errors = parse_ra_dec(form.get("ra") or "", form.get("dec") or "")
        if ra is None and dec is None and not errors:
            errors = {"ra_j2000": "give the right ascension", "dec_j2000": "give the declination"}
        body["ra_j2000"], body["dec_j2000"] = ra, dec
        if not body["target_name"]:
            body["target_name"] = "RA/Dec"
    try:
        order = OrderCreate.model_validate(body)
    except ValidationError as exc:
        for err in exc.errors():
            errors.setdefault(".".join(str(p) for p in err["loc"]), err["msg"])
        return None, errors
    return (None, errors) if errors else (order, {})


async def offered_telescopes(session) -> list[Telescope]:
    """The telescopes the form offers besides ``any``: the online ones (one in maintenance takes no
    new order), by slug."""
    return await telescopes.online(session)


async def _assign(res: Resources, session, order: OrderCreate, ra: float, dec: float, moon_down: bool,
                  out: Preview) -> Telescope | None:
    """``create_order``'s assignment of ``order`` (``moon_down``: as the plan gate forces it) into
    ``out``; returns the telescope whose sky the chart shows (the chosen one, or the named one that
    cannot take it), or None."""
    now = datetime.now(timezone.utc)
    try:
        out.assignment = await assign(session, order.telescope, order_need(
            order, ra_j2000=ra, dec_j2000=dec, filters=[s.filter for s in order.shots], moon_down=moon_down,
            now=now, lifetime_days=res.settings.billing.order_default_lifetime_days), now)
    except ApiError as exc:
        if exc.code in (TARGET_NEVER_OBSERVABLE, NO_TELESCOPE_FITS):
            # Why no telescope can take it, per telescope: beside the target, what the customer changes.
            out.errors["target_name"] = exc.message
        else:  # unknown or unavailable telescope (beside the selector), a filter it lacks (beside the shot)
            out.errors.update(exc.fields or {"telescope": exc.message})
        if order.telescope == ANY:
            return None
        return (await session.exec(select(Telescope).where(Telescope.slug == order.telescope))).first()
    if out.assignment.window is not None:
        out.next_window = datetime.fromtimestamp(out.assignment.window[0], timezone.utc)
    return out.assignment.telescope


async def preview(res: Resources, session, me: Principal, form: Any) -> Preview:
    """Validate, assign, price and chart the form's order, without writing anything."""
    order, errors = parse_form(form)
    out = Preview(order=order, errors=errors)
    if order is None:
        return out
    if order.ra_j2000 is not None and order.dec_j2000 is not None:
        ra, dec = order.ra_j2000, order.dec_j2000
    else:
        try:
            entry = resolve(order.target_name)
        except UnknownTarget as exc:
            out.errors["target_name"] = str(exc)
            return out
        ra, dec = entry.ra_j2000, entry.dec_j2000
    plan_id = (await effective_plan(session, me.customer_id)).plan
    # The gate's moon-down (billing.plans.plan_moon_down), even when the plan refuses the order (its
    # refusal is the estimate's to report, per field): the telescope, the next window and the chart
    # judge the night the order runs once placed.
    moon_down = plan_moon_down(plan_id, order.c_moon_down)
    site = await _assign(res, session, order, ra, dec, moon_down, out)
    # Priced on the telescope it runs on (its multiplier), as the order will hold.
    priced_on = out.assignment.telescope.slug if out.assignment else (order.telescope if site else None)
    try:
        est = await post_estimate(EstimateRequest.model_validate({"target": {
            "priority": order.priority, "c_moon_down": order.c_moon_down,
            "c_hfd_mean_limit": order.c_hfd_mean_limit, "repeat": order.repeat, "shots": [
                {"filter": s.filter, "exposure": s.exposure, "quantity": s.quantity} for s in order.shots],
            "mosaic": order.mosaic.model_dump() if order.mosaic else None, "telescope": priced_on}}),
            me, res, session)
        out.estimation = est.estimation
    except ApiError as exc:
        for name, message in (exc.fields or {"form": exc.message}).items():
            out.errors.setdefault(name, message)
    except BillingError as exc:
        out.errors.update(getattr(exc, "fields", None) or {"form": str(exc)})
    if order.set_id is not None:  # create_order's refusals: 403 without Sets, 404 not the caller's
        try:
            await require_sets(session, me)
            await find_set(session, me.customer_id, order.set_id)
        except ApiError as exc:
            out.errors["set_id"] = exc.message
    if site is not None:
        out.curves = await asyncio.to_thread(
            night_curves, ra, dec, alt_min=order.c_alt_min, moon_down=moon_down, latitude=site.latitude,
            longitude=site.longitude, elevation=site.elevation, horizon_alt=site.horizon_alt)
    return out
