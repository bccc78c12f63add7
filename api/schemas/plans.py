"""``GET /api/subscriptions/plans`` answer: the plan table in the shape of docs/pricing.md §1."""

from __future__ import annotations

from typing import Iterable, Literal

from pydantic import BaseModel

from billing.plans import Plan


class PlanFeaturesOut(BaseModel):
    """A plan's ``features`` (docs/pricing.md §1): exactly these keys. ``hfd_guarantee``: false,
    ``"standard"`` or ``"custom"``."""

    priority_max: int
    moon_down: bool
    hfd_guarantee: Literal[False, "standard", "custom"]
    repeat: bool
    sets: bool
    mosaics: bool
    dashboard: bool

    @classmethod
    def of(cls, p: Plan) -> PlanFeaturesOut:
        return cls(priority_max=p.priority_max, moon_down=p.moon_down != "never",
                   hfd_guarantee=False if p.hfd == "none" else p.hfd, repeat=p.repeat, sets=p.sets,
                   mosaics=p.mosaics, dashboard=p.dashboard)


class PlanOut(BaseModel):
    """One plan: ``price`` in EUR cents per month, ``credits`` per month."""

    id: str
    name: str
    price: int
    credits: int
    features: PlanFeaturesOut

    @classmethod
    def of(cls, p: Plan) -> PlanOut:
        return cls(id=p.id, name=p.name, price=p.price_cents, credits=p.monthly_credits,
                   features=PlanFeaturesOut.of(p))


class PlanCatalogueOut(BaseModel):
    """``{"plans": [...]}``, cheapest first."""

    plans: list[PlanOut]

    @classmethod
    def of(cls, plans: Iterable[Plan]) -> PlanCatalogueOut:
        return cls(plans=[PlanOut.of(p) for p in plans])
