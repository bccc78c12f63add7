"""Activity options of the order and monitor workflows, as named constants (conventions, Temporal).

Every option set has a ``start_to_close_timeout`` and a ``maximum_attempts``; anything that can run
longer than a minute also has a ``heartbeat_timeout``, so a killed worker's activity is retried
elsewhere after that long instead of after its whole start-to-close. Imported by workflow code:
stdlib and temporalio only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from models.temporal_contract import (
        ERR_INSUFFICIENT_CREDITS,
        ERR_INVALID_ORDER,
        ERR_ORDER_NOT_FOUND,
        ERR_PLAN_VIOLATION,
        ERR_VOYAGER_REFUSED,
    )

#: Failure types the order activities raise as non-retryable ApplicationError (permanent failures).
NON_RETRYABLE = [ERR_INSUFFICIENT_CREDITS, ERR_PLAN_VIOLATION, ERR_ORDER_NOT_FOUND, ERR_VOYAGER_REFUSED, ERR_INVALID_ORDER]


def _retry(attempts: int, initial: float = 1.0, maximum: float = 30.0) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=initial),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=maximum),
        maximum_attempts=attempts,
        non_retryable_error_types=NON_RETRYABLE,
    )


#: Short database work (load, status change, GUID assignment, abort record, finalize), run as
#: *local* activities: one marker event each instead of six events and a workflow-task round trip,
#: which keeps a night's cost in history small.
DB_SHORT: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=_retry(10),
)

#: Pricing + hold, settle, release on the ledger (idempotent on the order id).
LEDGER: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=_retry(10),
)

#: Submit the Set/Target/Shots. Each attempt may wait on several Voyager commands (30 s each by
#: default), so it heartbeats; cancellation waits for the attempt to stop so an abort never races a
#: half-done submit (the abort/disable that follows sees everything the attempt created).
VOYAGER_SUBMIT: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=5),
    heartbeat_timeout=timedelta(seconds=20),
    retry_policy=_retry(8, initial=2.0, maximum=30.0),
    cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
)

#: Abort / disable the target in Voyager (unknown GUIDs are not errors).
VOYAGER_CONTROL: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=2),
    heartbeat_timeout=timedelta(seconds=20),
    retry_policy=_retry(10, initial=2.0, maximum=30.0),
)

#: Watch one session (a night at most) ingesting each frame. Heartbeats are billable actions and
#: run all night: every 20 s (a third of the timeout) is 180 an observing hour, while a dead worker
#: is still noticed within a minute and an abort reaches the watch within 20 s.
WATCH_SESSION: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(hours=20),
    heartbeat_timeout=timedelta(seconds=60),
    retry_policy=_retry(20, initial=1.0, maximum=30.0),
    cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
)

#: Final ingest of every session of the target (after abort / at the deadline).
SWEEP: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=30),
    heartbeat_timeout=timedelta(seconds=15),
    retry_policy=_retry(10, initial=1.0, maximum=30.0),
)

#: The observatory monitor's long watch (returns after ``orders.monitor_run_for``, ≤ 90 min).
MONITOR_WATCH: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(hours=2),
    heartbeat_timeout=timedelta(seconds=30),
    retry_policy=_retry(5, initial=1.0, maximum=30.0),
)

#: Pause of the monitor workflow after its watch activity gave up, before it starts another.
MONITOR_RESTART_DELAY = timedelta(seconds=30)
#: Pause before re-watching a session whose watch activity failed, and how many times.
WATCH_RETRY_DELAY = timedelta(seconds=60)
WATCH_MAX_FAILURES = 3
#: Settle and finalize must happen: after their activity gave up, wait and start it again, this
#: many rounds (about two hours) before the workflow fails for an operator to look at.
CRITICAL_RETRY_DELAY = timedelta(minutes=10)
CRITICAL_ROUNDS = 12

#: Retention: scan and notice are short database work; deleting one order's files heartbeats per
#: frame, so a killed worker's deletion resumes on another within a minute (already expired frames
#: are skipped).
RETENTION_DB: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=2),
    retry_policy=_retry(10, initial=2.0, maximum=60.0),
)
RETENTION_DELETE: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=30),
    heartbeat_timeout=timedelta(seconds=60),
    retry_policy=_retry(10, initial=2.0, maximum=60.0),
)

#: The daily base backup: minutes to hours for a large database, heartbeating while the tools run.
#: An unreachable store fails each attempt within seconds; five attempts over about half an hour,
#: then the workflow fails for an operator to see (nothing reports success).
BACKUP_BASE: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(hours=6),
    heartbeat_timeout=timedelta(seconds=60),
    retry_policy=_retry(5, initial=60.0, maximum=600.0),
)
BACKUP_PRUNE: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=10),
    retry_policy=_retry(5, initial=30.0, maximum=300.0),
)

#: One repair sweep (activities/repair.py): bounded by the number of drifted orders, heartbeats per
#: order; a failed sweep is simply the next scheduled one's work (few attempts).
REPAIR_SWEEP: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=15),
    heartbeat_timeout=timedelta(seconds=60),
    retry_policy=_retry(3, initial=5.0, maximum=60.0),
)
