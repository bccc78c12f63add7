"""Credits: balances, ledger lines and support adjustments. All amounts are integer credits."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from api.schemas.common import StrictIn


class Buckets(BaseModel):
    subscription: int = Field(description="monthly credits (expire when a cancelled plan ends)")
    pack: int = Field(description="bought credits (never expire)")
    debt: int = Field(default=0, description="credits owed after a refund or dispute took back spent credits; "
                                             "orders are refused (402 credit_debt) until it is covered")


class CreditsOut(BaseModel):
    """``available`` = subscription + pack − debt (negative while the account owes credits);
    ``held`` is reserved by running orders."""

    available: int
    held: int
    buckets: Buckets
    plan: str = Field(description="rules orders are gated with: the active plan, else stardust")
    subscription_status: str | None


class Reference(BaseModel):
    type: str = Field(description="order | invoice | payment | admin | subscription | charge")
    id: str


class Transaction(BaseModel):
    """One ledger line. ``amount``: signed change of available credits; ``balance_after``: total
    available after it; ``held_after``: credits held after it."""

    id: int
    kind: str = Field(description="grant | hold | capture | release | expire | adjustment | "
                                  "clawback | restore | repay")
    bucket: str
    amount: int
    balance_after: int
    held_after: int
    reference: Reference
    reason: str
    created_at: datetime


class TransactionPage(BaseModel):
    items: list[Transaction]
    total: int
    limit: int
    offset: int


class AdjustIn(StrictIn):
    """Support adjustment: ``amount`` ≠ 0 (negative takes credits away, never below zero)."""

    amount: int = Field(ge=-1_000_000, le=1_000_000)
    reason: str = Field(min_length=1, max_length=1000)
    bucket: Literal["pack", "subscription"] = "pack"

    @field_validator("amount")
    @classmethod
    def _nonzero(cls, v: int) -> int:
        if v == 0:
            raise ValueError("must not be 0")
        return v


class AdjustOut(BaseModel):
    customer_id: int
    entry_id: int
    amount: int
    bucket: str
    balance_after: int
    held_after: int
    reason: str
    replayed: bool


class AdjustmentOut(BaseModel):
    """One support adjustment as the ledger logged it: who (``actor``), why, how much, to whom."""

    entry_id: int
    customer_id: int
    amount: int = Field(description="signed credits")
    bucket: str
    actor: str = Field(description="role:e-mail of the staff key that made it")
    reason: str
    balance_after: int
    created_at: datetime


class AdjustmentPage(BaseModel):
    items: list[AdjustmentOut]
    total: int
    limit: int
    offset: int
