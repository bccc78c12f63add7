"""HTTP models of host earnings (``/api/host/earnings``) and payouts (``/api/admin/payouts``).
Money is integer cents; an exact value that is not a whole cent is a fraction string (``6750/11``);
months are ``YYYY-MM`` (UTC). See docs/host-earnings.md."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import StrictIn

MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"


class HostGrantOut(BaseModel):
    """Captured credits of one grant lot: ``credits`` of its ``grant_credits``, worth
    ``value_cents`` (exact) from the grant's ``grant_value_cents`` less ``grant_reversed_cents``."""

    grant_id: int
    source: str = Field(description="pack | subscription | support | promotion | unattributed")
    credits: int
    grant_credits: int
    grant_value_cents: int
    grant_reversed_cents: int
    value_cents: str = Field(description="exact cents, an integer or a fraction p/q")


class HostOrderOut(BaseModel):
    order_id: int
    telescope: str
    month: str
    customer: str = Field(description="the customer's pseudonymous id for this host")
    credits: int
    share_percent: int = Field(description="the share in force at capture time")
    value_cents: str = Field(description="exact value of the captured credits now (after reversals)")
    earned_cents: int = Field(description="credited at capture")
    reversed_cents: int = Field(description="signed sum of later reversals (refunds, disputes)")
    net_cents: int
    grants: list[HostGrantOut]


class HostMonthOut(BaseModel):
    month: str
    orders: int = 0
    credits: int = 0
    earned_cents: int = 0
    reversed_cents: int = 0
    net_cents: int = 0


class HostTelescopeOut(BaseModel):
    slug: str
    name: str
    share_percent: int = Field(description="the share in force now")
    net_cents: int
    months: list[HostMonthOut]
    orders: list[HostOrderOut]


class HostCustomerOut(BaseModel):
    customer: str
    telescope: str
    first_observation_at: datetime
    last_observation_at: datetime
    credits_captured: int
    orders: int


class HostPayoutOut(BaseModel):
    id: int
    amount_cents: int
    method: str
    reference: str
    created_at: datetime


class HostEarningsOut(BaseModel):
    """``due_cents`` = ``earned_cents`` − ``paid_cents`` over every telescope (may be negative)."""

    host_customer_id: int
    due_cents: int
    earned_cents: int
    paid_cents: int
    telescopes: list[HostTelescopeOut]
    customers: list[HostCustomerOut]
    payouts: list[HostPayoutOut]


class StatementLine(BaseModel):
    """One line of a monthly statement (one host entry)."""

    date: str
    kind: str
    telescope: str
    order_id: int | None
    customer: str
    credits: int
    share_percent: int | None
    value_cents: str
    amount_cents: int
    reference: str


class PayoutIn(StrictIn):
    host_customer_id: int = Field(ge=1, le=2**31 - 1)
    amount_cents: int = Field(ge=1, le=10**12)
    method: Literal["stripe_connect", "external"] = "external"
    reference: str = Field(default="", max_length=255, description="the bank transfer id (external)")


class PayoutOut(BaseModel):
    """A recorded payout (``billing.host_payouts.PayoutResult``, read by attribute)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    host_customer_id: int
    amount_cents: int
    method: str
    reference: str
    due_after_cents: int
    created_at: datetime
    replayed: bool
