"""Billing models that cross the HTTP and Temporal boundaries (pydantic v2).

Units: credits are integers; exposures and integration are seconds; hour angles are hours;
altitudes degrees; HFD pixels; dates timezone-aware (sent to Voyager as epoch seconds).
Exact quantities (multipliers, base cost) are ``Decimal`` in Python and JSON numbers on the wire.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer, model_serializer

#: An exact decimal that is a JSON number on the wire (display only; money is integer credits).
ExactNumber = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]

Bucket = Literal["subscription", "pack"]


# --- pricing (docs/pricing.md §2) -------------------------------------------------------------


class PricedShot(BaseModel):
    """One filter × exposure × count line, as the pricing engine sees it. ``exposure``: seconds (> 0); ``quantity``: frames (≥ 1)."""

    filter: str = Field(default="L", max_length=16)
    exposure: float = Field(gt=0, le=86_400, description="seconds per frame")
    quantity: int = Field(ge=1, le=100_000, description="number of frames")


class PricingInput(BaseModel):
    """What the pricing engine charges for (docs/pricing.md §2).

    ``c_hfd_mean_limit`` > 0 means a *charged* custom HFD guarantee (×1.5); a plan's free standard
    limit is 0 here even though Voyager receives 4.0 (see ``billing.plans.pricing_input``).
    ``repeat``: number of times Voyager runs the whole shot list (1 = one-shot).
    """

    priority: int = Field(default=0, ge=0, le=4, description="0 very low … 4 first")
    c_moon_down: bool = False
    c_hfd_mean_limit: float = Field(default=0.0, ge=0, description="px; 0 = no charged guarantee")
    repeat: int = Field(default=1, ge=1, le=1000)
    shots: list[PricedShot] = Field(min_length=1)


class Multipliers(BaseModel):
    """Exact multipliers of an estimate; ``total`` = priority × moon_down × hfd (× telescope, when
    the estimate names a telescope: docs/pricing.md §8)."""

    priority: ExactNumber
    moon_down: ExactNumber
    hfd: ExactNumber
    total: ExactNumber
    telescope: ExactNumber | None = None

    @model_serializer(mode="wrap")
    def _seed_shape(self, handler):
        # Without a telescope the object keeps the seed's four keys (docs/pricing.md §2).
        data = handler(self)
        if data.get("telescope") is None:
            data.pop("telescope", None)
        return data


class Estimate(BaseModel):
    """The ``POST /api/pricing/estimate`` ``estimation`` object (docs/pricing.md §2), plus ``plan`` and ``shortfall``.

    ``base_cost``: estimated hours (= credits before multipliers) rounded half-up to 2 decimals, for
    display; ``final_cost`` = ceil(exact hours × total) credits. ``remaining_after`` =
    ``user_balance − final_cost`` (negative when the customer cannot afford it); ``shortfall`` =
    max(0, −remaining_after).
    """

    plan: str
    base_cost: ExactNumber
    multipliers: Multipliers
    final_cost: int
    user_balance: int
    remaining_after: int
    can_afford: bool
    shortfall: int = 0


# --- plans and gates (docs/pricing.md §1, §4) -------------------------------------------------


class OrderConstraints(BaseModel):
    """The scheduling constraints a customer asks for; ``billing.plans.gate`` checks and maps them.
    The HTTP bodies declare the same fields once, with their ranges, in api/schemas/constraints.py.

    Ranges are checked by the gate (one place, one error type with a reason per field), so this
    model only fixes types. ``None`` = not asked (the plan's default applies).
    ``c_ha_start``/``c_ha_end``: hours −12…12; ``c_alt_min``: degrees 0–90; ``repeat``: runs ≥ 1.
    """

    priority: int = 0
    c_moon_down: bool | None = None
    c_hfd_mean_limit: float | None = Field(default=None, description="px; None/0 = no custom limit")
    repeat: int = 1
    c_alt_min: float = 30.0
    c_ha_start: float | None = None
    c_ha_end: float | None = None
    date_start: AwareDatetime | None = None
    date_end: AwareDatetime | None = None
    mosaic_panels: int = Field(default=0, description="panels of a mosaic order (docs/mosaics.md); 0 = not a mosaic")


class VoyagerTargetConstraints(BaseModel):
    """Gated constraints, named as RoboTarget target fields (docs/voyager-protocol.md §8).

    ``to_wire()`` gives the wire dict (``Priority``, ``C_MoonDown``, …); ``plan`` is not sent.
    ``C_Mask`` letters: B altitude min, D hour-angle start, E hour-angle end, K moon down.
    ``C_HFDMeanLimit`` 0 = no limit; ``C_DateStart``/``C_DateEnd`` epoch seconds, 0 = none.
    """

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    plan: str = Field(description="plan whose rules were applied (not a wire field)")
    priority: int = Field(alias="Priority")
    is_repeat: bool = Field(alias="IsRepeat")
    repeat: int = Field(alias="Repeat")
    c_mask: str = Field(alias="C_Mask")
    alt_min: float = Field(alias="C_AltMin")
    ha_start: float | None = Field(default=None, alias="C_HAStart")
    ha_end: float | None = Field(default=None, alias="C_HAEnd")
    date_start: int = Field(default=0, alias="C_DateStart")
    date_end: int = Field(default=0, alias="C_DateEnd")
    moon_down: bool = Field(alias="C_MoonDown")
    hfd_mean_limit: float = Field(alias="C_HFDMeanLimit")

    def to_wire(self) -> dict[str, Any]:
        """Wire-named fields; unset hour angles are left out (the mask does not name them)."""
        return self.model_dump(by_alias=True, exclude_none=True, exclude={"plan"})


# --- settlement (docs/pricing.md §6) --------------------------------------------------------


class SettlementOutcome(str, Enum):
    """How an order ended, as the settlement policy sees it."""

    completed = "completed"
    partial = "partial"
    customer_abort = "customer_abort"
    support_abort = "support_abort"
    voyager_abort = "voyager_abort"
    voyager_error = "voyager_error"
    expired = "expired"


class SettlementThresholds(BaseModel):
    """Fractions of the requested integration (defaults = ``BillingSettings``)."""

    complete_threshold: float = Field(default=0.90, ge=0, le=1)
    voyager_failure_release_below: float = Field(default=0.50, ge=0, le=1)


class SettlementInput(BaseModel):
    """Input of ``billing.settlement.credits_to_capture``; integration in seconds."""

    held: int = Field(ge=0)
    requested_integration_s: float = Field(gt=0)
    accepted_integration_s: float = Field(ge=0)
    outcome: SettlementOutcome
    thresholds: SettlementThresholds = SettlementThresholds()


# --- ledger (docs/pricing.md §5) -------------------------------------------------------------


class LedgerHold(BaseModel):
    """A hold in the ledger (pending transfer), as ``Ledger.hold`` returns it. ``replayed``: this
    call repeated an earlier hold and moved nothing."""

    order_id: int
    customer_id: int
    amount: int
    from_subscription: int
    from_pack: int
    status: Literal["open", "captured", "released"]
    replayed: bool = False


class HoldResolution(BaseModel):
    """The one resolution of a hold in the ledger (``Ledger.capture`` / ``Ledger.release``) (``status`` captured or released).

    ``captured`` + ``released`` = ``held``. ``replayed``: the hold had already been resolved and this
    call returns that first resolution without moving anything.
    """

    order_id: int
    customer_id: int
    status: Literal["captured", "released"]
    held: int
    captured: int
    released: int
    captured_from_subscription: int
    captured_from_pack: int
    released_to_subscription: int
    released_to_pack: int
    replayed: bool = False


class LedgerResult(BaseModel):
    """Result of grant, adjust or expire: the entry written by the first call with this key.

    ``amount``: signed change of ``bucket``; ``balance_after``: total available after it;
    ``held_after``: credits held after it.
    """

    customer_id: int
    kind: str
    bucket: str
    amount: int
    balance_after: int
    held_after: int
    idempotency_key: str
    entry_id: int
    created_at: datetime
    replayed: bool = False


class Balances(BaseModel):
    """A customer's credits: ``available`` = ``subscription`` + ``pack`` − ``debt`` (negative while
    a refund or dispute left the account owing credits); ``held`` is reserved."""

    customer_id: int
    subscription: int = 0
    pack: int = 0
    available: int = 0
    held: int = 0
    debt: int = 0


class LedgerEntry(BaseModel):
    """One ledger entry for statements (``GET`` transactions). ``amount``: signed change of available;
    ``balance_*``: total available; ``held_*``: credits held."""

    id: int
    kind: str
    bucket: str
    amount: int
    balance_before: int
    balance_after: int
    held_before: int
    held_after: int
    reference_type: str
    reference_id: str
    idempotency_key: str
    actor: str
    reason: str
    created_at: datetime
