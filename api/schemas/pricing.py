"""``POST /api/pricing/estimate`` body and answer — the shapes of docs/pricing.md §2."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import StrictIn
from api.schemas.constraints import ChargedConstraintsIn


class EstimateShot(StrictIn):
    filter: str = Field(min_length=1, max_length=16, examples=["Ha"])
    exposure: float = Field(gt=0, le=3600, description="seconds per frame, 0 < exposure ≤ 3600")
    quantity: int = Field(ge=1, le=1000, description="frames, 1–1000")


class EstimateTarget(ChargedConstraintsIn):
    """The target to price: the charged constraints (``ChargedConstraintsIn``) and its shots."""

    shots: list[EstimateShot] = Field(min_length=1, max_length=50)


class EstimateRequest(StrictIn):
    """``subscription_plan``: stardust | nebula | quasar; omitted = the caller's plan."""

    subscription_plan: str | None = Field(default=None, max_length=32, examples=["nebula"])
    target: EstimateTarget


class EstimateMultipliers(BaseModel):
    priority: float
    moon_down: float
    hfd: float
    total: float


class Estimation(BaseModel):
    """``base_cost``: hours (= credits before multipliers), 2 decimals; ``final_cost`` credits."""

    base_cost: float
    multipliers: EstimateMultipliers
    final_cost: int
    user_balance: int
    remaining_after: int
    can_afford: bool


class EstimateResponse(BaseModel):
    success: bool = True
    estimation: Estimation
