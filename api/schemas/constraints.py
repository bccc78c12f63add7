"""The order constraint fields, declared once for every HTTP body that carries them.

``ChargedConstraintsIn``: what changes the price (docs/pricing.md §2), shared by ``POST
/api/orders`` and ``POST /api/pricing/estimate``; ``ConstraintsIn`` adds the scheduling window of
an order. Units: ``c_alt_min`` degrees, ``c_ha_start``/``c_ha_end`` hours −12…12,
``c_hfd_mean_limit`` pixels; datetimes UTC. The plan's rules are checked by ``billing.plans.gate``
(403 ``plan_violation``); these models only check types and ranges (422).
"""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import Field, field_validator

from api.schemas.common import StrictIn
from models.billing import OrderConstraints


class ChargedConstraintsIn(StrictIn):
    priority: int = Field(default=0, ge=0, le=4, description="0 very low … 4 first (plan-limited)")
    c_moon_down: bool = Field(default=False, description="only image while the moon is down (Nebula+)")
    c_hfd_mean_limit: float = Field(
        default=0.0, description="px; 0 = no guarantee, else 1.5–4.0 (custom limits need Quasar)"
    )
    repeat: int = Field(default=1, ge=1, le=100, description="runs of the whole shot list (Nebula+ for > 1)")

    @field_validator("c_hfd_mean_limit")
    @classmethod
    def _hfd_range(cls, v: float) -> float:
        if v != 0 and not 1.5 <= v <= 4.0:
            raise ValueError("must be 0 (no guarantee) or between 1.5 and 4.0 px")
        return v


class ConstraintsIn(ChargedConstraintsIn):
    c_alt_min: float = Field(default=30.0, ge=0, le=90, description="minimum altitude, degrees")
    c_ha_start: float | None = Field(default=None, ge=-12, le=12, description="hour angle, hours")
    c_ha_end: float | None = Field(default=None, ge=-12, le=12, description="hour angle, hours")
    date_start: datetime | None = Field(default=None, description="window start (UTC when no offset)")
    date_end: datetime | None = Field(default=None, description="window end; must be in the future")

    @field_validator("date_start", "date_end")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return None
        if v.tzinfo is None:
            v = v.replace(tzinfo=timezone.utc)
        try:
            return v.astimezone(timezone.utc)
        except (OverflowError, ValueError):
            raise ValueError("date out of range") from None

    def gate_request(self) -> OrderConstraints:
        """These fields as the gate's input (``billing.plans.gate``)."""
        return OrderConstraints.model_validate(
            self.model_dump(include=set(OrderConstraints.model_fields)))
