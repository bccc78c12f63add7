"""``POST /api/pricing/estimate``: the estimate of docs/pricing.md §2, priced by billing.pricing."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from api.deps import PrincipalDep, ResourcesDep, SessionDep
from api.errors import Unprocessable, errors
from api.schemas.pricing import EstimateMultipliers, EstimateRequest, EstimateResponse, EstimateTarget, Estimation
from api.schemas.telescopes import AssignmentOut
from api.services import telescopes as service
from api.services.assignment import Assignment, assign
from api.services.customers import effective_plan
from api.services.order_schedule import estimate_window, site_of, target_coordinates
from api.services.orders import gate_order, order_need
from billing.plans import get_plan
from core.mosaic import split_refusal
from billing.pricing import estimate
from models.billing import PricingInput, PricedShot
from models.telescopes import ANY

router = APIRouter(prefix="/api/pricing", tags=["pricing"])


# exclude_unset: without a target the answer is exactly docs/pricing.md §2's shape (no next_window key).
@router.post("/estimate", response_model=EstimateResponse, response_model_exclude_unset=True,
             summary="Estimate the credits of a target",
             responses=errors(403, 404, 409, 422))
async def post_estimate(body: EstimateRequest, me: PrincipalDep, res: ResourcesDep,
                        session: SessionDep) -> EstimateResponse:
    """``subscription_plan`` defaults to the caller's plan. The plan's rules apply as for a real
    order (403 ``plan_violation`` for what it forbids); ``user_balance`` is the caller's available
    credits. With a target (``target_name``, or ``ra_j2000``/``dec_j2000``) the answer carries its
    ``next_window`` under the given constraints (moon-down as the plan forces it): what an order
    would show once placed (api/services/order_schedule.py), and ``telescope``: the one an order
    would get (``target.telescope``, default ``any``; docs/telescopes.md §2), whose multiplier is
    then in ``multipliers.telescope`` and ``final_cost``. 422 ``unknown_target`` for a name the
    catalogue does not know; the telescope refusals of an order (404, 409, 422); a mosaic's quantities
    must divide by its panel count (422, docs/mosaics.md)."""
    t = body.target
    named = t.telescope not in (None, ANY)
    offered = (service.filter_names(await service.by_slug(session, t.telescope)) if named else
               list(dict.fromkeys(f for row in await service.online(session) for f in service.filter_names(row))))
    filters = {f.lower() for f in offered or res.settings.api.filter_list()}
    bad = {f"target.shots.{i}.filter": f"unknown filter {s.filter!r}; the telescope(s) have {', '.join(offered)}"
           for i, s in enumerate(t.shots) if s.filter.lower() not in filters}
    panels = t.mosaic.columns * t.mosaic.rows if t.mosaic else 0
    for i, s in enumerate(t.shots if panels else []):
        if refusal := split_refusal(s.quantity, panels):
            bad[f"target.shots.{i}.quantity"] = refusal
    if t.date_start and t.date_end and t.date_end <= t.date_start:
        bad["target.date_end"] = "must be after now and date_start"
    if bad:
        raise Unprocessable("invalid estimate request", fields=bad)
    plan = get_plan(body.subscription_plan) if body.subscription_plan else None
    plan_id = plan.id if plan else (await effective_plan(session, me.customer_id)).plan
    # The plan's rules first, as for an order (403 before any sky is judged); its moon-down is the
    # one the telescope and the window are judged under.
    moon_down = gate_order(plan_id, t).moon_down
    pricing = PricingInput(priority=t.priority, c_moon_down=t.c_moon_down, c_hfd_mean_limit=t.c_hfd_mean_limit,
                           repeat=t.repeat, shots=[PricedShot(filter=s.filter, exposure=s.exposure, quantity=s.quantity)
                                                   for s in t.shots])
    chosen = await _telescope(session, res, t, moon_down) if (t.has_target() or named) else None
    balances = await res.ledger.balances(me.customer_id)
    e = estimate(plan_id, pricing, balances.available,
                 telescope_multiplier=chosen.telescope.price_multiplier if chosen else None,
                 mosaic_panels=panels)
    extra: dict = {}
    if t.has_target():
        site = site_of(chosen.telescope) if chosen else res.settings.site
        extra["next_window"] = await estimate_window(site, t, moon_down=moon_down)
    if chosen:
        c = chosen.telescope
        extra["telescope"] = AssignmentOut(slug=c.slug, name=c.name, site_name=c.site_name,
                                           price_multiplier=c.price_multiplier, reason=chosen.reason)
    m = e.multipliers
    scope = {} if m.telescope is None else {"telescope": float(m.telescope)}
    return EstimateResponse(success=True, estimation=Estimation(
        base_cost=float(e.base_cost),
        multipliers=EstimateMultipliers(priority=float(m.priority), moon_down=float(m.moon_down), hfd=float(m.hfd),
                                        total=float(m.total), **scope),
        final_cost=e.final_cost, user_balance=e.user_balance, remaining_after=e.remaining_after,
        can_afford=e.can_afford), **extra)


async def _telescope(session, res: ResourcesDep, t: EstimateTarget, moon_down: bool) -> Assignment:
    """The telescope an order like ``t`` would get (api/services/assignment.py), judged on the same
    ``order_need`` as ``POST /api/orders`` (``moon_down``: as the plan gate forces it), with the same
    refusals; a named telescope without a target is taken as named (no sky to judge)."""
    slug = t.telescope or ANY
    if not t.has_target():
        row = await service.by_slug(session, slug)
        return Assignment(row, f"named: {row.slug} at {row.site_name} (no target given: its sky is not judged)")
    ra, dec = target_coordinates(t)
    now = datetime.now(UTC)
    need = order_need(t, ra_j2000=ra, dec_j2000=dec, filters=[s.filter for s in t.shots], moon_down=moon_down,
                      now=now, lifetime_days=res.settings.billing.order_default_lifetime_days)
    if need.end <= need.start:
        raise Unprocessable("invalid estimate request", fields={"target.date_end": "must be after now and date_start"})
    return await assign(session, slug, need, now)
