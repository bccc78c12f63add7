"""One identifier per error from the domain to HTTP: the domain error's ``code`` is the Temporal
``ApplicationError.type`` and the HTTP ``code``, and api/errors.py is the one table of statuses."""

from __future__ import annotations

import re

from api.errors import STATUS_BY_CODE, domain_error
from billing import errors as billing_errors
from models import temporal_contract as contract
from core.order_control import AbortRefused

TYPES = {name: value for name, value in vars(contract).items() if name.startswith("ERR_")}


def test_every_workflow_failure_type_is_snake_case_and_has_one_http_status():
    assert len(TYPES) >= 20
    for name, value in TYPES.items():
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", value), (name, value)
        assert value in STATUS_BY_CODE, f"{name} = {value!r} has no HTTP status in api/errors.py"


def test_domain_codes_are_the_temporal_types():
    assert billing_errors.InsufficientCredits.code == contract.ERR_INSUFFICIENT_CREDITS == "insufficient_credits"
    assert billing_errors.PlanViolation.code == contract.ERR_PLAN_VIOLATION == "plan_violation"
    assert billing_errors.UnknownPlan.code == contract.ERR_UNKNOWN_PLAN
    assert billing_errors.UnknownCustomer.code == contract.ERR_UNKNOWN_CUSTOMER
    assert AbortRefused.code == contract.ERR_ABORT_REFUSED == "order_not_abortable"
    for cls in vars(billing_errors).values():
        if isinstance(cls, type) and issubclass(cls, billing_errors.BillingError) and cls is not billing_errors.BillingError:
            assert cls.code in STATUS_BY_CODE, cls.__name__


def test_domain_error_takes_its_status_from_the_table():
    assert (domain_error("insufficient_credits", "short").status_code, domain_error("card_declined", "no").status_code,
            domain_error("order_not_abortable", "late").status_code) == (402, 402, 409)
    unknown = domain_error("some_new_stripe_type", "?")
    assert (unknown.status_code, unknown.code) == (502, "some_new_stripe_type")
