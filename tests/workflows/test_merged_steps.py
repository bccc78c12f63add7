"""The order's merged steps stay exactly-once: each activity that now does what several steps did
(docs/order-workflow.md, "Steps, not more than the work needs") is run again as a retry would run
it — whole, or after a crash between its parts — and nothing is written or moved twice."""

from __future__ import annotations

import uuid

from sqlmodel import select
from temporalio.testing import ActivityEnvironment

from activities.ingest import IngestActivities
from activities.ledger_ops import ACTOR, LedgerActivities, settle_order
from billing.ledger import Ledger
from core.database import make_sessionmaker
from core.voyager_clients import pool_from_settings
from models.billing import SettlementOutcome
from models.db import OrderShot
from models.orders import (
    AbortRecord,
    AbortRole,
    CloseOrderRequest,
    CloseTargetRequest,
    GuidAssignment,
    HoldRequest,
    OrderStatus,
    SettleRequest,
)
from tests.workflows.support import (
    create_customer,
    create_order,
    events_of,
    ledger_entries,
    order_row,
    order_settings,
    start_sim,
    status_sequence,
)
from voyager.robotarget import RoboTarget

SHOTS = [{"filter": "L", "exposure": 60.0, "quantity": 2}, {"filter": "R", "exposure": 60.0, "quantity": 1}]


def _proposal(order_id: int, shot_ids: list[int]) -> GuidAssignment:
    return GuidAssignment(order_id=order_id, set_guid=str(uuid.uuid4()), target_guid=str(uuid.uuid4()),
                          shot_guids={str(i): str(uuid.uuid4()) for i in shot_ids})


async def _shot_ids(engine, order_id: int) -> list[int]:
    async with make_sessionmaker(engine)() as s:
        return list((await s.exec(select(OrderShot.id).where(OrderShot.order_id == order_id))).all())


async def _order(tmp_path, database_url, engine):
    """(settings of a worker, a customer with 100 credits, a new order of ``SHOTS``); no Voyager
    is needed past the settings."""
    sim = await start_sim(tmp_path)
    try:
        settings = order_settings(sim, database_url, tmp_path)
    finally:
        await sim.stop()
    customer = await create_customer(engine, 100)
    return settings, customer, await create_order(engine, customer, SHOTS)


async def test_a_retried_hold_keeps_its_guids_and_writes_held_once(tmp_path, database_url, engine):
    settings, customer, order_id = await _order(tmp_path, database_url, engine)
    ledger = LedgerActivities(Ledger(engine), make_sessionmaker(engine), settings)
    first = _proposal(order_id, await _shot_ids(engine, order_id))
    held = await ActivityEnvironment().run(ledger.price_and_hold, HoldRequest(order_id=order_id, guids=first, held=True))
    # A retry (the first attempt's result lost) proposes other GUIDs: the stored ones stay in force.
    again = await ActivityEnvironment().run(
        ledger.price_and_hold, HoldRequest(order_id=order_id, guids=_proposal(order_id, list(first.shot_guids)), held=True))

    assert held.guids == first and again.guids == first
    assert again.credits_held == held.credits_held > 0
    row = await order_row(engine, order_id)
    assert (row.status, row.target_guid, row.set_guid) == ("held", first.target_guid, first.set_guid)
    assert status_sequence(await events_of(engine, order_id)) == ["held"]
    assert [e.kind for e in await ledger_entries(engine, order_id)].count("hold") == 1


async def test_settle_and_finalize_after_a_crash_between_its_parts_moves_credits_once(tmp_path, database_url, engine):
    settings, customer, order_id = await _order(tmp_path, database_url, engine)
    sessionmaker = make_sessionmaker(engine)
    ledger = LedgerActivities(Ledger(engine), sessionmaker, settings)
    await ActivityEnvironment().run(ledger.price_and_hold, HoldRequest(order_id=order_id, held=True))
    # The first attempt settled, then its worker died before the finalize.
    first = await settle_order(ledger.ledger, sessionmaker, settings,
                               SettleRequest(order_id=order_id, outcome=SettlementOutcome.expired, reason="window ended"),
                               actor=ACTOR)
    request = CloseOrderRequest(order_id=order_id, outcome=SettlementOutcome.expired, reason="window ended",
                                status=OrderStatus.EXPIRED)
    closed = await ActivityEnvironment().run(ledger.settle_and_finalize, request)
    replayed = await ActivityEnvironment().run(ledger.settle_and_finalize, request)

    assert closed.settled.released == first.released == replayed.settled.released == closed.settled.held > 0
    assert closed.report == replayed.report and closed.report.status is OrderStatus.EXPIRED
    kinds = [e.kind for e in await ledger_entries(engine, order_id)]
    assert kinds.count("hold") == 1 and len(kinds) == 2, kinds  # the hold and one release
    assert status_sequence(await events_of(engine, order_id)) == ["held", "expired"]
    row = await order_row(engine, order_id)
    assert (row.status, row.credits_released, row.credits_captured) == ("expired", first.released, 0)


async def test_a_retried_close_writes_settling_and_the_abort_once(tmp_path, database_url, engine):
    sim = await start_sim(tmp_path)
    settings = order_settings(sim, database_url, tmp_path, sweep_wait_for_end=0.0)
    pool = pool_from_settings(settings.voyager)
    await pool.start(strict=False)
    try:
        customer = await create_customer(engine, 100)
        order_id = await create_order(engine, customer, SHOTS)
        sessionmaker = make_sessionmaker(engine)
        ledger = LedgerActivities(Ledger(engine), sessionmaker, settings)
        held = await ActivityEnvironment().run(ledger.price_and_hold, HoldRequest(
            order_id=order_id, guids=_proposal(order_id, await _shot_ids(engine, order_id)), held=True))
        assert held.guids is not None
        ingest = IngestActivities(RoboTarget(pool), sessionmaker, settings)
        request = CloseTargetRequest(
            order_id=order_id, target_guid=held.guids.target_guid, reason="aborted by alice: changed my mind",
            abort=AbortRecord(order_id=order_id, requested_by="alice", reason="changed my mind", role=AbortRole.CUSTOMER))
        closed = await ActivityEnvironment().run(ingest.close_target, request)
        # A retry, with another abort's record: the first one stays.
        retried = await ActivityEnvironment().run(ingest.close_target, request.model_copy(update={
            "abort": AbortRecord(order_id=order_id, requested_by="bob", reason="later", role=AbortRole.SUPPORT)}))
    finally:
        await pool.close()
        await sim.stop()

    # The target never reached Voyager: the stop reports the refusals instead of raising.
    assert not closed.stopped.disabled and "disable" in closed.stopped.detail
    assert closed.swept is not None and retried.swept is not None and retried.swept.frames_ingested == 0
    row = await order_row(engine, order_id)
    assert (row.status, row.status_reason) == ("settling", "aborted by alice: changed my mind")
    assert (row.aborted_by, row.abort_reason, row.abort_role) == ("alice", "changed my mind", "customer")
    assert status_sequence(await events_of(engine, order_id)) == ["held", "settling"]
