"""Settlement policy: how many held credits an ended order captures. Pure, exact, integer.

Source: docs/pricing.md §6 (the settlement policy, with worked examples): a session that ends OK
captures, an aborted or failed one releases; the customer is billed according to real usage, and an
abort releases the unused part in proportion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Protocol

from billing.pricing import exact as _exact  # floats read as the decimal that prints: 0.9 → 9/10
from models.billing import SettlementInput, SettlementOutcome, SettlementThresholds

_PROPORTIONAL = {SettlementOutcome.partial, SettlementOutcome.customer_abort, SettlementOutcome.support_abort}
_VOYAGER_FAILURE = {SettlementOutcome.voyager_abort, SettlementOutcome.voyager_error, SettlementOutcome.expired}


class Thresholds(Protocol):
    """Anything with the two fractions: ``SettlementThresholds`` or ``core.settings.BillingSettings``."""

    complete_threshold: float
    voyager_failure_release_below: float


def credits_to_capture(
    held: int,
    requested_integration_s: float | int | Fraction | Decimal,
    accepted_integration_s: float | int | Fraction | Decimal,
    outcome: SettlementOutcome | str,
    thresholds: Thresholds | None = None,
) -> int:
    """Credits to capture from a hold of ``held`` credits; the rest is released to the customer.

    The policy, in plain words:

    * "Accepted" integration is the exposure time of frames that were taken and not rejected (HFD
      within the plan's limit), in seconds; the *accepted fraction* is accepted ÷ requested
      integration, capped at 1.
    * **Completed** with at least 90 % of the requested integration accepted: we capture the whole
      hold. Completed with less (frames rejected): we capture only the accepted fraction.
    * **Partial completion, or an abort by the customer or by support**: the customer pays for what
      was delivered — we capture the accepted fraction of the hold, rounded up to a whole credit,
      and release the unused part.
    * **Voyager aborted or failed, or the order's window expired**: if under 50 % of the requested
      integration was delivered we release everything; otherwise we capture the accepted fraction,
      rounded up, as for an abort.
    * We never capture more than was held, nor less than zero. "Rounded up" is
      ceil(held × fraction) in exact rational arithmetic.

    The 90 % and 50 % thresholds are settings (``STELLAR_BILLING__COMPLETE_THRESHOLD``,
    ``STELLAR_BILLING__VOYAGER_FAILURE_RELEASE_BELOW``); ``thresholds`` None = these defaults.
    ``outcome``: a :class:`SettlementOutcome` or its value. Raises ValueError on a negative hold or
    accepted integration, a non-positive requested integration, or an unknown outcome.
    """
    if held < 0:
        raise ValueError(f"held must be ≥ 0, got {held}")
    requested = _exact(requested_integration_s)
    accepted = _exact(accepted_integration_s)
    if requested <= 0:
        raise ValueError(f"requested integration must be > 0 s, got {requested_integration_s}")
    if accepted < 0:
        raise ValueError(f"accepted integration must be ≥ 0 s, got {accepted_integration_s}")
    outcome = SettlementOutcome(outcome)
    t = thresholds or SettlementThresholds()
    fraction = min(Fraction(1), accepted / requested)
    proportional = math.ceil(held * fraction)

    if outcome is SettlementOutcome.completed:
        capture = held if fraction >= _exact(t.complete_threshold) else proportional
    elif outcome in _PROPORTIONAL:
        capture = proportional
    elif outcome in _VOYAGER_FAILURE:
        capture = 0 if fraction < _exact(t.voyager_failure_release_below) else proportional
    else:  # pragma: no cover - SettlementOutcome() above rejects anything else
        raise ValueError(f"unknown outcome {outcome!r}")
    return max(0, min(held, capture))


def capture_for(settlement: SettlementInput) -> int:
    """:func:`credits_to_capture` for one pydantic input (activities take one model)."""
    return credits_to_capture(settlement.held, settlement.requested_integration_s,
                              settlement.accepted_integration_s, settlement.outcome, settlement.thresholds)


@dataclass(frozen=True)
class SettlementPreview:
    """What settling now would do: of ``held`` credits, ``captured`` are kept, ``released`` go back
    to the customer (``captured + released == held``)."""

    held: int
    captured: int
    released: int


def preview_settlement(
    held: int,
    requested_integration_s: float | int | Fraction | Decimal,
    accepted_integration_s: float | int | Fraction | Decimal,
    outcome: SettlementOutcome | str,
    thresholds: Thresholds | None = None,
) -> SettlementPreview:
    """The split :func:`credits_to_capture` gives for these numbers, without moving anything — e.g.
    the credits an abort would release now (the abort confirmation of the API and the web app). An
    order without requested integration releases its whole hold, as ``ledger.settle`` does.
    Raises ValueError as :func:`credits_to_capture` does (negative hold or accepted integration)."""
    if held < 0:
        raise ValueError(f"held must be ≥ 0, got {held}")
    if held == 0 or _exact(requested_integration_s) <= 0:
        return SettlementPreview(held=held, captured=0, released=held)
    capture = credits_to_capture(held, requested_integration_s, accepted_integration_s, outcome, thresholds)
    return SettlementPreview(held=held, captured=capture, released=held - capture)
