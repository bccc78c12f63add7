"""``GET /api/subscriptions/plans``: the three plans, in the shape of docs/pricing.md §1."""

from __future__ import annotations

from fastapi import APIRouter

from api.schemas.plans import PlanCatalogueOut
from billing.plans import PLANS

router = APIRouter(prefix="/api/subscriptions", tags=["plans"])


@router.get("/plans", response_model=PlanCatalogueOut, summary="The subscription plans (public)")
async def get_plans() -> PlanCatalogueOut:
    return PlanCatalogueOut.of(PLANS.values())
