"""The ``order-repair`` Temporal Schedule: ``RepairWorkflow`` every ``repair.every_minutes``.

Client side (not a workflow file): ``worker.py`` calls :func:`ensure_repair_schedule` once at start,
as it does for the Stripe reconciliation schedule.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from models.repair import RepairInput
from workflows.repair import RepairWorkflow

log = structlog.get_logger(__name__)
REPAIR_SCHEDULE_ID = "order-repair"


async def ensure_repair_schedule(client: Client, task_queue: str, every_minutes: int) -> str | None:
    """Create the ``order-repair`` schedule (every ``every_minutes`` minutes, overlapping runs
    skipped) unless it exists; ``every_minutes`` 0 creates none. Returns the schedule id or None."""
    if every_minutes <= 0:
        return None
    every = timedelta(minutes=every_minutes)
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            RepairWorkflow.run, RepairInput(), id="order-repair-run", task_queue=task_queue,
            execution_timeout=max(every, timedelta(minutes=20))),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(REPAIR_SCHEDULE_ID, schedule)
        log.info("schedule.created", schedule_id=REPAIR_SCHEDULE_ID, every_minutes=every_minutes)
    except ScheduleAlreadyRunningError:
        pass
    return REPAIR_SCHEDULE_ID
