"""``POST /api/pricing/estimate``: the estimate of docs/pricing.md §2, priced by billing.pricing."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PrincipalDep, ResourcesDep, SessionDep
from api.errors import Unprocessable, errors
from api.schemas.pricing import EstimateMultipliers, EstimateRequest, EstimateResponse, Estimation
from api.services.customers import effective_plan
from api.services.order_schedule import estimate_window
from billing.plans import get_plan
from core.mosaic import split_refusal
from billing.pricing import estimate
from models.billing import PricingInput, PricedShot

router = APIRouter(prefix="/api/pricing", tags=["pricing"])


# exclude_unset: without a target the answer is exactly docs/pricing.md §2's shape (no next_window key).
@router.post("/estimate", response_model=EstimateResponse, response_model_exclude_unset=True,
             summary="Estimate the credits of a target",
             responses=errors(403, 422))
async def post_estimate(body: EstimateRequest, me: PrincipalDep, res: ResourcesDep,
                        session: SessionDep) -> EstimateResponse:
    """``subscription_plan`` defaults to the caller's plan. The plan's rules apply as for a real
    order (403 ``plan_violation`` for what it forbids); ``user_balance`` is the caller's available
    credits. With a target (``target_name``, or ``ra_j2000``/``dec_j2000``) the answer carries its
    ``next_window`` under the given constraints (moon-down as the plan forces it): what an order
    would show once placed (api/services/order_schedule.py); 422 ``unknown_target`` for a name the
    catalogue does not know."""
    filters = {f.lower() for f in res.settings.api.filter_list()}
    bad = {f"target.shots.{i}.filter": f"unknown filter {s.filter!r}"
           for i, s in enumerate(body.target.shots) if s.filter.lower() not in filters}
    panels = body.target.mosaic.columns * body.target.mosaic.rows if body.target.mosaic else 0
    for i, s in enumerate(body.target.shots if panels else []):
        if refusal := split_refusal(s.quantity, panels):
            bad[f"target.shots.{i}.quantity"] = refusal
    if bad:
        raise Unprocessable("invalid estimate request", fields=bad)
    plan = get_plan(body.subscription_plan) if body.subscription_plan else None
    plan_id = plan.id if plan else (await effective_plan(session, me.customer_id)).plan
    t = body.target
    pricing = PricingInput(priority=t.priority, c_moon_down=t.c_moon_down, c_hfd_mean_limit=t.c_hfd_mean_limit,
                           repeat=t.repeat, shots=[PricedShot(filter=s.filter, exposure=s.exposure, quantity=s.quantity)
                                                   for s in t.shots])
    balances = await res.ledger.balances(me.customer_id)
    e = estimate(plan_id, pricing, balances.available, mosaic_panels=panels)
    where = {"next_window": await estimate_window(res.settings.site, t, get_plan(plan_id))} if t.has_target() else {}
    m = e.multipliers
    return EstimateResponse(success=True, estimation=Estimation(
        base_cost=float(e.base_cost),
        multipliers=EstimateMultipliers(priority=float(m.priority), moon_down=float(m.moon_down), hfd=float(m.hfd),
                                        total=float(m.total)),
        final_cost=e.final_cost, user_balance=e.user_balance, remaining_after=e.remaining_after,
        can_afford=e.can_afford), **where)
