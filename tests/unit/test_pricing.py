"""Pricing engine: the worked examples, exact arithmetic, monotonicity (docs/pricing.md
§2–§3)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.errors import PlanViolation
from billing.pricing import estimate, estimated_seconds, hours, multipliers, price, requested_integration_seconds
from models.billing import Estimate, PricingInput, PricedShot


def shots(*lines: tuple[str, float, int]) -> list[PricedShot]:
    return [PricedShot(filter=f, exposure=e, quantity=q) for f, e, q in lines]


EX1 = PricingInput(priority=0, shots=shots(("L", 60, 10)))
EX2 = PricingInput(priority=2, c_moon_down=True, c_hfd_mean_limit=0, shots=shots(("Ha", 300, 20), ("OIII", 300, 20)))
EX3 = PricingInput(priority=4, c_moon_down=True, c_hfd_mean_limit=2.0,
                   shots=shots(("Ha", 600, 40), ("OIII", 600, 40), ("SII", 600, 40)))


def test_example_1_stardust_ten_minutes_of_luminance_costs_one_credit():
    assert hours(EX1) == Fraction(1, 4)
    assert price(EX1) == 1
    e = estimate("stardust", EX1, user_balance=20)
    assert (e.base_cost, e.final_cost, e.remaining_after, e.can_afford) == (Decimal("0.25"), 1, 19, True)


def test_example_2_nebula_narrowband_with_dark_sky_costs_nine_credits():
    e = estimate("nebula", EX2, user_balance=60)
    assert e.base_cost == Decimal("3.67")
    assert (e.multipliers.priority, e.multipliers.moon_down, e.multipliers.hfd, e.multipliers.total) == (
        Decimal("1.2"), Decimal("2"), Decimal("1"), Decimal("2.4"))
    assert (e.final_cost, e.user_balance, e.remaining_after, e.can_afford, e.shortfall) == (9, 60, 51, True, 0)


def test_example_2_as_the_seed_api_json():
    e = estimate("nebula", EX2, user_balance=60)
    assert e.model_dump(mode="json", exclude={"plan", "shortfall"}) == {
        "base_cost": 3.67,
        "multipliers": {"priority": 1.2, "moon_down": 2.0, "hfd": 1.0, "total": 2.4},
        "final_cost": 9, "user_balance": 60, "remaining_after": 51, "can_afford": True,
    }
    assert Estimate.model_validate_json(e.model_dump_json()) == e  # survives the Temporal/HTTP trip


def test_nebula_standard_hfd_is_sent_but_not_charged():
    with_standard = EX2.model_copy(update={"c_hfd_mean_limit": 4.0})
    assert estimate("nebula", with_standard, 60).final_cost == 9


def test_example_3_quasar_full_options_costs_189_and_exceeds_the_monthly_150():
    assert hours(EX3) == 21
    assert multipliers(EX3) == (3, 2, Fraction(3, 2))
    assert price(EX3) == 189
    e = estimate("quasar", EX3, user_balance=150)
    assert (e.base_cost, e.multipliers.total, e.final_cost) == (Decimal("21"), Decimal("9"), 189)
    assert (e.can_afford, e.remaining_after, e.shortfall) == (False, -39, 39)


def test_quasar_moon_down_is_always_on_and_charged():
    no_moon = EX3.model_copy(update={"c_moon_down": False})
    assert estimate("quasar", no_moon, 150).multipliers.moon_down == 2
    assert estimate("quasar", no_moon, 150).final_cost == 189


def test_3300_seconds_at_priority_2_is_exactly_1_1_so_2_credits():
    p = PricingInput(priority=2, shots=shots(("L", 300, 10)))
    assert estimated_seconds(p) == 3300
    assert hours(p) * multipliers(p)[0] == Fraction(11, 10)
    assert price(p) == 2


def test_an_exact_whole_number_of_credits_is_not_rounded_up():
    p = PricingInput(priority=3, shots=shots(("L", 1770, 1)))  # 1800 s = 0.5 h × 2.0 = 1.0
    assert price(p) == 1


def test_decimal_exposures_are_read_as_written():
    # 0.1 s frames: 36 000 × 30.1 s is 301 h exactly; a binary float product would not be.
    p = PricingInput(priority=0, shots=shots(("L", 0.1, 36_000)))
    assert hours(p) == 301 and price(p) == 301


@pytest.mark.parametrize("priority, factor", [(0, 1), (1, 1), (2, Fraction(6, 5)), (3, 2), (4, 3)])
def test_priority_multipliers(priority, factor):
    assert multipliers(PricingInput(priority=priority, shots=shots(("L", 60, 1))))[0] == factor


def test_hfd_guarantee_multiplies_by_one_and_a_half():
    base = PricingInput(priority=0, shots=shots(("L", 3570, 2)))  # 2 h
    assert price(base) == 2
    assert price(base.model_copy(update={"c_hfd_mean_limit": 2.5})) == 3


def test_repeat_multiplies_the_time_and_the_integration():
    one = PricingInput(priority=0, shots=shots(("L", 3570, 1)))
    three = one.model_copy(update={"repeat": 3})
    assert (price(one), price(three)) == (1, 3)
    assert requested_integration_seconds(three) == 3 * 3570


def test_estimate_applies_the_plan_gate():
    with pytest.raises(PlanViolation) as exc:
        estimate("nebula", EX3, 500)
    assert exc.value.fields["priority"] == "priority 4 needs Quasar"
    assert "c_hfd_mean_limit" in exc.value.fields
    no_plan = estimate(None, EX1, 0)  # pack-only customer: Stardust rules
    assert (no_plan.plan, no_plan.can_afford, no_plan.shortfall) == ("stardust", False, 1)


# --- properties -------------------------------------------------------------------------------

exposure = st.decimals(min_value=Decimal("0.1"), max_value=Decimal("3600"), places=1).map(float)
line = st.builds(PricedShot, filter=st.sampled_from(["L", "Ha", "OIII"]), exposure=exposure,
                 quantity=st.integers(1, 500))
pricing = st.builds(PricingInput, priority=st.integers(0, 4), c_moon_down=st.booleans(),
                    c_hfd_mean_limit=st.sampled_from([0.0, 1.5, 2.5]), repeat=st.integers(1, 5),
                    shots=st.lists(line, min_size=1, max_size=4))


@given(pricing, st.integers(1, 100))
def test_price_is_monotonic_in_quantity(p, extra):
    more = p.model_copy(update={"shots": [p.shots[0].model_copy(update={"quantity": p.shots[0].quantity + extra}),
                                          *p.shots[1:]]})
    assert price(more) >= price(p)


@given(pricing, exposure)
def test_price_is_monotonic_in_exposure(p, extra):
    longer = p.model_copy(update={"shots": [p.shots[0].model_copy(update={"exposure": p.shots[0].exposure + extra}),
                                            *p.shots[1:]]})
    assert price(longer) >= price(p)


@given(pricing)
def test_price_is_monotonic_in_priority_and_options(p):
    costs = [price(p.model_copy(update={"priority": q})) for q in range(5)]
    assert costs == sorted(costs)
    assert price(p.model_copy(update={"c_moon_down": True})) >= price(p.model_copy(update={"c_moon_down": False}))
    assert price(p.model_copy(update={"c_hfd_mean_limit": 2.0})) >= price(p.model_copy(update={"c_hfd_mean_limit": 0}))


@given(pricing)
def test_price_is_the_ceiling_of_the_exact_product(p):
    exact = hours(p) * multipliers(p)[0] * multipliers(p)[1] * multipliers(p)[2]
    assert price(p) >= 1
    assert price(p) - 1 < exact <= price(p)


@pytest.mark.parametrize("example, credits", [(EX1, 1), (EX2, 9), (EX3, 189)])
def test_the_seed_examples_keep_their_price_on_the_reference_telescope(example, credits):
    # docs/pricing.md §8: the stored multiplier of the reference telescope is NUMERIC 1.0000.
    assert price(example, Decimal("1.0000")) == price(example) == credits


def test_the_telescope_multiplier_is_exact_and_rounded_up_once():
    ten_300s = PricingInput(priority=2, shots=shots(("L", 300, 10)))  # 11/12 h × 6/5 = 11/10
    assert price(ten_300s, Decimal("1.25")) == 2  # × 5/4 = exactly 11/8 → 2
    assert price(EX2, Decimal("0.5")) == 5  # 11/3 h × 12/5 × 1/2 = 4.4 → 5 (not ceil(8.8)/2)
    whole = PricingInput(priority=3, shots=shots(("L", 1770, 1)))  # 1800 s at priority 3 = exactly 1 credit
    assert price(whole, Decimal("1.5")) == 2 and price(whole, Decimal("3")) == 3
    e = estimate("nebula", EX2, 60, telescope_multiplier=Decimal("1.25"))
    assert (e.multipliers.telescope, e.multipliers.total, e.final_cost) == (Decimal("1.25"), Decimal("3"), 11)
    assert "telescope" not in estimate("nebula", EX2, 60).model_dump()["multipliers"]
    with pytest.raises(ValueError):
        price(EX1, Decimal("0"))
