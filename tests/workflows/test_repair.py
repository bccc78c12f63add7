"""The repair sweep (``stellar repair``, ``RepairWorkflow`` on the ``order-repair`` Schedule) on the
Temporal dev server, a real Voyager simulator and a PostgreSQL database of its own per test (the
sweep looks at every order, so other tests' orders must not be in its database).

The command runs as operators run it: a child process configured through ``STELLAR_*`` variables.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from billing.ledger import Ledger
from core.database import make_engine
from core.processes import free_port
from models.db import CreditHold, LedgerEntry, OrderEvent
from models.orders import OrderStatus
from models.repair import RepairInput, RepairReport
from tests.patience import patience
from tests.scratch_db import head_template
from tests.workflows.support import DAYTIME, create_customer, create_order, order_row, wait_for
from voyager import wire
from worker import open_worker
from workflows.repair import RepairWorkflow
from core.schedules import REPAIR_SCHEDULE_ID

#: A child process imports the whole app: under load one ``stellar repair`` took over a minute.
CLI_TIMEOUT = patience(120)
pytestmark = pytest.mark.timeout(patience(240))
ROOT = Path(__file__).resolve().parents[2]
L5 = [{"filter": "L", "exposure": 60.0, "quantity": 5}]
TARGET_STATUS = wire.TARGET_FIELDS["status"]  # simulator store: 0 enabled, 1 disabled


# --------------------------------------------------------------------------- a database per test


async def _template(database_url: str) -> str:
    """The session's migrated database nobody connects to, copied for each test (tests/scratch_db.py)."""
    engine = make_engine(database_url, pool_size=1)
    try:
        return await head_template(engine, database_url)
    finally:
        await engine.dispose()


async def _admin(url: str, statement: str) -> None:
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(sa.text(statement))
    finally:
        await engine.dispose()


@pytest_asyncio.fixture
async def database_url(database_url: str) -> AsyncIterator[str]:  # type: ignore[override]
    """This test's own database (overrides the session's for order_stack and engine)."""
    name = f"repair_{uuid.uuid4().hex[:10]}"
    await _admin(database_url, f'CREATE DATABASE "{name}" TEMPLATE "{await _template(database_url)}"')
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    # Workflow ids are order-<id> on the session's one Temporal server: ids unique across tests.
    await _admin(url, f"ALTER SEQUENCE order_id_seq RESTART WITH {random.randint(10**8, 10**9)}")
    yield url


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator:  # type: ignore[override]
    eng = make_engine(database_url)
    yield eng
    await eng.dispose()


# --------------------------------------------------------------------------- helpers


async def stellar_repair(stack, *args: str, database_url: str | None = None) -> tuple[int, str]:
    """Run ``stellar repair`` against the stack's database, Temporal, simulator; (exit code, output)."""
    s = stack.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("STELLAR_")}
    env.update({
        "STELLAR_ENV": "test", "STELLAR_LOG_LEVEL": "WARNING", "STELLAR_LOG_JSON": "true",
        "STELLAR_DATABASE__URL": database_url or s.database.url,
        "STELLAR_TEMPORAL__ADDRESS": stack.client.service_client.config.target_host,
        "STELLAR_TEMPORAL__TASK_QUEUE": stack.task_queue,
        "STELLAR_VOYAGER__HOST": "127.0.0.1", "STELLAR_VOYAGER__PORT": str(stack.sim.port),
        "STELLAR_VOYAGER__USERNAME": s.voyager.username or "",
        "STELLAR_VOYAGER__PASSWORD": s.voyager.password.get_secret_value() if s.voyager.password else "",
        "STELLAR_VOYAGER__MAC_KEY": s.voyager.mac_key.get_secret_value() if s.voyager.mac_key else "",
        "STELLAR_VOYAGER__MAC_WORDS": ",".join(stack.sim.config.mac_words),
        "STELLAR_VOYAGER__PROFILE_NAME": s.voyager.profile_name,
        "STELLAR_REPAIR__GRACE_SECONDS": "0", "COLUMNS": "250",
    })
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stellar_cli", "repair", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), CLI_TIMEOUT)
    except TimeoutError:
        proc.kill()  # not left running into the next test
        await proc.wait()
        raise AssertionError(f"stellar repair {' '.join(args)} still running after {CLI_TIMEOUT:g} s") from None
    return proc.returncode or 0, out.decode(errors="replace")


async def money_and_events(engine, order_id: int) -> tuple[list, list, list]:
    """(ledger entries, hold rows, order events) of the order: what a repair may change."""
    async with engine.connect() as conn:
        entries = (await conn.execute(sa.select(LedgerEntry.__table__).where(
            LedgerEntry.__table__.c.reference_id == str(order_id)).order_by(LedgerEntry.__table__.c.id))).all()
        holds = (await conn.execute(sa.select(CreditHold.__table__).where(
            CreditHold.__table__.c.order_id == order_id))).all()
        events = (await conn.execute(sa.select(OrderEvent.__table__).where(
            OrderEvent.__table__.c.order_id == order_id).order_by(OrderEvent.__table__.c.id))).all()
    return list(entries), list(holds), list(events)


async def submitted_order(stack, engine) -> tuple[int, object]:
    """A customer with 10 credits and an order held and submitted to the simulator (daytime: it waits)."""
    customer = await create_customer(engine, credits=10)
    order_id = await create_order(engine, customer, L5)
    handle = await stack.start(order_id, customer)

    async def submitted() -> bool:
        return (await order_row(engine, order_id)).status == OrderStatus.SUBMITTED.value

    await wait_for(submitted, 60, "the order to be submitted")
    return order_id, handle


# --------------------------------------------------------------------------- tests


async def test_repair_on_a_healthy_system_reports_nothing_to_do(temporal_env, order_stack, engine):
    stack = await order_stack(temporal_env, sim={"speed": 0.0, "start_time": DAYTIME}, start_monitor=False)
    order_id, _ = await submitted_order(stack, engine)  # its workflow runs: the sweep leaves it alone
    before = await money_and_events(engine, order_id)

    code, out = await stellar_repair(stack)

    assert code == 0, out
    assert "nothing to repair: 1 order(s) checked, Voyager ok" in out
    assert await money_and_events(engine, order_id) == before


async def test_workflow_terminated_from_the_ui_is_repaired_once(temporal_env, order_stack, engine):
    stack = await order_stack(temporal_env, sim={"speed": 0.0, "start_time": DAYTIME}, start_monitor=False)
    order_id, handle = await submitted_order(stack, engine)
    guid = (await order_row(engine, order_id)).target_guid
    assert stack.sim.store.target(guid)[TARGET_STATUS] == 0
    await handle.terminate("operator: terminated from the Temporal UI")
    before = await money_and_events(engine, order_id)

    code, out = await stellar_repair(stack, "--dry-run")  # reports, changes nothing
    assert code == 0, out
    assert "dry run" in out and "submitted order without a running workflow" in out and "would do" in out
    assert await money_and_events(engine, order_id) == before
    assert (await order_row(engine, order_id)).status == "submitted"

    code, out = await stellar_repair(stack)
    assert code == 0, out
    assert "closed:terminated" in out and "done" in out
    row = await order_row(engine, order_id)
    assert row.status == OrderStatus.FAILED.value  # nothing was observed: the hold goes back
    assert row.status_reason.startswith("repair: submitted order without a running workflow")
    entries, holds, events = await money_and_events(engine, order_id)
    assert [h.status for h in holds] == ["released"]
    assert [(e.kind, e.actor) for e in entries if e.kind != "hold"] == [("release", "repair")]
    assert entries[-1].reason.startswith("repair: ")
    repairs = [e for e in events if e.kind == "repair"]
    assert len(repairs) == 1 and repairs[0].payload["actor"] == "repair"
    assert repairs[0].payload["reason"].startswith("repair: submitted order without a running workflow")
    assert stack.sim.store.target(guid)[TARGET_STATUS] == 1  # disabled: Voyager will not image it

    after_first = await money_and_events(engine, order_id)
    code, out = await stellar_repair(stack)  # a second run changes nothing
    assert code == 0, out
    assert "nothing to repair" in out
    assert await money_and_events(engine, order_id) == after_first


async def test_open_hold_and_enabled_target_of_terminal_orders_are_mended(temporal_env, order_stack, engine):
    stack = await order_stack(temporal_env, sim={"speed": 0.0, "start_time": DAYTIME}, start_monitor=False)
    ledger = Ledger(engine)
    # A: the database says failed and released, but the target stayed enabled (Voyager was away).
    order_a, handle = await submitted_order(stack, engine)
    await handle.terminate("test: the end of this workflow is written below")
    await ledger.release(order_a, actor="test", reason="test")
    # B: expired, but the hold was never resolved.
    customer = await create_customer(engine, credits=10)
    order_b = await create_order(engine, customer, L5)
    await ledger.hold(customer, order_b, 3, actor="test")
    async with engine.begin() as conn:
        for order_id, status in ((order_a, "failed"), (order_b, "expired")):
            await conn.execute(sa.text('UPDATE "order" SET status = :s WHERE id = :i'), {"s": status, "i": order_id})
    guid = (await order_row(engine, order_a)).target_guid

    code, out = await stellar_repair(stack)
    assert code == 0, out
    assert "hold open on a terminal order (expired)" in out
    assert "target still enabled in Voyager for a terminal order (failed)" in out
    assert stack.sim.store.target(guid)[TARGET_STATUS] == 1
    entries, holds, events = await money_and_events(engine, order_b)
    assert [(h.status, h.captured, h.released) for h in holds] == [("captured", 0, 3)]  # nothing delivered
    assert {(e.kind, e.actor) for e in entries} == {("hold", "test"), ("release", "repair")}
    assert [e.payload["action"] for e in events if e.kind == "repair"] == ["settle the hold by delivered frames"]
    assert (await order_row(engine, order_b)).status == "expired"
    code, out = await stellar_repair(stack)
    assert code == 0 and "nothing to repair" in out, out


async def test_order_stuck_pending_is_restarted_and_runs(temporal_env, order_stack, engine):
    stack = await order_stack(temporal_env, sim={"speed": 0.0, "start_time": DAYTIME}, start_monitor=False)
    customer = await create_customer(engine, credits=10)
    order_id = await create_order(engine, customer, L5)  # no workflow: as if the start failed
    stack.workflow_ids.append(f"order-{order_id}")

    code, out = await stellar_repair(stack)
    assert code == 0, out
    assert "pending order without a running workflow" in out and "restart the workflow" in out

    async def submitted() -> bool:
        return (await order_row(engine, order_id)).status == OrderStatus.SUBMITTED.value

    await wait_for(submitted, 60, "the restarted order to be submitted")
    code, out = await stellar_repair(stack)
    assert code == 0 and "nothing to repair" in out, out


async def test_the_repair_schedule_runs_the_sweep_on_the_worker(temporal_env, order_stack, engine):
    stack = await order_stack(temporal_env, sim={"speed": 0.0, "start_time": DAYTIME}, start_monitor=False,
                              start_worker=False)
    settings = stack.settings.model_copy(update={"repair": stack.settings.repair.model_copy(
        update={"every_minutes": 10, "grace_seconds": 0.0})})
    stack.settings = settings
    await stack.start_worker(start_monitor=False, start_reconciliation=False, start_repair=True)
    schedule = stack.client.get_schedule_handle(REPAIR_SCHEDULE_ID)
    try:
        desc = await schedule.describe()
        assert desc.schedule.spec.intervals[0].every == timedelta(minutes=10)
        order_id, handle = await submitted_order(stack, engine)
        await handle.terminate("operator")
        # The schedule's own action (same workflow and input), run now on this test's queue.
        report: RepairReport = await stack.client.execute_workflow(
            RepairWorkflow.run, RepairInput(), id=f"repair-{uuid.uuid4().hex[:8]}", task_queue=stack.task_queue,
            result_type=RepairReport)
        assert [(i.order_id, i.done) for i in report.items] == [(order_id, True)]
        assert (await order_row(engine, order_id)).status == OrderStatus.FAILED.value
    finally:
        await schedule.delete()


async def test_bad_input_gives_a_clear_message_and_exit_code(temporal_env, order_stack, engine):
    stack = await order_stack(temporal_env, sim={"speed": 0.0, "start_time": DAYTIME}, start_monitor=False)
    code, out = await stellar_repair(stack, "--bogus")
    assert code == 2 and "No such option" in out, out

    customer = await create_customer(engine, credits=10)
    order_id = await create_order(engine, customer, L5)  # would be restarted, were the database there
    dead = make_url(stack.settings.database.url).set(port=free_port()).render_as_string(hide_password=False)
    code, out = await stellar_repair(stack, database_url=dead)
    assert code == 2, out
    assert "cannot reach the database" in out and "nothing was changed" in out
    assert (await order_row(engine, order_id)).status == "pending"
    assert (await money_and_events(engine, order_id))[2] == []


async def test_an_order_whose_workflow_ends_while_the_sweep_runs_is_left_alone(temporal_env, order_stack, engine):
    """The sweep lists the orders, then looks at each workflow: one that settled and ended its order
    in between (here: aborted, then done) needs no repair, although the list still says submitted."""
    from activities.repair import OrderRepair

    stack = await order_stack(temporal_env, sim={"speed": 0.0, "start_time": DAYTIME}, start_monitor=False)
    order_id, handle = await submitted_order(stack, engine)
    settings = stack.settings.model_copy(update={"repair": stack.settings.repair.model_copy(
        update={"grace_seconds": 0.0})})

    class WorkflowEndsMeanwhile(OrderRepair):
        async def _workflow_state(self, oid: int) -> str:
            if oid == order_id:  # the workflow's last steps land between the list and this look
                await handle.signal("abort", {"reason": "customer called", "requested_by": "support:test"})
                await asyncio.wait_for(handle.result(), 60)
            return await super()._workflow_state(oid)

    report = await WorkflowEndsMeanwhile(engine, stack.client, None, settings).run()

    assert report.items == [], report
    row = await order_row(engine, order_id)
    assert row.status == OrderStatus.ABORTED.value
    entries, holds, events = await money_and_events(engine, order_id)
    assert len(holds) == 1 and holds[0].status != "open"
    assert {e.actor for e in entries if e.kind != "hold"} == {"order-workflow"}  # settled by the workflow only
    assert [e for e in events if e.kind == "repair"] == []
