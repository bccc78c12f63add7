"""Voyager side of customer Sets (docs/sets.md): bring a RoboTarget Set to its ``customer_set`` row.

The API writes the wanted state (name, paused, deleted) to the row and bumps its ``version``;
``CustomerSetWorkflow`` then runs :meth:`SetActivities.sync_set`, which reads the row under a
transaction-scoped advisory lock (two syncs of one Set never interleave, and the later one applies
the latest state) and makes Voyager match it:

* a live Set: ``RemoteRoboTargetAddSet`` (GUID stored on the row first, so a retried add finds
  it: "already exists"), else ``RemoteRoboTargetUpdateSet`` for the name; then
  ``RemoteRoboTargetEnableDisableObject`` (object type 2) for paused / resumed;
* a deleted Set: ``RemoteRoboTargetRemoveSet`` (an unknown GUID = already removed).

Retryable: ``VoyagerConnectionError``/``VoyagerTimeout`` and the database unreachable. Permanent:
Voyager refusing (non-retryable ``VoyagerRefused``); an unknown row (``SetNotFound``).
"""

from __future__ import annotations

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from activities._db import sql
from activities._heartbeat import heartbeating
from core.settings import Settings
from models.customer_sets import SetSyncInput, SetSyncResult
from models.db import CustomerSet
from models.temporal_contract import ERR_SET_NOT_FOUND, ERR_VOYAGER_REFUSED
from voyager import wire
from voyager.errors import VoyagerActionFailed, VoyagerRejected
from voyager.robotarget import RoboTarget
from voyager.types import SetSpec

log = structlog.get_logger(__name__)

#: First key of the two-key advisory lock of a Set sync (the second is the row id).
LOCK_CLASS = 0x5E7


class SetActivities:
    """``robotarget`` on the worker's pool; ``settings.voyager.profile_name``: the Sets' profile."""

    def __init__(self, robotarget: RoboTarget, settings: Settings,
                 sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.rt = robotarget
        self.settings = settings
        self.sessionmaker = sessionmaker

    @activity.defn(name="voyager.sync_set")
    async def sync_set(self, req: SetSyncInput) -> SetSyncResult:
        """Make the Voyager Set of row ``req.set_id`` match the row, then record its ``version``
        as ``synced_version``. Idempotent: run twice, the second finds Voyager up to date.

        Raises non-retryable ``SetNotFound`` (no such row) and ``VoyagerRefused``; connection
        errors, timeouts and database outages propagate and are retried."""
        async with heartbeating(), self.sessionmaker() as session:
            await sql(session, text("SELECT pg_advisory_xact_lock(:k, :id)").bindparams(k=LOCK_CLASS, id=req.set_id))
            row = await session.get(CustomerSet, req.set_id, populate_existing=True)
            if row is None:
                raise ApplicationError(f"no customer set {req.set_id}", type=ERR_SET_NOT_FOUND, non_retryable=True)
            try:
                action = await self._apply(row)
            except (VoyagerActionFailed, VoyagerRejected) as exc:
                log.warning("set.sync_refused", set_id=row.id, guid=row.guid, error=str(exc))
                raise ApplicationError(f"Voyager refused the set {row.name!r}: {exc}",
                                       type=ERR_VOYAGER_REFUSED, non_retryable=True) from None
            result = SetSyncResult(set_id=row.id, guid=row.guid, action=action, version=row.version,
                                   paused=row.paused)
            if row.synced_version < row.version:
                row.synced_version = row.version
                session.add(row)
            await session.commit()
        log.info("set.synced", set_id=result.set_id, guid=result.guid, action=action, version=result.version,
                 attempt=activity.info().attempt)
        return result

    async def _apply(self, row: CustomerSet) -> str:
        if row.deleted_at is not None:
            return "removed" if await self.rt.remove_set(row.guid) else "already_removed"
        added = await self.rt.ensure_set(SetSpec(
            guid=row.guid, name=row.name, profile_name=self.settings.voyager.profile_name, tag=row.tag,
            enabled=not row.paused, note=f"Stellar customer {row.customer_id}",
        ))
        if added:
            return "added"
        if row.synced_version >= row.version:
            return "up_to_date"
        await self.rt.update_set(row.guid, name=row.name, tag=row.tag)
        await self.rt.enable_disable(row.guid, wire.OBJECT_SET, enable=not row.paused)
        return "updated"
