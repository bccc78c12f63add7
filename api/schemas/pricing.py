"""``POST /api/pricing/estimate`` body and answer — the shapes of docs/pricing.md §2."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from api.schemas.common import StrictIn
from api.schemas.constraints import ConstraintsIn
from api.schemas.orders import MosaicIn, NextWindow
from api.schemas.telescopes import AssignmentOut


class EstimateShot(StrictIn):
    filter: str = Field(min_length=1, max_length=16, examples=["Ha"])
    exposure: float = Field(gt=0, le=3600, description="seconds per frame, 0 < exposure ≤ 3600")
    quantity: int = Field(ge=1, le=1000, description="frames, 1–1000")


class EstimateTarget(ConstraintsIn):
    """The target to price: the order constraints (``ConstraintsIn``; only the charged ones change
    the price) and its shots. Where and when are optional: with a target (``target_name``, or
    ``ra_j2000``/``dec_j2000``), the answer carries its ``next_window``."""

    target_name: str | None = Field(default=None, min_length=1, max_length=200, examples=["M42"],
                                    description="resolved from the offline catalogue unless ra_j2000/dec_j2000 are given")
    ra_j2000: float | None = Field(default=None, ge=0, lt=24, description="hours, 0 ≤ ra < 24")
    dec_j2000: float | None = Field(default=None, ge=-90, le=90, description="degrees, −90…90")

    @model_validator(mode="after")
    def _both_coordinates(self) -> "EstimateTarget":
        if (self.ra_j2000 is None) != (self.dec_j2000 is None):
            raise ValueError("give both ra_j2000 and dec_j2000, or neither (then target_name is resolved)")
        return self

    def has_target(self) -> bool:
        """A target is named or placed: the estimate then answers its ``next_window``."""
        return self.target_name is not None or (self.ra_j2000 is not None and self.dec_j2000 is not None)

    shots: list[EstimateShot] = Field(min_length=1, max_length=50)
    telescope: str | None = Field(default=None, min_length=1, max_length=40, examples=["any"],
                                  description="a telescope slug or any (the default with a target); priced with "
                                              "its multiplier and shown in the answer's telescope")
    min_field_arcmin: float | None = Field(default=None, gt=0, le=1200,
                                           description="field of view needed, arcminutes (short side)")
    mosaic: MosaicIn | None = Field(default=None, description="a mosaic (Quasar): priced as its whole shot list; "
                                    "quantities must divide by the number of panels (docs/mosaics.md)")


class EstimateRequest(StrictIn):
    """``subscription_plan``: stardust | nebula | quasar; omitted = the caller's plan."""

    subscription_plan: str | None = Field(default=None, max_length=32, examples=["nebula"])
    target: EstimateTarget


class EstimateMultipliers(BaseModel):
    """``telescope``: only when the estimate names a telescope or a target (docs/pricing.md §8); it
    is then part of ``total``."""

    priority: float
    moon_down: float
    hfd: float
    total: float
    telescope: float | None = None


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
    next_window: NextWindow | None = Field(
        default=None, description="with a target (target_name or ra_j2000/dec_j2000): the next interval in which "
        "it is observable under these constraints at the site, as an order's next_window; null otherwise or "
        "when none lies ahead")
    telescope: AssignmentOut | None = Field(
        default=None, description="with a target or a telescope named: the telescope that would run it and why")
