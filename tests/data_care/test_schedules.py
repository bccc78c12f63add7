"""The worker's data-care schedules: frame retention daily, the base backup daily at 03:00 UTC."""

from __future__ import annotations

from temporalio.client import ScheduleCalendarSpec, ScheduleOverlapPolicy

from core.schedules import BACKUP_SCHEDULE_ID, RETENTION_SCHEDULE_ID, ensure_data_care_schedules
from core.settings import load_settings


async def test_retention_and_backup_schedules_are_created_once_daily(temporal_env, task_queue):
    client = temporal_env.client
    settings = load_settings()
    try:
        for _ in range(2):
            assert await ensure_data_care_schedules(client, task_queue, settings) == [RETENTION_SCHEDULE_ID,
                                                                                        BACKUP_SCHEDULE_ID]
        for schedule_id, workflow, hour in ((RETENTION_SCHEDULE_ID, "RetentionWorkflow", 2),
                                            (BACKUP_SCHEDULE_ID, "BackupWorkflow", 3)):
            desc = await client.get_schedule_handle(schedule_id).describe()
            cal = desc.schedule.spec.calendars[0]
            assert isinstance(cal, ScheduleCalendarSpec)
            assert ([r.start for r in cal.hour], [r.start for r in cal.minute]) == ([hour], [0])
            assert desc.schedule.action.workflow == workflow
            assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    finally:
        for schedule_id in (RETENTION_SCHEDULE_ID, BACKUP_SCHEDULE_ID):
            await client.get_schedule_handle(schedule_id).delete()
