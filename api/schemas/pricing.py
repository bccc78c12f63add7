"""``POST /api/pricing/estimate`` body and answer — the shapes of docs/pricing.md §2."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from api.schemas.common import StrictIn


class EstimateShot(StrictIn):
    filter: str = Field(min_length=1, max_length=16, examples=["Ha"])
    exposure: float = Field(gt=0, le=3600, description="seconds per frame, 0 < exposure ≤ 3600")
    quantity: int = Field(ge=1, le=1000, description="frames, 1–1000")


class EstimateTarget(StrictIn):
    priority: int = Field(default=0, ge=0, le=4)
    c_moon_down: bool = False
    c_hfd_mean_limit: float = Field(default=0.0, description="px; 0 = none, else 1.5–4.0")
    repeat: int = Field(default=1, ge=1, le=100, description="runs of the shot list (not in the seed; default 1)")
    shots: list[EstimateShot] = Field(min_length=1, max_length=50)

    @field_validator("c_hfd_mean_limit")
    @classmethod
    def _hfd_range(cls, v: float) -> float:
        if v != 0 and not 1.5 <= v <= 4.0:
            raise ValueError("must be 0 (no guarantee) or between 1.5 and 4.0 px")
        return v


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
