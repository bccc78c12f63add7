"""``RetentionWorkflow``: one daily pass of frame retention (docs/operations.md §Retention), started
by the Temporal Schedule ``frame-retention`` (``core/schedules.py``).

The moment of the pass is ``workflow.now()``, so a replay and the time-skipping tests see the same
day. Which orders are due is decided by the scan activity; each notice and each order's deletion is
its own activity, so one failing order does not stop the others and a retried deletion resumes;
the pass then fails (``RetentionIncomplete``) and the next day's pass takes those orders again.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from models import temporal_contract as contract
    from activities.retention_ops import RetentionActivities
    from models.data_care import RetentionInput, RetentionOrderInput, RetentionReport, RetentionScanInput
    from workflows._options import RETENTION_DB, RETENTION_DELETE


@workflow.defn(name=contract.RETENTION_WORKFLOW)
class RetentionWorkflow:
    @workflow.run
    async def run(self, inp: RetentionInput) -> RetentionReport:
        as_of = workflow.now()
        due = await workflow.execute_activity_method(
            RetentionActivities.scan, RetentionScanInput(as_of=as_of, days=inp.days, notice_days=inp.notice_days),
            **RETENTION_DB)
        report = RetentionReport(as_of=as_of, held_in_dispute=due.held_in_dispute)
        failed: list[int] = []
        for order_id in due.notify:
            ref = RetentionOrderInput(order_id=order_id, as_of=as_of, days=due.days, notice_days=due.notice_days)
            try:
                await workflow.execute_activity_method(RetentionActivities.notify, ref, **RETENTION_DB)
                report.notified.append(order_id)
            except ActivityError:
                failed.append(order_id)
        for order_id in due.delete:
            ref = RetentionOrderInput(order_id=order_id, as_of=as_of, days=due.days, notice_days=due.notice_days)
            try:
                report.deleted.append(await workflow.execute_activity_method(
                    RetentionActivities.delete_frames, ref, **RETENTION_DELETE))
            except ActivityError:
                failed.append(order_id)
        if failed:
            # The other orders were handled; the pass still fails, so nobody reads it as done.
            raise ApplicationError(f"retention failed for orders {failed}; the next daily pass retries them",
                                   report.model_dump(mode="json"), type="RetentionIncomplete", non_retryable=True)
        return report
