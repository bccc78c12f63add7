"""``GET /api/subscriptions/plans``: the three plans, in the shape of docs/pricing.md §1."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from billing.plans import PLANS

router = APIRouter(prefix="/api/subscriptions", tags=["plans"])


class Features(BaseModel):
    """``features`` (docs/pricing.md §1): exactly these keys. ``hfd_guarantee``: false, "standard" or "custom"."""

    priority_max: int
    moon_down: bool
    hfd_guarantee: bool | str
    repeat: bool
    sets: bool
    dashboard: bool


class PlanOut(BaseModel):
    """``price``: EUR cents per month; ``credits``: credits per month."""

    id: str
    name: str
    price: int
    credits: int
    features: Features


class PlanList(BaseModel):
    plans: list[PlanOut]


@router.get("/plans", response_model=PlanList, summary="The subscription plans (public)")
async def get_plans() -> PlanList:
    plans = []
    for p in PLANS.values():
        f = p.features()
        plans.append(PlanOut(id=p.id, name=p.name, price=p.price_cents, credits=p.monthly_credits, features=Features(
            priority_max=f.priority_max, moon_down=f.moon_down, hfd_guarantee=f.hfd_guarantee, repeat=f.repeat,
            sets=f.sets, dashboard=f.dashboard)))
    return PlanList(plans=plans)
