"""A session that starts and ends while its order is still ``held`` (Voyager ran the target before
the submit returned): the observatory monitor leaves the night for a later poll
(activities/monitor.py, "Status"), closes it once the submit wrote ``submitted``, and the order
decides on that one ``session_ended`` — each frame once, the hold settled once, no watch activity.
A ``session_ended`` that reaches the workflow while its submit still runs is kept and decided on
once the submit returns."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType

from activities.ingest import IngestActivities
from activities.progress import store_progress
from billing.settlement import credits_to_capture
from core.database import make_sessionmaker
from core.order_control import abort_order
from models.billing import SettlementOutcome
from core.voyager_clients import pool_from_settings
from models.db import VoyagerSession
from models.orders import AbortRole, OrderStatus, OrderStatusView, SessionSignal
from tests.e2e.test_order_faults import _assert_frames_once, _assert_settled_once, _attempts
from tests.workflows.support import (
    NIGHT_START,
    count_commands,
    create_customer,
    create_order,
    events_of,
    frames_of,
    ledger_entries,
    order_row,
    wait_for,
)
from voyager import wire
from voyager.robotarget import RoboTarget
from voyager.types import SessionInfo

pytestmark = pytest.mark.timeout(300)
#: M42 above 30° at the OHP (tests/workflows/support.py): the target runs as soon as it is added.
M42_UP = NIGHT_START + timedelta(hours=5)


async def _signals(handle, name: str) -> int:
    history = await handle.fetch_history()
    return sum(e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
               and e.workflow_execution_signaled_event_attributes.signal_name == name for e in history.events)


async def _held_order(stack, engine, quantity: int = 4):
    """An order whose submit's last command (its one shot line) took effect but whose result waits:
    Voyager runs the target while ``voyager.submit_target`` still runs, so the order stays ``held``.
    Returns (order id, handle, the target's sessions in the simulator as a callable) once held."""
    stack.sim.faults.held_results.add(wire.M_ADD_SHOT)
    customer = await create_customer(engine, credits=20)
    order_id = await create_order(engine, customer, [{"filter": "L", "exposure": 60.0, "quantity": quantity}])
    handle = await stack.start(order_id, customer)

    async def held() -> bool:
        return (await order_row(engine, order_id)).status == OrderStatus.HELD.value

    await wait_for(held, 60, "the order held")
    target = (await order_row(engine, order_id)).target_guid

    def sessions() -> list[dict]:
        return [s for s in stack.sim.store.sessions.values() if s["refguidtarget"] == target]

    return order_id, handle, sessions


async def _held_order_whose_session_ended(stack, engine):
    """:func:`_held_order`, returned once its session started and ended."""
    order_id, handle, sessions = await _held_order(stack, engine)

    async def session_ended() -> bool:
        return bool(sessions()) and all(s["result"] != wire.SESSION_RUNNING for s in sessions())

    await wait_for(session_ended, 120, "the session started and ended")
    return order_id, handle, sessions


async def _settled_on_the_one_session(stack, engine, order_id: int, handle, result, wanted: int = 4) -> None:
    """Completed on the monitor's progress: the submit in one attempt, no watch, each frame once,
    the hold captured for the frames and settled once."""
    assert result.status == OrderStatus.COMPLETED, result.reason
    assert await _attempts(handle, "voyager.submit_target") == [1]  # the session came within that one attempt
    assert await _attempts(handle, "ingest.watch_session") == []  # the night was closed outside the workflow
    frames = await _assert_frames_once(stack, engine, order_id)
    assert sum(f.accepted for f in frames) == wanted
    await _assert_settled_once(engine, order_id)
    assert result.credits_captured == result.cost and result.credits_captured + result.credits_released == result.credits_held


async def test_a_session_run_and_ended_before_the_submit_returned_is_closed_once_submitted(
        temporal_env, order_stack, engine):
    # Long enough a command timeout that the held AddShot is answered, not retried: one submit attempt.
    stack = await order_stack(temporal_env, sim={"speed": 150.0, "start_time": M42_UP}, command_timeout=120.0)
    commands = count_commands(stack.sim)
    order_id, handle, sessions = await _held_order_whose_session_ended(stack, engine)
    # Two full polls after the end: the monitor saw the session finished while the order was held.
    polls = commands[wire.M_GET_SESSIONS_BY_RUN]

    async def polled_twice() -> bool:
        return commands[wire.M_GET_SESSIONS_BY_RUN] >= polls + 2

    await wait_for(polled_twice, 30, "two monitor polls after the session ended")
    row = await order_row(engine, order_id)
    assert row.status == OrderStatus.HELD.value, row.status_reason
    assert await _signals(handle, "session_ended") == 0  # left for a later poll, not lost
    async with engine.connect() as conn:
        recorded = (await conn.execute(sa.select(VoyagerSession.result).where(
            VoyagerSession.order_id == order_id))).scalars().all()
    assert all(r == wire.SESSION_RUNNING for r in recorded)  # not recorded ended: it will be closed

    stack.sim.faults.release_results()  # the submit returns
    async with asyncio.timeout(120):
        result = await stack.result(handle)

    await _settled_on_the_one_session(stack, engine, order_id, handle, result)
    assert len(sessions()) == 1 and await _signals(handle, "session_ended") >= 1  # the monitor's close
    async with engine.connect() as conn:
        recorded = (await conn.execute(sa.select(VoyagerSession.result).where(
            VoyagerSession.order_id == order_id))).scalars().all()
    assert recorded == [sessions()[0]["result"]]  # recorded ended once signalled


async def test_a_session_ended_signal_that_comes_while_the_submit_runs_is_decided_once_it_returns(
        temporal_env, order_stack, engine):
    """The night closed as the monitor closes it (the session's frames ingested, the progress
    recomputed, ``session_ended`` with it) while the workflow still waits for its submit: the
    workflow keeps the signal and decides on it once the submit returns, with no watch."""
    stack = await order_stack(temporal_env, sim={"speed": 150.0, "start_time": M42_UP}, command_timeout=120.0,
                              start_monitor=False)  # the test closes the night, once
    order_id, handle, sessions = await _held_order_whose_session_ended(stack, engine)
    [ended] = sessions()
    session = SessionInfo.from_wire(ended)
    pool = pool_from_settings(stack.settings.voyager)
    await pool.start()
    try:
        sessionmaker = make_sessionmaker(engine)
        ingest = IngestActivities(RoboTarget(pool), sessionmaker, stack.settings)
        assert await ingest.ingest_session(order_id, session.guid) >= 4
        progress = await store_progress(sessionmaker, order_id)
    finally:
        await pool.close()
    assert progress.all_done
    await handle.signal("session_ended", SessionSignal(
        session_guid=session.guid, run_guid=ended["refguidrun"], target_guid=session.ref_guid_target,
        result=session.result, started_at=session.start, ended_at=session.end, exit_text=session.exit_text,
        progress=progress))

    async def kept() -> bool:  # the signal's workflow task ran: the workflow holds the session
        return bool((await handle.query("status", result_type=OrderStatusView)).sessions)

    await wait_for(kept, 30, "the workflow holding the signalled session")
    view = await handle.query("status", result_type=OrderStatusView)
    assert view.phase == "submitting" and view.status == OrderStatus.HELD  # the submit still runs
    assert [(s.session_guid, s.ended, s.ingested) for s in view.sessions] == [(session.guid, True, False)]

    stack.sim.faults.release_results()  # the submit returns
    async with asyncio.timeout(120):
        result = await stack.result(handle)

    await _settled_on_the_one_session(stack, engine, order_id, handle, result)
    assert await _signals(handle, "session_ended") == 1


async def test_a_session_begun_while_held_runs_live_once_the_submit_returns(temporal_env, order_stack, engine):
    """The session starts before the submit returns and still runs after: once the order is
    ``submitted`` the monitor writes ``running`` and ingests its frames as they come, as for a
    session first seen after the submit (the order page shows the night live)."""
    stack = await order_stack(temporal_env, sim={"speed": 150.0, "start_time": M42_UP}, command_timeout=120.0)
    order_id, handle, sessions = await _held_order(stack, engine, quantity=8)
    target = (await order_row(engine, order_id)).target_guid

    def taken() -> set[str]:
        return {g for g, d in stack.sim.store.shots_done.items() if d["refguidtarget"] == target}

    async def first_frame() -> bool:
        return bool(taken())

    await wait_for(first_frame, 60, "a first frame taken while the order is held")
    stack.sim.clock.set_speed(0)  # the session stays running while the order catches up
    [session] = sessions()
    assert session["result"] == wire.SESSION_RUNNING

    async def recorded_running() -> bool:  # the monitor saw it while the order was held
        async with engine.connect() as conn:
            return bool((await conn.execute(sa.select(VoyagerSession.result).where(
                VoyagerSession.order_id == order_id))).scalars().all())

    await wait_for(recorded_running, 30, "the monitor recording the session")
    assert (await order_row(engine, order_id)).status == OrderStatus.HELD.value
    stack.sim.faults.release_results()  # the submit returns; the session still runs

    async def live() -> bool:
        row = await order_row(engine, order_id)
        return row.status == OrderStatus.RUNNING.value and {f.shot_done_guid for f in await frames_of(engine, order_id)} == taken()

    await wait_for(live, 30, "the order running with its frames so far, the session still running")
    assert session["result"] == wire.SESSION_RUNNING
    stack.sim.clock.set_speed(150.0)
    async with asyncio.timeout(120):
        result = await stack.result(handle)

    await _settled_on_the_one_session(stack, engine, order_id, handle, result, wanted=8)
    statuses = [e.payload["status"] for e in await events_of(engine, order_id) if e.kind == "status"]
    assert statuses.count(OrderStatus.RUNNING.value) == 1, statuses


async def test_an_abort_after_the_session_ended_before_the_submit_returned_pays_for_what_was_delivered(
        temporal_env, order_stack, engine):
    """The customer aborts while Voyager still holds the submit's last result and the target's
    session already ran and ended: the submit is cancelled (not awaited to its command timeout), the
    target disabled, every frame it took ingested once, and the hold settled once under the
    customer-abort rule (docs/pricing.md §6) on what was delivered, not released whole for frames
    the customer received; the monitor's later polls add nothing to the ended order."""
    stack = await order_stack(temporal_env, sim={"speed": 150.0, "start_time": M42_UP}, command_timeout=120.0)
    commands = count_commands(stack.sim)
    order_id, handle, sessions = await _held_order_whose_session_ended(stack, engine)
    assert (await order_row(engine, order_id)).status == OrderStatus.HELD.value

    answer = await abort_order(stack.client, order_id, "changed my mind", "customer:test", role=AbortRole.CUSTOMER)
    assert answer.first
    async with asyncio.timeout(60):  # half the command timeout the held AddShot would otherwise run to
        result = await stack.result(handle)

    assert result.status == OrderStatus.ABORTED, result.reason
    target = (await order_row(engine, order_id)).target_guid
    assert stack.sim.store.targets[target][wire.TARGET_FIELDS["status"]] == 1  # disabled in Voyager
    frames = await _assert_frames_once(stack, engine, order_id)
    accepted = sum(f.exposure for f in frames if f.accepted)
    assert accepted == 4 * 60.0  # the session's four frames, delivered
    wanted = credits_to_capture(result.credits_held, 4 * 60.0, accepted, SettlementOutcome.customer_abort)
    assert wanted == result.credits_held
    assert (result.credits_captured, result.credits_released) == (wanted, 0)
    await _assert_settled_once(engine, order_id)
    ledger = sorted(e.kind for e in await ledger_entries(engine, order_id))

    # The monitor's polls after the end: the aborted order is not moved, nothing ingested twice.
    polls = commands[wire.M_GET_SESSIONS_BY_RUN]

    async def polled_twice() -> bool:
        return commands[wire.M_GET_SESSIONS_BY_RUN] >= polls + 2

    await wait_for(polled_twice, 30, "two monitor polls after the order ended")
    row = await order_row(engine, order_id)
    assert row.status == OrderStatus.ABORTED.value
    assert {f.shot_done_guid for f in await _assert_frames_once(stack, engine, order_id)} == {f.shot_done_guid for f in frames}
    assert sorted(e.kind for e in await ledger_entries(engine, order_id)) == ledger
    assert len(sessions()) == 1
    stack.sim.faults.release_results()
