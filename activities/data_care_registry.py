"""What a worker registers for data care (frame retention, database backups), and their schedules.

``worker.py`` adds ``DATA_CARE_WORKFLOWS`` and ``data_care_activities(...)`` and calls
``ensure_data_care_schedules`` once at start: ``frame-retention`` daily at
``retention.hour_utc``:00 UTC and ``database-backup`` daily at ``backup.hour_utc``:00 UTC (03:00 by
default). Both skip a run while the previous one still runs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

import structlog
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
)

from activities.backup_ops import BackupActivities
from activities.retention_ops import RetentionActivities
from core.settings import Settings
from models.data_care import BackupInput, RetentionInput
from workflows.backup import BackupWorkflow
from workflows.retention import RetentionWorkflow

log = structlog.get_logger(__name__)

DATA_CARE_WORKFLOWS: list[type] = [RetentionWorkflow, BackupWorkflow]
RETENTION_SCHEDULE_ID = "frame-retention"
BACKUP_SCHEDULE_ID = "database-backup"


def data_care_activities(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> list[Callable[..., Any]]:
    retention = RetentionActivities(sessionmaker, settings)
    backup = BackupActivities(settings)
    return [retention.scan, retention.notify, retention.delete_frames, backup.base_backup, backup.prune]


def _daily(hour_utc: int) -> ScheduleSpec:
    return ScheduleSpec(calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(hour_utc)], minute=[ScheduleRange(0)])])


async def _create(client: Client, schedule_id: str, schedule: Schedule) -> None:
    try:
        await client.create_schedule(schedule_id, schedule)
        log.info("schedule.created", schedule_id=schedule_id)
    except ScheduleAlreadyRunningError:
        pass


async def ensure_data_care_schedules(client: Client, task_queue: str, settings: Settings) -> list[str]:
    """Create the retention and backup schedules unless they exist; returns their ids."""
    await _create(client, RETENTION_SCHEDULE_ID, Schedule(
        action=ScheduleActionStartWorkflow(RetentionWorkflow.run, RetentionInput(), id="frame-retention-run",
                                           task_queue=task_queue, execution_timeout=timedelta(hours=12)),
        spec=_daily(settings.retention.hour_utc), policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP)))
    await _create(client, BACKUP_SCHEDULE_ID, Schedule(
        action=ScheduleActionStartWorkflow(BackupWorkflow.run, BackupInput(), id="database-backup-run",
                                           task_queue=task_queue, execution_timeout=timedelta(hours=20)),
        spec=_daily(settings.backup.hour_utc), policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP)))
    return [RETENTION_SCHEDULE_ID, BACKUP_SCHEDULE_ID]
