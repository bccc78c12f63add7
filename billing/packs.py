"""Credit packs: one-off purchases of pack credits (which never expire). The catalogue is data
(``billing/packs.json``), validated here.

Source: docs/pricing.md §7 — the specification's packages of 10, 50, 100 and 200 credits
with 0, 5, 15 and 40 bonus credits. The specification's prices (100/450/850/1600) are ambiguous (cents in the
view, euros × 100 in the Checkout call) and, read as cents, would sell a credit at €0.10 while every
subscription sells it at €0.79–1.45. We keep its price *ratios* and scale them ×15 so the
smallest pack costs what a Stardust credit does (€1.50 vs €1.45) and the largest what a Nebula
credit does (€1.00 per credit with its bonus vs €0.98): subscriptions stay the better deal, packs
the flexible one.

=====  =======  =====  ===========  ===============
pack   credits  bonus  price (EUR)  per credit
=====  =======  =====  ===========  ===============
10     10       0      15.00        1.50
50     50       5      67.50        1.23
100    100      15     127.50       1.11
200    200      40     240.00       1.00
=====  =======  =====  ===========  ===============
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, model_validator

CATALOGUE_FILE = Path(__file__).with_name("packs.json")


class UnknownPack(LookupError):
    """No pack has this id. ``code`` for the API error body."""

    code = "unknown_pack"

    def __init__(self, pack_id: str, known: list[str]) -> None:
        self.pack_id = pack_id
        super().__init__(f"unknown credit pack {pack_id!r}; expected one of {', '.join(known)}")


class Pack(BaseModel, frozen=True):
    """``credits`` bought + ``bonus`` offered; ``price_cents`` in the catalogue's currency."""

    id: str = Field(pattern=r"^[a-z0-9_-]{1,32}$")
    credits: int = Field(ge=1)
    bonus: int = Field(ge=0)
    price_cents: int = Field(ge=50, description="Stripe's minimum charge is 50 cents in EUR")

    @property
    def total_credits(self) -> int:
        return self.credits + self.bonus


class _File(BaseModel):
    currency: str = Field(pattern=r"^[a-z]{3}$")
    packs: list[Pack] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "_File":
        ids = [p.id for p in self.packs]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate pack ids in {CATALOGUE_FILE.name}: {ids}")
        return self


@lru_cache(maxsize=4)
def _load(path: Path = CATALOGUE_FILE) -> _File:
    return _File.model_validate(json.loads(path.read_text(encoding="utf-8")))


def currency() -> str:
    """ISO 4217 code (lower case) every pack is priced in."""
    return _load().currency


def packs() -> list[Pack]:
    """The catalogue, in file order (smallest first)."""
    return list(_load().packs)


def get_pack(pack_id: str) -> Pack:
    """The pack with this id. Raises UnknownPack."""
    for p in _load().packs:
        if p.id == pack_id:
            return p
    raise UnknownPack(pack_id, [p.id for p in _load().packs])
