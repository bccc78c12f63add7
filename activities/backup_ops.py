"""Activities of ``BackupWorkflow``: a base backup to the object store, and pruning (core/pg_backup.py).

The PostgreSQL tools block, so they run in a thread while the activity heartbeats. Every failure
(store unreachable, a tool failing) raises, so Temporal retries it and, after the last attempt,
the workflow fails: a backup that did not happen never looks like one that did.
"""

from __future__ import annotations

import asyncio

from temporalio import activity

from activities._heartbeat import heartbeating
from core.object_store import open_store
from core.pg_backup import prune, take_base_backup
from core.settings import Settings
from models.data_care import BaseBackupDone, PruneInput, PruneResult


class BackupActivities:
    """``settings``: the database to back up (``database``) and the store (``storage``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @activity.defn(name="backup.base_backup")
    async def base_backup(self) -> BaseBackupDone:
        """Raises ObjectStoreError (store unreachable) or BackupError (a PostgreSQL tool failed)."""
        async with heartbeating():
            store = await asyncio.to_thread(open_store, self.settings.storage)
            manifest = await asyncio.to_thread(take_base_backup, self.settings.database.effective_url(), store)
        return BaseBackupDone(label=manifest.label, restorable_from=manifest.restorable_from,
                              bytes=sum(f.size for f in manifest.files.values()))

    @activity.defn(name="backup.prune")
    async def prune(self, inp: PruneInput) -> PruneResult:
        """Delete base backups older than ``keep_days`` (default ``backup.keep_days``)."""
        keep = inp.keep_days or self.settings.backup.keep_days
        store = await asyncio.to_thread(open_store, self.settings.storage)
        deleted = await asyncio.to_thread(prune, store, keep)
        return PruneResult(deleted=len(deleted))
