"""The order's hot activities in few statements (activities/order_sql.py), on the real database:
the load is one statement that records the workflow id once; a refused hold writes nothing; two
orders of one customer holding at once never take more than the account has; a status change is
checked and written once however many attempts run it at once; and the statements each activity
sends are counted, so a change that adds round trips shows here."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import sqlalchemy as sa
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ledger_ops import LedgerActivities
from activities.order_sql import move_status_now, one_statement
from activities.order_store import OrderStoreActivities
from bench._sql_count import count_sql
from billing.ledger import Ledger
from core.database import make_sessionmaker
from models.billing import SettlementOutcome
from models.orders import CloseOrderRequest, HoldRequest, OrderRef, OrderStatus
from models.temporal_contract import ERR_INSUFFICIENT_CREDITS, ERR_INVALID_ORDER, ERR_ORDER_NOT_FOUND
from tests.workflows.support import create_customer, create_order, events_of, ledger_entries, order_row, status_sequence
from tests.workflows.test_merged_steps import SHOTS, _order, _proposal, _shot_ids


def _env(workflow_id: str) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=workflow_id)
    return env


async def test_load_order_is_one_statement_and_records_the_workflow_id_once(tmp_path, database_url, engine):
    settings, _customer, order_id = await _order(tmp_path, database_url, engine)
    store = OrderStoreActivities(make_sessionmaker(engine), settings)
    with count_sql(engine) as counted:
        snapshot = await _env(f"order-{order_id}").run(store.load_order, OrderRef(order_id=order_id))
    again = await _env("another-run").run(store.load_order, OrderRef(order_id=order_id))

    assert (counted.statements, counted.transactions) == (1, 0)
    assert [(s.filter, s.exposure, s.quantity, s.position) for s in snapshot.shots] == [
        ("L", 60.0, 2, 0), ("R", 60.0, 1, 1)]
    assert snapshot == again and snapshot.status is OrderStatus.PENDING and snapshot.panels == []
    assert (await order_row(engine, order_id)).workflow_id == f"order-{order_id}"


async def test_an_order_without_shots_is_refused_and_records_no_workflow_id(tmp_path, database_url, engine):
    settings, _customer, order_id = await _order(tmp_path, database_url, engine)
    async with engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM order_shot WHERE order_id = :o"), {"o": order_id})
    store = OrderStoreActivities(make_sessionmaker(engine), settings)
    with pytest.raises(ApplicationError) as refused:
        await _env(f"order-{order_id}").run(store.load_order, OrderRef(order_id=order_id))
    with pytest.raises(ApplicationError) as missing:
        await _env("order-0").run(store.load_order, OrderRef(order_id=2_000_000_000))

    assert refused.value.type == ERR_INVALID_ORDER and missing.value.type == ERR_ORDER_NOT_FOUND
    assert (await order_row(engine, order_id)).workflow_id is None


async def test_a_hold_is_five_statements_in_one_transaction_and_a_settle_and_finalize_six_in_two(
        tmp_path, database_url, engine):
    settings, _customer, order_id = await _order(tmp_path, database_url, engine)
    ledger = LedgerActivities(Ledger(engine), make_sessionmaker(engine), settings)
    proposal = _proposal(order_id, await _shot_ids(engine, order_id))
    with count_sql(engine) as hold:
        held = await ActivityEnvironment().run(ledger.price_and_hold, HoldRequest(
            order_id=order_id, guids=proposal, held=True))
    with count_sql(engine) as settle:
        closed = await ActivityEnvironment().run(ledger.settle_and_finalize, CloseOrderRequest(
            order_id=order_id, outcome=SettlementOutcome.expired, reason="window ended", status=OrderStatus.EXPIRED))

    # Hold: the read, the ledger's one statement, then lock, progress and write in one transaction.
    assert (hold.statements, hold.transactions) == (5, 1)
    # Settle: lock with the hold read, progress; the ledger's release; lock, report read and write.
    assert (settle.statements, settle.transactions) == (6, 2)
    row = await order_row(engine, order_id)
    assert (row.status, row.cost, row.credits_held, row.credits_released) == (
        "expired", held.cost, held.credits_held, closed.settled.released)
    assert (row.shots_total, row.requested_integration_seconds) == (3, 180.0)
    assert row.report == closed.report.model_dump(mode="json") and closed.report.requested_integration_minutes == 3.0
    assert status_sequence(await events_of(engine, order_id)) == ["held", "expired"]


async def test_a_refused_hold_writes_nothing_on_the_order(engine, tmp_path, database_url):
    settings, _customer, _ = await _order(tmp_path, database_url, engine)
    poor = await create_customer(engine, 0)
    order_id = await create_order(engine, poor, SHOTS)
    ledger = LedgerActivities(Ledger(engine), make_sessionmaker(engine), settings)
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(ledger.price_and_hold, HoldRequest(
            order_id=order_id, guids=_proposal(order_id, await _shot_ids(engine, order_id)), held=True))

    assert refused.value.type == ERR_INSUFFICIENT_CREDITS
    assert refused.value.details[0]["available"] == 0 and refused.value.details[0]["shortfall"] > 0
    row = await order_row(engine, order_id)
    assert (row.status, row.cost, row.credits_held, row.set_guid, row.target_guid) == ("pending", 0, 0, None, None)
    assert await events_of(engine, order_id) == [] and await ledger_entries(engine, order_id) == []
    async with engine.connect() as conn:
        assert (await conn.execute(sa.text(
            "SELECT count(*) FROM order_shot WHERE order_id = :o AND shot_guid IS NOT NULL"), {"o": order_id})).scalar() == 0


async def test_two_orders_of_one_customer_holding_at_once_take_no_more_than_the_account_has(
        engine, tmp_path, database_url):
    settings, _customer, _ = await _order(tmp_path, database_url, engine)
    ledger = LedgerActivities(Ledger(engine), make_sessionmaker(engine), settings)
    # Price one order first to fund the customer with exactly one order's credits.
    probe = await create_order(engine, await create_customer(engine, 100), SHOTS)
    cost = (await ActivityEnvironment().run(ledger.price_and_hold, HoldRequest(order_id=probe))).cost
    customer = await create_customer(engine, cost)
    orders = [await create_order(engine, customer, SHOTS) for _ in range(2)]

    proposals = [_proposal(o, await _shot_ids(engine, o)) for o in orders]
    results = await asyncio.gather(*(ActivityEnvironment().run(ledger.price_and_hold, HoldRequest(
        order_id=o, guids=p, held=True)) for o, p in zip(orders, proposals)), return_exceptions=True)

    refused = [r for r in results if isinstance(r, ApplicationError)]
    assert len(refused) == 1 and refused[0].type == ERR_INSUFFICIENT_CREDITS, results
    rows = {o: await order_row(engine, o) for o in orders}
    assert sorted(r.status for r in rows.values()) == ["held", "pending"]
    assert sum(r.credits_held for r in rows.values()) == cost
    assert (await Ledger(engine).balances(customer)).available == 0


async def test_a_status_change_run_by_several_attempts_at_once_is_written_once(engine, tmp_path, database_url):
    settings, _customer, order_id = await _order(tmp_path, database_url, engine)
    ledger = LedgerActivities(Ledger(engine), make_sessionmaker(engine), settings)
    await ActivityEnvironment().run(ledger.price_and_hold, HoldRequest(order_id=order_id, held=True))
    sessionmaker = make_sessionmaker(engine)

    async def submit() -> bool:
        async with one_statement(sessionmaker) as conn:
            return await move_status_now(conn, order_id, OrderStatus.SUBMITTED, "",
                                         only_from=(OrderStatus.HELD.value,))

    moved = await asyncio.gather(*(submit() for _ in range(6)))
    async with one_statement(sessionmaker) as conn:
        # Not from ``held`` any more, then a final order: nothing moves.
        again = await move_status_now(conn, order_id, OrderStatus.SUBMITTED, "", only_from=(OrderStatus.HELD.value,))
        await conn.execute(sa.text("UPDATE \"order\" SET status = 'completed' WHERE id = :o"), {"o": order_id})
        after_final = await move_status_now(conn, order_id, OrderStatus.SETTLING, "late")
        with pytest.raises(ApplicationError) as missing:
            await move_status_now(conn, 2_000_000_000, OrderStatus.SETTLING, "")

    assert sorted(moved) == [False] * 5 + [True] and not again and not after_final
    assert missing.value.type == ERR_ORDER_NOT_FOUND
    assert status_sequence(await events_of(engine, order_id)) == ["held", "submitted"]
    assert (await order_row(engine, order_id)).status == "completed"
