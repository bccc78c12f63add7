"""Ledger words mean one thing each (docs/pricing.md §5): released credits are ``released`` in every
model, and what was written under the old names — recorded workflow histories, stored reports, an
existing deployment's environment — still reads."""

from __future__ import annotations

import pytest

from api.schemas.orders import Credits
from core.settings import Settings
from models.orders import AbortRequest, AbortRole, OrderReport, OrderWorkflowResult, SettleResult, abort_role

REPORT = {"order_id": 1, "status": "partial", "target_name": "M42", "filters": [], "frames_accepted": 2,
          "integration_minutes": 10.0, "requested_integration_minutes": 20.0, "sessions": 1, "cost": 4,
          "credits_held": 4, "credits_captured": 3}


def test_released_credits_read_under_the_old_name_and_are_written_under_the_new_one():
    settled = SettleResult.model_validate({"order_id": 1, "held": 4, "captured": 3, "refunded": 1,
                                           "requested_seconds": 1200.0, "accepted_seconds": 600.0})
    report = OrderReport.model_validate({**REPORT, "credits_refunded": 1})
    result = OrderWorkflowResult.model_validate({"order_id": 1, "status": "partial", "credits_refunded": 1})
    assert (settled.released, report.credits_released, result.credits_released) == (1, 1, 1)
    assert "released" in settled.model_dump() and "refunded" not in settled.model_dump()
    assert "credits_released" in report.model_dump() and "credits_refunded" not in report.model_dump()
    assert OrderReport.model_validate(report.model_dump(mode="json")) == report


def test_the_http_credits_view_says_released():
    assert set(Credits.model_fields) == {"cost", "held", "captured", "released"}


def test_the_release_threshold_reads_its_deprecated_environment_name(monkeypatch):
    monkeypatch.setenv("STELLAR_BILLING__VOYAGER_FAILURE_REFUND_BELOW", "0.3")
    assert Settings().billing.voyager_failure_release_below == 0.3
    monkeypatch.setenv("STELLAR_BILLING__VOYAGER_FAILURE_RELEASE_BELOW", "0.4")
    monkeypatch.delenv("STELLAR_BILLING__VOYAGER_FAILURE_REFUND_BELOW")
    assert Settings().billing.voyager_failure_release_below == 0.4


@pytest.mark.parametrize(("payload", "role"), [
    ({"requested_by": "support:alice", "role": "customer"}, AbortRole.CUSTOMER),
    ({"requested_by": "customer:7", "role": "support"}, AbortRole.SUPPORT),
    # Payloads recorded before the role field read as they did then.
    ({"requested_by": "support:alice"}, AbortRole.SUPPORT),
    ({"requested_by": "admin:root"}, AbortRole.SUPPORT),
    ({"requested_by": "customer:7"}, AbortRole.CUSTOMER),
])
def test_the_abort_role_is_explicit_and_old_payloads_keep_their_meaning(payload, role):
    assert abort_role(AbortRequest.model_validate({"reason": "r", **payload})) is role
