"""``POST /api/pricing/estimate``: the estimate of docs/pricing.md §2, priced by billing.pricing."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PrincipalDep, ResourcesDep, SessionDep
from api.errors import Unprocessable, errors
from api.schemas.pricing import EstimateMultipliers, EstimateRequest, EstimateResponse, Estimation
from api.services.customers import effective_plan
from billing.plans import get_plan
from billing.pricing import estimate
from models.billing import PricingInput, PricedShot

router = APIRouter(prefix="/api/pricing", tags=["pricing"])


@router.post("/estimate", response_model=EstimateResponse, summary="Estimate the credits of a target",
             responses=errors(403))
async def post_estimate(body: EstimateRequest, me: PrincipalDep, res: ResourcesDep,
                        session: SessionDep) -> EstimateResponse:
    """``subscription_plan`` defaults to the caller's plan. The plan's rules apply as for a real
    order (403 ``plan_violation`` for what it forbids); ``user_balance`` is the caller's available
    credits."""
    filters = {f.lower() for f in res.settings.api.filter_list()}
    bad = {f"target.shots.{i}.filter": f"unknown filter {s.filter!r}"
           for i, s in enumerate(body.target.shots) if s.filter.lower() not in filters}
    if bad:
        raise Unprocessable("invalid estimate request", fields=bad)
    plan = get_plan(body.subscription_plan) if body.subscription_plan else None
    plan_id = plan.id if plan else (await effective_plan(session, me.customer_id)).plan
    t = body.target
    pricing = PricingInput(priority=t.priority, c_moon_down=t.c_moon_down, c_hfd_mean_limit=t.c_hfd_mean_limit,
                           repeat=t.repeat, shots=[PricedShot(filter=s.filter, exposure=s.exposure, quantity=s.quantity)
                                                   for s in t.shots])
    balances = await res.ledger.balances(me.customer_id)
    e = estimate(plan_id, pricing, balances.available)
    m = e.multipliers
    return EstimateResponse(success=True, estimation=Estimation(
        base_cost=float(e.base_cost),
        multipliers=EstimateMultipliers(priority=float(m.priority), moon_down=float(m.moon_down), hfd=float(m.hfd),
                                        total=float(m.total)),
        final_cost=e.final_cost, user_balance=e.user_balance, remaining_after=e.remaining_after,
        can_afford=e.can_afford))
