"""Orders ride out real outages: the database stopped, Voyager down, a watch that keeps failing, a
second session the same night. Every order ends terminal, its hold resolved once, no frame twice.

The database outages stop and start a PostgreSQL server of this module's own (the session's shared
one stays up for the other suites); the workers and the assertions use it through the
``database_url``/``engine`` fixtures overridden below. Voyager outages crash and restart the
simulator on its port.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType

from activities.link_wait import LINK_WAIT_PREFIX
from core.database import make_engine
from core.embedded_postgres import EmbeddedPostgres
from core.migrate import upgrade_in_thread
from core.processes import free_port
from models.orders import OrderStatus
from tests.e2e.test_order_faults import _assert_frames_once, _assert_settled_once, _attempts
from tests.workflows.support import (
    DAYTIME,
    NIGHT_START,
    create_customer,
    create_order,
    events_of,
    frames_of,
    ledger_entries,
    order_row,
    save_history,
    status_sequence,
    wait_for,
)
from voyager import wire
from worker import monitor_workflow_id
from workflows._options import MONITOR_WATCH

pytestmark = pytest.mark.timeout(240)

#: Seconds PostgreSQL is down mid-session (docs/order-workflow.md, Failure handling): twice the
#: monitor's watch heartbeat timeout, so a watch that stopped heartbeating while the database is away
#: would be timed out and retried within it. Nothing else waits meanwhile: the session ends in the
#: first seconds, the order has no activity pending, and it completes within a second or two of
#: the restart (measured with a 3 min outage: no step's timing differs past this).
DB_OUTAGE_MID_SESSION = 2 * MONITOR_WATCH["heartbeat_timeout"].total_seconds()
L5 = [{"filter": "L", "exposure": 60.0, "quantity": 5}]
#: Attempts the old options allowed: a database step 10, the submit 8. The tests go past them.
OLD_DB_ATTEMPTS, OLD_SUBMIT_ATTEMPTS = 10, 8


@pytest.fixture(scope="module")
def outage_pg() -> Iterator[EmbeddedPostgres]:
    # A world-traversable directory, as tests/conftest.py uses (initdb may run as another user).
    with tempfile.TemporaryDirectory(prefix="stellar-outage-pg-") as tmp:
        pg = EmbeddedPostgres(Path(tmp), free_port(), database="stellar_outage")
        pg.start()
        try:
            upgrade_in_thread(pg.url())
            yield pg
        finally:
            pg.stop()


@pytest.fixture(scope="module")
def database_url(outage_pg: EmbeddedPostgres) -> str:
    return outage_pg.url()


@pytest_asyncio.fixture(scope="module")
async def engine(database_url: str):
    eng = make_engine(database_url)
    # Workflow ids are order-<id> on Temporal servers shared with the other suites: start this
    # database's order ids far from the shared database's.
    async with eng.begin() as conn:
        await conn.execute(sa.text(
            "SELECT setval(pg_get_serial_sequence('\"order\"', 'id'), :n)"), {"n": 10**9 + secrets.randbelow(10**8)})
    yield eng
    await eng.dispose()


async def _pending_attempt(handle, activity_type: str) -> int:
    """Attempt number of the activity of that type pending now (0 when none)."""
    pending = (await handle.describe()).raw_description.pending_activities
    return max((p.attempt for p in pending if p.activity_type.name == activity_type), default=0)


async def _failed_attempts(handle, activity_type: str) -> int:
    """Activities of that type that failed for good (each after its retry policy gave up)."""
    history = await handle.fetch_history()
    scheduled = {e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
                 for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED}
    return sum(1 for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
               and scheduled.get(e.activity_task_failed_event_attributes.scheduled_event_id) == activity_type)


async def test_database_down_when_the_order_starts_delays_it_past_the_old_retry_budget(
        time_skipping_env, order_stack, engine, outage_pg):
    stack = await order_stack(time_skipping_env, sim={"speed": 0.0, "start_time": DAYTIME}, start_monitor=False)
    customer = await create_customer(engine, credits=10)
    order_id = await create_order(engine, customer, L5,
                                  date_end=await time_skipping_env.get_current_time() + timedelta(days=3))
    await asyncio.to_thread(outage_pg.stop)
    try:
        handle = await stack.start(order_id, customer)

        async def past_old_budget() -> bool:
            return await _pending_attempt(handle, "order_store.load_order") > OLD_DB_ATTEMPTS

        # Unlocked, the test server skips the retry back-offs (30 s each at the cap).
        async with time_skipping_env.time_skipping_unlocked():
            await wait_for(past_old_budget, 120, "load_order retrying past the old budget")
    finally:
        await asyncio.to_thread(outage_pg.start)

    result = await stack.result(handle)  # then waits for its window to end (daytime: nothing observed)

    assert result.status == OrderStatus.EXPIRED, result.reason
    assert (result.credits_held, result.credits_captured, result.credits_released) == (1, 0, 1)
    assert sorted(e.kind for e in await ledger_entries(engine, order_id)) == ["hold", "release"]
    assert status_sequence(await events_of(engine, order_id)) == ["held", "submitted", "settling", "expired"]


@pytest.mark.timeout(480)
async def test_database_down_mid_session_delays_the_order_and_it_completes(temporal_env, order_stack, engine, outage_pg):
    stack = await order_stack(temporal_env, sim={"speed": 150.0})
    customer = await create_customer(engine, credits=20)
    order_id = await create_order(engine, customer, [{"filter": "R", "exposure": 120.0, "quantity": 12}])
    handle = await stack.start(order_id, customer)

    async def two_frames() -> bool:
        return len(await frames_of(engine, order_id)) >= 2

    # The simulator starts at 16:00: about 50 s of daytime (at 150x) before the session starts.
    await wait_for(two_frames, 180, "two frames before the outage")
    monitor = stack.client.get_workflow_handle(monitor_workflow_id(stack.settings.orders.telescope))
    monitor_run = (await monitor.describe()).run_id
    await asyncio.to_thread(outage_pg.stop)
    try:
        # Voyager keeps imaging (the session ends during the outage); the monitor's polls fail.
        await asyncio.sleep(DB_OUTAGE_MID_SESSION)
    finally:
        await asyncio.to_thread(outage_pg.start)
    result = await asyncio.wait_for(stack.result(handle), 150)
    # The monitor waited the outage out inside its watch: same run, first attempt (no heartbeat
    # timeout, no failure; monitor_run_for, 600 s, is past this test's timeout).
    described = await monitor.describe()
    assert described.run_id == monitor_run
    assert [p.attempt for p in described.raw_description.pending_activities] == [1]

    assert result.status == OrderStatus.COMPLETED, result.reason
    frames = await _assert_frames_once(stack, engine, order_id)
    assert sum(f.accepted for f in frames) == 12
    assert await _attempts(handle, "ingest.watch_session") == []  # the monitor waited the outage out, closed the night
    await _assert_settled_once(engine, order_id)
    assert result.credits_captured == result.credits_held


async def test_voyager_down_past_the_old_submit_budget_is_a_wait_that_says_why(time_skipping_env, order_stack, engine):
    stack = await order_stack(time_skipping_env, sim={"speed": 0.0, "start_time": DAYTIME}, start_monitor=False,
                              pool_acquire_timeout=1.0)
    customer = await create_customer(engine, credits=10)
    order_id = await create_order(engine, customer, L5,
                                  date_end=await time_skipping_env.get_current_time() + timedelta(days=3))
    await stack.sim.crash()
    try:
        handle = await stack.start(order_id, customer)

        async def past_old_budget() -> bool:
            return await _pending_attempt(handle, "voyager.submit_target") > OLD_SUBMIT_ATTEMPTS

        async with time_skipping_env.time_skipping_unlocked():
            await wait_for(past_old_budget, 120, "the submit retrying past the old budget")
        waiting = await order_row(engine, order_id)
    finally:
        await stack.sim.restart()

    result = await stack.result(handle)

    assert waiting.status == "held" and waiting.status_reason.startswith(LINK_WAIT_PREFIX), waiting.status_reason
    # The link came back: the order was submitted and then waited for its window like any other.
    assert result.status == OrderStatus.EXPIRED, result.reason
    row = await order_row(engine, order_id)
    assert row.target_guid in stack.sim.store.targets
    assert stack.sim.store.targets[row.target_guid][wire.TARGET_FIELDS["status"]] == 1  # disabled at the end
    assert status_sequence(await events_of(engine, order_id)) == ["held", "submitted", "settling", "expired"]
    assert sorted(e.kind for e in await ledger_entries(engine, order_id)) == ["hold", "release"]
    await save_history(handle, "order_voyager_down_at_submit")


async def test_watch_failing_three_times_then_recovering_bills_every_frame_once(temporal_env, order_stack, engine):
    stack = await order_stack(temporal_env, sim={"speed": 150.0})
    customer = await create_customer(engine, credits=20)
    order_id = await create_order(engine, customer, [{"filter": "B", "exposure": 120.0, "quantity": 10}])
    stack.sim.faults.error_methods.add(wire.M_GET_SHOTS_DONE)  # every watch attempt is refused
    handle = await stack.start(order_id, customer)

    async def three_failed_watches() -> bool:
        return await _failed_attempts(handle, "ingest.watch_session") >= 3

    await wait_for(three_failed_watches, 120, "three failed watches")
    stack.sim.faults.error_methods.discard(wire.M_GET_SHOTS_DONE)
    result = await asyncio.wait_for(stack.result(handle), 150)

    assert result.status == OrderStatus.COMPLETED, result.reason
    frames = await _assert_frames_once(stack, engine, order_id)
    assert sum(f.accepted for f in frames) == 10
    await _assert_settled_once(engine, order_id)
    assert result.credits_captured == result.credits_held
    await save_history(handle, "order_watch_failed_three_times")


async def test_one_night_order_ingests_a_second_session_of_its_night(temporal_env, order_stack, engine):
    stack = await order_stack(temporal_env, sim={"speed": 200.0})
    customer = await create_customer(engine, credits=20)
    # Stardust is one night only (IsRepeat false): Voyager may come back the same night, not later.
    order_id = await create_order(engine, customer, [{"filter": "Ha", "exposure": 120.0, "quantity": 12}],
                                  plan="stardust")
    handle = await stack.start(order_id, customer, plan="stardust")

    async def two_frames() -> bool:
        return len(await frames_of(engine, order_id)) >= 2

    await wait_for(two_frames, 90, "two frames in the first session")
    row = await order_row(engine, order_id)

    def sessions() -> list[dict]:
        return [s for s in stack.sim.store.sessions.values() if s["refguidtarget"] == row.target_guid]

    async def first_session_ended() -> bool:
        return any(s["result"] == wire.SESSION_ERROR for s in sessions())

    # The session stops early (the simulator's clouds last until dawn, so an error stands in for a
    # passing cloud); the night goes on and Voyager starts the target again.
    stack.sim.faults.fail_sessions = True
    await wait_for(first_session_ended, 60, "the first session ending early")
    stack.sim.faults.fail_sessions = False
    stack.sim.poke()
    result = await asyncio.wait_for(stack.result(handle), 150)

    assert len(sessions()) >= 2, sessions()
    frames = await _assert_frames_once(stack, engine, order_id)
    assert len({f.session_guid for f in frames}) >= 2  # frames of both sessions were ingested
    assert result.status == OrderStatus.COMPLETED, result.reason
    assert sum(f.accepted for f in frames) == 12
    await _assert_settled_once(engine, order_id)
    await save_history(handle, "order_one_night_two_sessions")


async def test_order_without_shots_fails_through_the_guard_with_nothing_held(time_skipping_env, order_stack, engine):
    stack = await order_stack(time_skipping_env, sim={"speed": 0.0, "start_time": DAYTIME}, start_monitor=False)
    customer = await create_customer(engine, credits=10)
    order_id = await create_order(engine, customer, [])  # load_order refuses it (InvalidOrder)

    result = await stack.result(await stack.start(order_id, customer))

    assert result.status == OrderStatus.FAILED and "has no shots" in result.reason
    row = await order_row(engine, order_id)
    assert (row.status, row.status_reason) == ("failed", result.reason)
    assert await ledger_entries(engine, order_id) == [] and stack.sim.store.targets == {}


async def test_workflow_cancelled_from_temporal_settles_as_a_support_abort(time_skipping_env, order_stack, engine):
    stack = await order_stack(time_skipping_env, sim={"speed": 0.0, "start_time": DAYTIME}, start_monitor=False)
    customer = await create_customer(engine, credits=10)
    order_id = await create_order(engine, customer, L5)
    handle = await stack.start(order_id, customer)

    async def submitted() -> bool:
        return (await order_row(engine, order_id)).status == "submitted"

    await wait_for(submitted, 30, "the order submitted")
    await handle.cancel()
    result = await stack.result(handle)

    assert result.status == OrderStatus.ABORTED and "cancelled" in result.reason
    assert (result.credits_captured, result.credits_released) == (0, result.credits_held)
    row = await order_row(engine, order_id)
    assert row.aborted_by == "support (cancel)"
    assert stack.sim.store.targets[row.target_guid][wire.TARGET_FIELDS["status"]] == 1
    assert sorted(e.kind for e in await ledger_entries(engine, order_id)) == ["hold", "release"]


async def test_session_that_ended_during_a_monitor_outage_and_left_its_run_window_is_caught_up(
        temporal_env, order_stack, engine, outage_pg):
    # The simulator's clock stands still (speed 0): the test moves it through the night itself.
    stack = await order_stack(temporal_env, sim={"speed": 0.0}, monitor_run_days=2)
    customer = await create_customer(engine, credits=10)
    order_id = await create_order(engine, customer, L5)
    handle = await stack.start(order_id, customer)

    async def submitted() -> bool:
        return (await order_row(engine, order_id)).status == "submitted"

    await wait_for(submitted, 30, "the order submitted")
    target_guid = (await order_row(engine, order_id)).target_guid
    await asyncio.to_thread(outage_pg.stop)  # the monitor cannot map sessions to orders meanwhile
    try:
        # The night runs and ends while the monitor fails, then Voyager idles four days: the run
        # is older than the regular poll's window (monitor_run_days = 2) when the database is back.
        await stack.sim.run_until(NIGHT_START + timedelta(days=4))
        sessions = [s for s in stack.sim.store.sessions.values() if s["refguidtarget"] == target_guid]
        assert sessions and all(s["result"] == wire.SESSION_OK for s in sessions), sessions
        in_window = {r[wire.RUN_ITEM["guid"]] for r in stack.sim.store.run_items("", 2, stack.sim.clock.now())}
        assert not in_window & {s["refguidrun"] for s in sessions}
        await asyncio.sleep(5)  # ten failed polls
    finally:
        await asyncio.to_thread(outage_pg.start)

    result = await asyncio.wait_for(stack.result(handle), 90)

    assert result.status == OrderStatus.COMPLETED, result.reason
    frames = await _assert_frames_once(stack, engine, order_id)
    assert sum(f.accepted for f in frames) == 5
    await _assert_settled_once(engine, order_id)
    assert result.credits_captured == result.credits_held
