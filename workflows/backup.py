"""``BackupWorkflow``: the daily base backup and the pruning of backups older than the retention
(docs/operations.md §Backups), started by the Temporal Schedule ``database-backup``
(``core/schedules.py``). WAL is archived continuously outside Temporal
(``stellar backup --follow``); this workflow only adds the daily restore starting points.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models import temporal_contract as contract
    from activities.backup_ops import BackupActivities
    from models.data_care import BackupInput, BackupReport, PruneInput
    from workflows._options import BACKUP_BASE, BACKUP_PRUNE


@workflow.defn(name=contract.BACKUP_WORKFLOW)
class BackupWorkflow:
    @workflow.run
    async def run(self, inp: BackupInput) -> BackupReport:
        base = await workflow.execute_activity_method(BackupActivities.base_backup, **BACKUP_BASE)
        # Prune only after a new base backup exists: a failing backup never shrinks what can be restored.
        pruned = await workflow.execute_activity_method(BackupActivities.prune, PruneInput(keep_days=inp.keep_days),
                                                        **BACKUP_PRUNE)
        return BackupReport(base=base, pruned=pruned.deleted)
