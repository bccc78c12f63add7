"""``RepairWorkflow``: one repair sweep (activities/repair.py), started every
``repair.every_minutes`` by the Temporal Schedule ``order-repair`` (core/schedules.py).

The sweep is one activity: what it finds lives in the database and in Temporal, not in this
history, and a sweep that fails is the next scheduled run's work.
"""

from __future__ import annotations

from temporalio import workflow

from workflows import _options as opt

with workflow.unsafe.imports_passed_through():
    from models import temporal_contract as contract
    from activities.repair import RepairActivities
    from models.repair import RepairInput, RepairReport


@workflow.defn(name=contract.REPAIR_WORKFLOW)
class RepairWorkflow:
    @workflow.run
    async def run(self, inp: RepairInput) -> RepairReport:
        report: RepairReport = await workflow.execute_activity_method(RepairActivities.sweep, inp, **opt.REPAIR_SWEEP)
        if report.items:
            workflow.logger.warning("repair: %d found, %d repaired", len(report.items),
                                    sum(i.done for i in report.items))
        return report
