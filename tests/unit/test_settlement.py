"""Settlement policy (docs/pricing.md §6): credits captured from a hold, by outcome and accepted integration."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.settlement import SettlementPreview, capture_for, credits_to_capture, preview_settlement
from core.settings import BillingSettings
from models.billing import SettlementInput, SettlementOutcome as O
from models.billing import SettlementThresholds

REQ = 12_000.0  # seconds requested (docs/pricing.md §3 example 2: 40 × 300 s)


@pytest.mark.parametrize("accepted, captured", [(12_000, 9), (10_800, 9), (10_799, 9), (6_000, 5), (0, 0)])
def test_completed_captures_all_from_90_percent_else_the_accepted_fraction(accepted, captured):
    # 10 799 / 12 000 × 9 = 8.09… → ceil 9 as well; the threshold only matters when it changes the result
    assert credits_to_capture(9, REQ, accepted, O.completed) == captured


def test_completed_below_the_threshold_is_billed_by_usage():
    assert credits_to_capture(100, 1000, 899, "completed") == 90
    assert credits_to_capture(100, 1000, 900, "completed") == 100


@pytest.mark.parametrize("outcome", [O.partial, O.customer_abort, O.support_abort])
def test_aborts_and_partials_capture_the_ceiling_of_the_accepted_fraction(outcome):
    assert credits_to_capture(9, REQ, 3_000, outcome) == 3  # 9 × 1/4 = 2.25 → 3
    assert credits_to_capture(9, REQ, 0, outcome) == 0
    assert credits_to_capture(10, 1000, 950, outcome) == 10  # no "complete" bonus for an abort: 9.5 → 10
    assert credits_to_capture(20, 1000, 500, outcome) == 10  # exact: no rounding up of a whole number


@pytest.mark.parametrize("outcome", [O.voyager_abort, O.voyager_error, O.expired])
def test_voyager_failures_release_everything_under_half_delivered(outcome):
    assert credits_to_capture(9, REQ, 5_999, outcome) == 0
    assert credits_to_capture(9, REQ, 6_000, outcome) == 5  # 4.5 → 5
    assert credits_to_capture(9, REQ, 12_000, outcome) == 9


def test_over_delivery_never_captures_more_than_held():
    for outcome in O:
        assert credits_to_capture(7, 100, 250, outcome) == 7


def test_thresholds_come_from_settings():
    strict = BillingSettings(complete_threshold=1.0, voyager_failure_release_below=0.8)
    assert credits_to_capture(100, 1000, 950, O.completed, strict) == 95
    assert credits_to_capture(100, 1000, 700, O.voyager_error, strict) == 0
    assert credits_to_capture(100, 1000, 700, O.voyager_error) == 70


def test_float_thresholds_are_exact_decimals():
    # 0.9 as a binary float is 0.90000000000000002220…; read exactly as 9/10, 900/1000 qualifies.
    assert credits_to_capture(10, 0.3, Fraction(27, 100), O.completed, SettlementThresholds(complete_threshold=0.9)) == 10


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        credits_to_capture(-1, 100, 50, O.completed)
    with pytest.raises(ValueError):
        credits_to_capture(5, 0, 0, O.completed)
    with pytest.raises(ValueError):
        credits_to_capture(5, 100, -1, O.completed)
    with pytest.raises(ValueError):
        credits_to_capture(5, 100, 50, "weather")


def test_one_model_in_for_activities():
    s = SettlementInput(held=9, requested_integration_s=REQ, accepted_integration_s=3_000, outcome="customer_abort")
    assert capture_for(SettlementInput.model_validate_json(s.model_dump_json())) == 3


# --- properties -------------------------------------------------------------------------------

held_st = st.integers(0, 10_000)
seconds = st.floats(min_value=0, max_value=1e7, allow_nan=False, allow_infinity=False)
requested_st = st.floats(min_value=1, max_value=1e7, allow_nan=False, allow_infinity=False)
fraction_st = st.floats(min_value=0, max_value=1, allow_nan=False)


@given(held_st, requested_st, seconds, st.sampled_from(list(O)), fraction_st, fraction_st)
def test_capture_is_between_zero_and_the_hold(held, requested, accepted, outcome, complete, release_below):
    t = SettlementThresholds(complete_threshold=complete, voyager_failure_release_below=release_below)
    assert 0 <= credits_to_capture(held, requested, accepted, outcome, t) <= held


@given(held_st, requested_st, seconds, seconds, st.sampled_from(list(O)))
def test_capture_is_monotonic_in_accepted_integration(held, requested, a, b, outcome):
    low, high = sorted((a, b))
    assert credits_to_capture(held, requested, low, outcome) <= credits_to_capture(held, requested, high, outcome)


@given(held_st, requested_st, seconds)
def test_abort_bills_at_least_the_delivered_share_and_under_one_credit_more(held, requested, accepted):
    got = credits_to_capture(held, requested, accepted, O.customer_abort)
    share = held * min(Fraction(1), Fraction(repr(accepted)) / Fraction(repr(requested)))
    assert share <= got < share + 1


def test_the_preview_splits_the_hold_as_the_policy_would_and_moves_nothing():
    # docs/pricing.md §6: an abort keeps the ceiling of the accepted fraction, the rest is released.
    p = preview_settlement(9, REQ, 3_000, O.customer_abort)
    assert (p.held, p.captured, p.released) == (9, 3, 6)
    assert preview_settlement(9, REQ, 3_000, O.support_abort) == p
    # Nothing held: nothing to keep or refund; no requested integration: the whole hold goes back.
    assert preview_settlement(0, REQ, 3_000, O.customer_abort) == SettlementPreview(0, 0, 0)
    assert preview_settlement(5, 0, 0, O.customer_abort) == SettlementPreview(5, 0, 5)
    with pytest.raises(ValueError):
        preview_settlement(-1, REQ, 0, O.customer_abort)


@given(held=st.integers(0, 10_000), accepted=st.floats(0, 2 * REQ))
def test_the_preview_always_adds_up_to_the_hold(held, accepted):
    p = preview_settlement(held, REQ, accepted, O.customer_abort)
    assert p.captured + p.released == held
    assert p.captured == (credits_to_capture(held, REQ, accepted, O.customer_abort) if held else 0)
