"""The pricing engine: credits for an observation, in exact arithmetic.

Source: docs/pricing.md §2 (the rule) and §3 (the worked examples: 1, 9 and 189 credits).

* estimated seconds = repeat × Σ over shots (exposure × quantity + 30 s × quantity)
  (30 s overhead per frame; ``repeat`` = runs of the whole shot list, 1 for a one-shot order);
* base cost = hours = seconds / 3600 (1 credit = 1 hour);
* multipliers: priority 0–1 ×1.0, 2 ×1.2, 3 ×2.0, 4 ×3.0; moon-down ×2.0; charged (custom) HFD
  guarantee, ``c_hfd_mean_limit`` > 0, ×1.5;
* final cost = ceil(hours × product of multipliers × the telescope's multiplier), with
  :class:`fractions.Fraction` throughout: 10 × 300 s at priority 2 is 3300 s → 11/12 h × 6/5 =
  exactly 11/10 → 2 credits. The telescope multiplier (docs/pricing.md §8) is an exact decimal,
  1 on the reference telescope, so every seed example keeps its price there.

Exposures arrive as floats (JSON); each is read as the shortest decimal that prints it (``300.0`` →
300, ``0.1`` → 1/10), i.e. the value the customer typed, never the binary approximation.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from billing import plans
from billing.plans import Plan
from models.billing import Estimate, Multipliers, OrderConstraints, PricingInput

OVERHEAD_PER_FRAME_S = 30
SECONDS_PER_CREDIT = 3600  # BASE_COST_PER_HOUR = 1.0
PRIORITY_MULTIPLIER: dict[int, Fraction] = {
    0: Fraction(1), 1: Fraction(1), 2: Fraction(6, 5), 3: Fraction(2), 4: Fraction(3),
}
MOON_DOWN_MULTIPLIER = Fraction(2)
HFD_MULTIPLIER = Fraction(3, 2)


def exact(x: float | int | Fraction | Decimal) -> Fraction:
    """A number as an exact Fraction; floats by their shortest decimal repr (``0.1`` → 1/10)."""
    if isinstance(x, float):
        if not math.isfinite(x):
            raise ValueError(f"not a finite number: {x}")
        return Fraction(repr(x))
    return Fraction(x)


def estimated_seconds(pricing: PricingInput) -> Fraction:
    """Seconds of telescope time, overhead included: repeat × Σ (exposure + 30) × quantity."""
    per_run = sum((exact(s.exposure) + OVERHEAD_PER_FRAME_S) * s.quantity for s in pricing.shots)
    return Fraction(per_run) * pricing.repeat


def requested_integration_seconds(pricing: PricingInput) -> Fraction:
    """Seconds of exposure asked for (no overhead): repeat × Σ exposure × quantity.

    The settlement policy compares accepted integration against this.
    """
    return Fraction(sum(exact(s.exposure) * s.quantity for s in pricing.shots)) * pricing.repeat


def hours(pricing: PricingInput) -> Fraction:
    """Estimated hours (exact) = base cost in credits."""
    return estimated_seconds(pricing) / SECONDS_PER_CREDIT


def multipliers(pricing: PricingInput) -> tuple[Fraction, Fraction, Fraction]:
    """(priority, moon_down, hfd) multipliers, exact."""
    return (
        PRIORITY_MULTIPLIER[pricing.priority],
        MOON_DOWN_MULTIPLIER if pricing.c_moon_down else Fraction(1),
        HFD_MULTIPLIER if pricing.c_hfd_mean_limit > 0 else Fraction(1),
    )


def price(pricing: PricingInput, telescope_multiplier: Fraction | Decimal | int = 1) -> int:
    """Credits charged for ``pricing`` on a telescope of ``telescope_multiplier`` (exact, > 0):
    ceil(hours × Π multipliers × telescope multiplier), rounded up once. Plan-agnostic; gate first.
    Raises ValueError for a multiplier ≤ 0 (docs/pricing.md §8)."""
    prio, moon, hfd = multipliers(pricing)
    return math.ceil(hours(pricing) * prio * moon * hfd * _telescope(telescope_multiplier))


def _telescope(multiplier: Fraction | Decimal | int) -> Fraction:
    m = exact(multiplier)
    if m <= 0:
        raise ValueError(f"a telescope multiplier must be positive, not {multiplier}")
    return m


def _dec(f: Fraction, places: str = "0.01") -> Decimal:
    return (Decimal(f.numerator) / Decimal(f.denominator)).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def _ratio(f: Fraction) -> Decimal:
    """A multiplier for display: exact when it has ≤ 4 decimals (all of today's do), trailing zeros cut."""
    return _dec(f, "0.0001").normalize()


def estimate(plan: Plan | str | None, pricing: PricingInput, user_balance: int,
             telescope_multiplier: Fraction | Decimal | int | None = None, *, mosaic_panels: int = 0) -> Estimate:
    """Price ``pricing`` as ``plan`` will charge it and compare with ``user_balance`` (credits).

    The plan's rules apply first, exactly as for a real order: its constraints go through
    :func:`billing.plans.gate` (forbidden values raise PlanViolation; forced ones are applied, e.g.
    Quasar's moon-down, Nebula's free standard HFD) and :func:`billing.plans.pricing_input`.
    ``plan`` None = no active plan (pack credits, Stardust rules). ``telescope_multiplier``: the
    chosen telescope's (docs/pricing.md §8), then also in ``multipliers.telescope`` and ``total``;
    None = the reference telescope, the seed shape. ``mosaic_panels``: a mosaic's panel count
    (gated: Quasar; the price is the shot list's, docs/mosaics.md). Shape: docs/pricing.md §2,
    ``POST /api/pricing/estimate``. Raises PlanViolation, UnknownPlan.
    """
    p = plans.get_plan(plan)
    constraints = plans.gate(p, OrderConstraints(
        priority=pricing.priority,
        c_moon_down=pricing.c_moon_down,
        c_hfd_mean_limit=pricing.c_hfd_mean_limit,
        repeat=pricing.repeat,
        mosaic_panels=mosaic_panels,
    ))
    charged = plans.pricing_input(constraints, pricing.shots)
    prio, moon, hfd = multipliers(charged)
    scope = None if telescope_multiplier is None else _telescope(telescope_multiplier)
    total = prio * moon * hfd * (scope if scope is not None else 1)
    cost = math.ceil(hours(charged) * total)
    remaining = user_balance - cost
    return Estimate(
        plan=p.id,
        base_cost=_dec(hours(charged)),
        multipliers=Multipliers(priority=_ratio(prio), moon_down=_ratio(moon), hfd=_ratio(hfd),
                                total=_ratio(total), telescope=None if scope is None else _ratio(scope)),
        final_cost=cost,
        user_balance=user_balance,
        remaining_after=remaining,
        can_afford=remaining >= 0,
        shortfall=max(0, -remaining),
    )
