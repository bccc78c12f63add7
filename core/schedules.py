"""The Temporal Schedules Stellar runs, created once at worker start (``worker.open_worker``).

| schedule id | workflow | when |
|---|---|---|
| ``stripe-reconciliation`` | ``ReconciliationWorkflow`` | daily at ``hour_utc``:15 UTC (03:15 by default) |
| ``frame-retention`` | ``RetentionWorkflow`` | daily at ``retention.hour_utc``:00 UTC |
| ``database-backup`` | ``BackupWorkflow`` | daily at ``backup.hour_utc``:00 UTC (03:00 by default) |
| ``order-repair`` | ``RepairWorkflow`` | every ``repair.every_minutes`` (0: no schedule) |

Every schedule skips a run while the previous one still runs, and creating one that exists is a
no-op, so any number of workers may call these at start. Workflows are named by their type string
(``models/temporal_contract.py``), so this client-side module imports no workflow code.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from pydantic import BaseModel
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
)

from core.settings import Settings
from models.data_care import BackupInput, RetentionInput
from models.payment_workflows import ReconcileInput
from models.repair import RepairInput
from models.temporal_contract import (
    BACKUP_WORKFLOW,
    RECONCILIATION_WORKFLOW,
    REPAIR_WORKFLOW,
    RETENTION_WORKFLOW,
)

log = structlog.get_logger(__name__)

RECONCILIATION_SCHEDULE_ID = "stripe-reconciliation"
RETENTION_SCHEDULE_ID = "frame-retention"
BACKUP_SCHEDULE_ID = "database-backup"
REPAIR_SCHEDULE_ID = "order-repair"


def _daily(hour_utc: int, minute: int = 0) -> ScheduleSpec:
    return ScheduleSpec(calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(hour_utc)],
                                                        minute=[ScheduleRange(minute)])])


async def _ensure(client: Client, schedule_id: str, workflow: str, arg: BaseModel, task_queue: str,
                  spec: ScheduleSpec, execution_timeout: timedelta) -> str:
    """Create ``schedule_id`` (start ``workflow(arg)`` as ``<schedule_id>-run``) unless it exists."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(workflow, arg, id=f"{schedule_id}-run", task_queue=task_queue,
                                           execution_timeout=execution_timeout),
        spec=spec,
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(schedule_id, schedule)
        log.info("schedule.created", schedule_id=schedule_id)
    except ScheduleAlreadyRunningError:
        pass
    return schedule_id


async def ensure_reconciliation_schedule(client: Client, task_queue: str, *, hour_utc: int = 3,
                                         lookback_days: int = 3) -> str:
    """The daily ``stripe-reconciliation`` schedule (docs/payments.md). Returns its id."""
    return await _ensure(client, RECONCILIATION_SCHEDULE_ID, RECONCILIATION_WORKFLOW,
                         ReconcileInput(lookback_days=lookback_days, repair=True), task_queue,
                         _daily(hour_utc, 15), timedelta(hours=1))


async def ensure_data_care_schedules(client: Client, task_queue: str, settings: Settings) -> list[str]:
    """The daily ``frame-retention`` and ``database-backup`` schedules (docs/operations.md).
    Returns their ids."""
    return [
        await _ensure(client, RETENTION_SCHEDULE_ID, RETENTION_WORKFLOW, RetentionInput(), task_queue,
                      _daily(settings.retention.hour_utc), timedelta(hours=12)),
        await _ensure(client, BACKUP_SCHEDULE_ID, BACKUP_WORKFLOW, BackupInput(), task_queue,
                      _daily(settings.backup.hour_utc), timedelta(hours=20)),
    ]


async def ensure_repair_schedule(client: Client, task_queue: str, every_minutes: int) -> str | None:
    """The ``order-repair`` schedule every ``every_minutes`` minutes (docs/order-workflow.md);
    ``every_minutes`` 0 creates none. Returns its id or None."""
    if every_minutes <= 0:
        return None
    every = timedelta(minutes=every_minutes)
    return await _ensure(client, REPAIR_SCHEDULE_ID, REPAIR_WORKFLOW, RepairInput(), task_queue,
                         ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
                         max(every, timedelta(minutes=20)))
