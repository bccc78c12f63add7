"""Activity options of the payment workflows, as named constants (conventions, Temporal).

Imported by workflow code: stdlib and temporalio only. Every option set has a
``start_to_close_timeout`` and a ``maximum_attempts``; the one that may run longer than a minute
(reconciliation) heartbeats.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models.temporal_contract import (
        ERR_CARD_DECLINED,
        ERR_PAYMENT_METHOD_INVALID,
        ERR_STRIPE_REJECTED,
        ERR_UNKNOWN_CUSTOMER,
    )

#: Permanent failures raised by the payment activities (non-retryable ApplicationError types).
NON_RETRYABLE = [ERR_CARD_DECLINED, ERR_PAYMENT_METHOD_INVALID, ERR_STRIPE_REJECTED, ERR_UNKNOWN_CUSTOMER]

#: A Stripe API call: a few retries with backoff (Stripe's own idempotency keys make them safe),
#: then the command fails and the customer is told; nothing half-done is left unpaid.
STRIPE_CALL: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=60),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                             maximum_interval=timedelta(seconds=30), maximum_attempts=8,
                             non_retryable_error_types=NON_RETRYABLE),
)

#: A database write (facts, rows): retried for about an hour through a database outage; every
#: write is idempotent.
DB_CALL: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                             maximum_interval=timedelta(seconds=60), maximum_attempts=70,
                             non_retryable_error_types=NON_RETRYABLE),
)

#: Reconciliation: listing a few days of Stripe objects can take a while (heartbeats per page).
RECONCILE_CALL: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=10),
    heartbeat_timeout=timedelta(minutes=1),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=10), maximum_interval=timedelta(minutes=5),
                             maximum_attempts=5),
)

#: How long a failed batch of facts waits before it is tried again (the database was down).
FACT_RETRY_DELAY = timedelta(minutes=5)
