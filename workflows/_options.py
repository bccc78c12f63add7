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
        ERR_SET_NOT_FOUND,
        ERR_VOYAGER_REFUSED,
    )

#: Failure types the order activities raise as non-retryable ApplicationError (permanent failures).
NON_RETRYABLE = [ERR_INSUFFICIENT_CREDITS, ERR_PLAN_VIOLATION, ERR_ORDER_NOT_FOUND, ERR_VOYAGER_REFUSED, ERR_INVALID_ORDER,
                 ERR_SET_NOT_FOUND]


def _retry(attempts: int, initial: float = 1.0, maximum: float = 30.0) -> RetryPolicy:
    """``attempts`` 0 = without a limit (then ``maximum`` caps the back-off: an outage delays)."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=initial),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=maximum),
        maximum_attempts=attempts,
        non_retryable_error_types=NON_RETRYABLE,
    )


#: Cap of the back-off of every step that retries without a limit: once the outage ends, the order
#: moves on within this long.
PATIENT_BACKOFF_CAP = 30.0

#: Short database work (load, status change, GUID assignment, abort record, finalize), first run as
#: a *local* activity: one marker event instead of six events and a workflow-task round trip, which
#: keeps a night's cost in history small. Four quick attempts (well under the SDK's one-minute
#: local retry threshold, so no timer per retry) ...
DB_SHORT: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=10),
    retry_policy=_retry(4, initial=1.0, maximum=5.0),
)

#: ... then, when those gave up (the database is down), the same activity as a regular activity
#: that retries without a limit: an outage of any length delays the order, never fails it, and
#: adds three events however long it lasts (retries of a regular activity are not in history).
DB_PATIENT: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=_retry(0, initial=1.0, maximum=PATIENT_BACKOFF_CAP),
)

#: Pricing + hold, settle, release on the ledger (idempotent on the order id): without a limit,
#: like every database write of the life cycle.
LEDGER: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=_retry(0, initial=1.0, maximum=PATIENT_BACKOFF_CAP),
)

#: Submit the Set/Target/Shots. Each attempt may wait on several Voyager commands (30 s each by
#: default), so it heartbeats; cancellation waits for the attempt to stop so an abort never races a
#: half-done submit (the abort/disable that follows sees everything the attempt created). Voyager
#: unreachable is a wait: attempts go on without a limit (the deadline or an abort cancels the
#: activity); a refusal is the non-retryable ``VoyagerRefused`` and fails at once.
VOYAGER_SUBMIT: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=5),
    heartbeat_timeout=timedelta(seconds=20),
    retry_policy=_retry(0, initial=2.0, maximum=PATIENT_BACKOFF_CAP),
    cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
)

#: Bring a customer Set in Voyager to its row (activities/set_ops.py). Voyager or the database
#: unreachable is a wait without a limit: the change is recorded and reaches Voyager when the link
#: is back; a refusal fails at once.
VOYAGER_SET_SYNC: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=2),
    heartbeat_timeout=timedelta(seconds=20),
    retry_policy=_retry(0, initial=2.0, maximum=PATIENT_BACKOFF_CAP),
)

#: Abort / disable the target in Voyager (unknown GUIDs are not errors). Retries without a limit
#: within ``schedule_to_close_timeout``, which the workflow sets with :func:`until_deadline`.
VOYAGER_CONTROL: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=2),
    heartbeat_timeout=timedelta(seconds=20),
    retry_policy=_retry(0, initial=2.0, maximum=PATIENT_BACKOFF_CAP),
)

#: Watch one session (a night at most) ingesting each frame. Heartbeats are billable actions and
#: run all night: the watch sends one every 2 min (``activities/ingest.py`` WATCH_HEARTBEAT_EVERY),
#: 30 an observing hour, so a dead worker is noticed within 3 min (its frames wait in Voyager and are
#: ingested by the next attempt, none lost). Frames do not wait for heartbeats: dashboard events wake
#: the watch. Nor do aborts: TRY_CANCEL, the workflow stops and sweeps the target at once (ingest is
#: idempotent, so the old watch finishing meanwhile doubles nothing) while the cancellation reaches
#: the watch at its next heartbeat or it returns when the aborted session ends. Voyager and database
#: outages are waited out inside the attempt; what still fails it three times (a refusal, a bug) goes
#: back to the workflow, which watches the session again later (``WATCH_RETRY_*``).
WATCH_SESSION: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(hours=20),
    heartbeat_timeout=timedelta(minutes=3),
    retry_policy=_retry(3, initial=1.0, maximum=30.0),
    cancellation_type=ActivityCancellationType.TRY_CANCEL,
)

#: Ingest every session of the target before settling. Retries without a limit within
#: ``schedule_to_close_timeout`` (set with :func:`until_deadline`).
SWEEP: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=30),
    heartbeat_timeout=timedelta(seconds=15),
    retry_policy=_retry(0, initial=1.0, maximum=PATIENT_BACKOFF_CAP),
)

#: Write ``settling``, stop the target and sweep it, in one activity (``ingest.close_target``): the
#: sweep's bounds (it may wait for an aborted session to finish); retries without a limit within
#: ``schedule_to_close_timeout`` (set with :func:`until_deadline`).
CLOSE_TARGET: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=30),
    heartbeat_timeout=timedelta(seconds=15),
    retry_policy=_retry(0, initial=1.0, maximum=PATIENT_BACKOFF_CAP),
)

#: Wait, after a one-night order's session ended with work left, for Voyager to close the night's
#: run (dawn): another session may come the same night (clouds that clear). Cancelled when the
#: order ends otherwise (TRY_CANCEL: nothing waits for its heartbeat); the deadline bounds it. Hours
#: of waiting, so a heartbeat every 2 min (a third of the timeout), not every 20 s: billable actions.
WAIT_RUN_END: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(hours=20),
    heartbeat_timeout=timedelta(minutes=6),
    retry_policy=_retry(0, initial=1.0, maximum=PATIENT_BACKOFF_CAP),
    cancellation_type=ActivityCancellationType.TRY_CANCEL,
)

#: Voyager steps at the end of an order (stop, sweep) wait for the link until the order's deadline,
#: and at least this long when the deadline has passed (an expiring order): then the order settles
#: on what was ingested and a target left enabled is the repair sweep's to disable.
VOYAGER_GRACE = timedelta(hours=1)


def until_deadline(options: dict[str, Any], remaining: timedelta) -> dict[str, Any]:
    """``options`` with ``schedule_to_close_timeout`` = ``remaining`` (time to the order's
    deadline), at least :data:`VOYAGER_GRACE`: a Voyager step retries that long, then gives up."""
    return {**options, "schedule_to_close_timeout": max(remaining, VOYAGER_GRACE)}


#: Network mode (docs/network.md §2): a Voyager activity on a site queue that no site worker picks
#: up within this long means the site worker is down; the order then says it waits for the site and
#: schedules the activity again, for as long as it takes (the deadline or an abort ends the wait).
SITE_PICKUP = timedelta(seconds=30)


def on_site(options: dict[str, Any], site_queue: str | None) -> dict[str, Any]:
    """``options`` routed to ``site_queue`` (``site-<slug>``) with :data:`SITE_PICKUP` as the
    schedule-to-start timeout; unchanged when ``site_queue`` is None (the single-telescope shape)."""
    if site_queue is None:
        return options
    return {**options, "task_queue": site_queue, "schedule_to_start_timeout": SITE_PICKUP}


#: The observatory monitor's long watch (returns after ``orders.monitor_run_for``, ≤ 90 min).
MONITOR_WATCH: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(hours=2),
    heartbeat_timeout=timedelta(seconds=30),
    retry_policy=_retry(5, initial=1.0, maximum=30.0),
)

#: Pause of the monitor workflow after its watch activity gave up, before it starts another.
MONITOR_RESTART_DELAY = timedelta(seconds=30)
#: A session whose watch activity gave up is watched again after this pause, doubled after each
#: failure up to the cap; a ``session_ended`` signal for it makes it due at once. Never abandoned.
WATCH_RETRY_DELAY = timedelta(seconds=2)
WATCH_RETRY_CAP = timedelta(minutes=10)

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

#: One repair sweep (activities/repair.py): bounded by the number of drifted orders, heartbeats in
#: the background; a failed sweep is simply the next scheduled one's work (few attempts).
REPAIR_SWEEP: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=15),
    heartbeat_timeout=timedelta(seconds=60),
    retry_policy=_retry(3, initial=5.0, maximum=60.0),
)
