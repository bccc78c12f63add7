"""Voyager side of ``OrderWorkflow``: submit the Set/Target/Shots, abort and disable the target.

GUIDs are chosen by the workflow and stored on the order before :meth:`submit_target` runs, and
every add is an ``ensure_*`` (look up by GUID, add if absent): an attempt retried after a timeout
whose command did succeed in Voyager finds the object instead of duplicating it (docs/voyager-protocol.md
§2.5, §6). Retryable: ``VoyagerConnectionError``/``VoyagerTimeout`` (outcome unknown; the order's
``status_reason`` then says it waits for the observatory link, ``activities/link_wait.py``). Permanent
(non-retryable ``VoyagerRefused``): a ``RemoteActionResult`` failure or an error reply — bad MAC,
orphan profile, a refused field.
"""

from __future__ import annotations

from typing import Any

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from activities._heartbeat import heartbeating
from activities.link_wait import clear_site_wait, note_link_down
from activities.order_sql import move_status_now, one_statement
from core.settings import Settings
from models.db import CustomerSet
from models.orders import OrderStatus, StopTargetRequest, StopTargetResult, SubmitPanel, SubmitRequest, SubmitResult
from models.temporal_contract import ERR_INVALID_ORDER, ERR_VOYAGER_REFUSED
from voyager import wire
from voyager.errors import VoyagerActionFailed, VoyagerConnectionError, VoyagerRejected, VoyagerTimeout
from voyager.robotarget import RoboTarget
from voyager.types import SetSpec, ShotSpec, TargetSpec

log = structlog.get_logger(__name__)
SET = CustomerSet.__table__


def filter_index(name: str, configuration: dict[str, int]) -> int:
    """FilterIndex of ``name`` in the telescope's filter configuration (case-insensitive), else the
    fallback table (L 0, R 1, G 2, B 3, Ha 4, OIII 5, SII 6; docs/voyager-protocol.md §8). Raises
    non-retryable ``InvalidOrder`` for a filter the telescope does not have."""
    for table in (configuration, wire.FILTER_FALLBACK):
        for key, index in table.items():
            if key.lower() == name.lower():
                return index
    raise ApplicationError(f"filter {name!r} is not on this telescope ({sorted(configuration)})",
                           type=ERR_INVALID_ORDER, non_retryable=True)


def _refused(exc: VoyagerActionFailed | VoyagerRejected, what: str) -> ApplicationError:
    if isinstance(exc, VoyagerActionFailed):
        detail = str(exc.param_ret.get(wire.RET) or exc.motivo or exc)
    else:
        detail = f"{exc.code} {exc.message}"
    return ApplicationError(f"Voyager refused {what}: {detail}", type=ERR_VOYAGER_REFUSED, non_retryable=True)


class VoyagerActivities:
    """``robotarget``: :class:`voyager.robotarget.RoboTarget` on the worker's pool;
    ``settings.voyager``: profile name and base sequence GUID of new objects; ``sessionmaker``: where
    a wait for the link is recorded on the order."""

    def __init__(self, robotarget: RoboTarget, settings: Settings,
                 sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.rt = robotarget
        self.settings = settings
        self.sessionmaker = sessionmaker

    @activity.defn(name="voyager.submit_target")
    async def submit_target(self, req: SubmitRequest) -> SubmitResult:
        """Ensure the customer's Set (tag ``user_<id>``), the order's Target with the gated
        constraints and base sequence, and its Shots (``Num`` = quantity × repeat; filter names
        mapped through ``RemoteGetFilterConfiguration``). Idempotent by GUID. With
        ``mark_submitted``, then moves the order from ``held`` to ``submitted`` (once).

        Raises non-retryable ``VoyagerRefused`` / ``InvalidOrder``; connection errors and timeouts
        propagate and are retried."""
        c = req.constraints
        vs = self.settings.voyager
        await clear_site_wait(self.sessionmaker, req.order_id, activity.info().task_queue)
        async with heartbeating():
            try:
                step = "RemoteGetFilterConfiguration"
                filters = await self.rt.get_filter_configuration()
                step = "the customer's set"
                # The customer_set row, when there is one, names the Set and says whether it is
                # paused: an order may reach Voyager before the Set's own sync (CustomerSetWorkflow).
                wanted = await self._wanted_set(req.set_guid)
                set_created = await self.rt.ensure_set(SetSpec(
                    guid=req.set_guid, name=wanted.name if wanted else req.set_name, profile_name=vs.profile_name,
                    tag=req.set_tag, enabled=not (wanted and wanted.paused),
                    note=f"Stellar customer {req.customer_id}",
                ))
                indexes: dict[str, int] = {}
                created = 0
                target_created = False
                runs = max(1, c.repeat) if c.is_repeat else 1
                # A mosaic submits one Target per panel (docs/mosaics.md); any other order its one Target.
                targets = req.panels or [SubmitPanel(target_guid=req.target_guid, target_name=req.target_name,
                                                     ra_j2000=req.ra_j2000, dec_j2000=req.dec_j2000, shots=req.shots)]
                for target in targets:
                    step = f"the target {target.target_name}"
                    target_created = await self.rt.ensure_target(TargetSpec(
                        guid=target.target_guid, set_guid=req.set_guid, name=target.target_name,
                        ra_j2000=target.ra_j2000, dec_j2000=target.dec_j2000, pa=req.pa,
                        base_sequence_guid=vs.base_sequence_guid, tag=f"order_{req.order_id}",
                        note=f"Stellar order {req.order_id}", priority=c.priority,
                        is_repeat=c.is_repeat, repeat=max(1, c.repeat), c_mask=c.c_mask, alt_min=c.alt_min,
                        ha_start=c.ha_start, ha_end=c.ha_end, date_start=c.date_start, date_end=c.date_end,
                        moon_down=c.moon_down, hfd_mean_limit=c.hfd_mean_limit,
                    )) or target_created
                    for shot in target.shots:
                        step = f"shot {shot.filter} {shot.exposure:g}s of {target.target_name}"
                        index = filter_index(shot.filter, filters)
                        indexes[shot.guid] = index
                        created += await self.rt.ensure_shot(ShotSpec(
                            guid=shot.guid, target_guid=target.target_guid, filter_index=index,
                            num=shot.quantity * runs, exposure=shot.exposure, label=shot.filter,
                            bin=shot.bin, gain=shot.gain, offset=shot.offset, order=shot.order,
                        ))
            except (VoyagerActionFailed, VoyagerRejected) as exc:
                log.warning("order.submit_refused", order_id=req.order_id, step=step, error=str(exc))
                raise _refused(exc, step) from None
            except (VoyagerConnectionError, VoyagerTimeout) as exc:
                await note_link_down(self.sessionmaker, req.order_id, exc)
                raise
        if req.mark_submitted:
            async with one_statement(self.sessionmaker) as conn:
                await move_status_now(conn, req.order_id, OrderStatus.SUBMITTED, "", only_from=(OrderStatus.HELD.value,))
        log.info("order.submitted", order_id=req.order_id, target_guid=req.target_guid,
                 set_created=set_created, target_created=target_created, shots_created=created,
                 attempt=activity.info().attempt)
        return SubmitResult(target_guid=req.target_guid, set_created=set_created, target_created=target_created,
                            shots_created=created, filter_indexes=indexes)

    async def _wanted_set(self, guid: str) -> Any:
        """The ``customer_set`` row's ``name`` and ``paused`` (a column tuple), or None."""
        async with one_statement(self.sessionmaker) as conn:
            return (await conn.execute(sa.select(SET.c.name, SET.c.paused).where(SET.c.guid == guid))).first()

    @activity.defn(name="voyager.stop_target")
    async def stop_target(self, req: StopTargetRequest) -> StopTargetResult:
        """``RemoteRoboTargetAbort`` the target's running session and/or disable the target
        (``RemoteRoboTargetEnableDisableObject``), so Voyager never observes it again. A refusal
        (unknown GUID, nothing running) is reported in ``detail``, not raised: the target may never
        have been created. Connection errors and timeouts propagate (retried)."""
        await clear_site_wait(self.sessionmaker, req.order_id, activity.info().task_queue)
        try:
            async with heartbeating():
                return await stop_target(self.rt, req)
        except (VoyagerConnectionError, VoyagerTimeout) as exc:
            await note_link_down(self.sessionmaker, req.order_id, exc)
            raise


async def stop_target(rt: RoboTarget, req: StopTargetRequest) -> StopTargetResult:
    """Disable the target (every panel of a mosaic) and/or abort its running session, as
    :meth:`VoyagerActivities.stop_target` documents; also the stop of ``ingest.close_target``.
    The caller heartbeats. Raises VoyagerConnectionError / VoyagerTimeout (retried)."""
    aborted = disabled = False
    details: list[str] = []
    targets = [req.target_guid, *(t for t in req.panel_target_guids if t != req.target_guid)]
    if req.disable:
        # Disable first (every panel of a mosaic): an abort alone would let the scheduler
        # pick the target, or the mosaic's next panel, again.
        for guid in targets:
            try:
                await rt.enable_disable(guid, wire.OBJECT_TARGET, enable=False)
                disabled = True
            except (VoyagerActionFailed, VoyagerRejected) as exc:
                details.append(f"disable {guid}: {exc}" if len(targets) > 1 else f"disable: {exc}")
    if req.abort:
        for guid in targets:
            try:
                await rt.abort(target_guid=guid)
                aborted = True
            except (VoyagerActionFailed, VoyagerRejected) as exc:
                details.append(f"abort {guid}: {exc}" if len(targets) > 1 else f"abort: {exc}")
    log.info("order.target_stopped", order_id=req.order_id, target_guid=req.target_guid,
             aborted=aborted, disabled=disabled, detail="; ".join(details))
    return StopTargetResult(aborted=aborted, disabled=disabled, detail="; ".join(details))
