"""Billing domain errors. Each has a stable machine-readable ``code`` (api/errors.py maps it to HTTP;
activities turn the permanent ones into non-retryable ``ApplicationError(type=code)``). A code that
also crosses Temporal is taken from ``models.temporal_contract``, so the three names are one."""

from __future__ import annotations

from models import temporal_contract as contract


class BillingError(Exception):
    """Base of every billing error. ``code``: stable snake_case identifier."""

    code = "billing_error"


class PlanViolation(BillingError):
    """The order asks for something the plan forbids, or a value is out of range.

    ``fields``: field name → human reason, e.g. ``{"priority": "priority 3 needs Quasar"}``.
    """

    code = contract.ERR_PLAN_VIOLATION

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = dict(fields)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.fields.items()))

    def __reduce__(self):  # keep pickling (multiprocessing, test runners) working with kw state
        return (type(self), (self.fields,))


class UnknownPlan(BillingError):
    """No plan has this id (plans are ``stardust``, ``nebula``, ``quasar``)."""

    code = contract.ERR_UNKNOWN_PLAN

    def __init__(self, plan_id: str) -> None:
        self.plan_id = plan_id
        super().__init__(f"unknown plan {plan_id!r}; expected stardust, nebula or quasar")

    def __reduce__(self):
        return (type(self), (self.plan_id,))


class InsufficientCredits(BillingError):
    """The account cannot cover ``requested`` credits. ``shortfall = requested − available`` (> 0)."""

    code = contract.ERR_INSUFFICIENT_CREDITS

    def __init__(self, customer_id: int, requested: int, available: int) -> None:
        self.customer_id = customer_id
        self.requested = requested
        self.available = available
        self.shortfall = requested - available
        super().__init__(
            f"customer {customer_id} needs {requested} credits but has {available} available "
            f"(short by {self.shortfall})"
        )

    def __reduce__(self):
        return (type(self), (self.customer_id, self.requested, self.available))


class CreditDebt(InsufficientCredits):
    """The account owes ``debt`` credits: a refund or a lost dispute took back credits that had
    already been spent (docs/payments.md, "Refunds and disputes"). No new hold until it is covered;
    ``available`` is then ``subscription + pack − debt`` (≤ 0 when the buckets are empty)."""

    code = "credit_debt"

    def __init__(self, customer_id: int, requested: int, available: int, debt: int) -> None:
        super().__init__(customer_id, requested, available)
        self.debt = debt
        Exception.__init__(
            self,
            f"customer {customer_id} owes {debt} credits: a payment was refunded or disputed after its "
            f"credits were spent; orders are refused until the debt is covered (buy a credit pack)",
        )

    def __reduce__(self):
        return (type(self), (self.customer_id, self.requested, self.available, self.debt))


class IdempotencyConflict(BillingError):
    """An idempotency key was reused for a different operation (other customer, kind, bucket or amount).

    A true repeat returns the first result; a conflicting reuse is a caller bug and changes nothing.
    """

    code = "idempotency_conflict"

    def __init__(self, key: str, detail: str) -> None:
        self.key = key
        self.detail = detail
        super().__init__(f"idempotency key {key!r} already used for a different operation: {detail}")

    def __reduce__(self):
        return (type(self), (self.key, self.detail))


class HoldNotFound(BillingError):
    """No hold exists for this order (settle/release before hold)."""

    code = "hold_not_found"

    def __init__(self, order_id: int) -> None:
        self.order_id = order_id
        super().__init__(f"no credit hold for order {order_id}")

    def __reduce__(self):
        return (type(self), (self.order_id,))


class InvalidAmount(BillingError, ValueError):
    """An amount is out of range (hold ≤ 0, capture < 0 or > held, zero adjustment, bad bucket)."""

    code = "invalid_amount"


class UnknownCustomer(BillingError):
    """No customer row has this id."""

    code = contract.ERR_UNKNOWN_CUSTOMER

    def __init__(self, customer_id: int) -> None:
        self.customer_id = customer_id
        super().__init__(f"no customer {customer_id}")

    def __reduce__(self):
        return (type(self), (self.customer_id,))
