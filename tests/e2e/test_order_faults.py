"""The faults an order must survive (docs/order-workflow.md), each on the dev server against the simulator.

In each: the order ends in the right state, its hold is resolved exactly once (one ``hold`` and one
capture/release set of ledger entries), and no frame is ingested twice (``shot_done`` rows are
unique by GUID and match what Voyager took).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType

from core.settings import Settings
from models.orders import AbortRole, OrderStatus
from tests.workflows.support import (
    count_commands,
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
from workflows._options import MONITOR_WATCH
from core.order_control import abort_order
from worker import ensure_monitor, monitor_workflow_id

pytestmark = pytest.mark.timeout(240)
ROOT = Path(__file__).resolve().parents[2]


async def _assert_settled_once(engine, order_id: int) -> None:
    kinds = [e.kind for e in await ledger_entries(engine, order_id)]
    assert kinds.count("hold") >= 1 and set(kinds) <= {"hold", "capture", "release"}
    # one entry per bucket and kind at most: the ledger's idempotency keys are order:<id>:<kind>:<bucket>
    assert len(kinds) == len({(e.kind, e.bucket) for e in await ledger_entries(engine, order_id)})


async def _assert_frames_once(stack, engine, order_id: int) -> list[Any]:
    frames = await frames_of(engine, order_id)
    target = (await order_row(engine, order_id)).target_guid
    taken = {g for g, d in stack.sim.store.shots_done.items() if d["refguidtarget"] == target}
    assert len({f.shot_done_guid for f in frames}) == len(frames)
    assert {f.shot_done_guid for f in frames} == taken
    return frames


async def _attempts(handle, activity_type: str) -> list[int]:
    """Attempt numbers of the started events of an activity type (the last attempt is recorded)."""
    history = await handle.fetch_history()
    scheduled = {e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
                 for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED}
    return [e.activity_task_started_event_attributes.attempt for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
            and scheduled.get(e.activity_task_started_event_attributes.scheduled_event_id) == activity_type]


def _settings_env(settings: Settings, temporal_address: str, task_queue: str) -> dict[str, str]:
    """The ``STELLAR_*`` environment that makes ``python worker.py`` use these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STELLAR_")}
    for group in ("database", "voyager", "images", "image_store", "orders", "billing"):
        for key, value in getattr(settings, group).model_dump().items():
            if value is None:
                continue
            if hasattr(value, "get_secret_value"):
                value = value.get_secret_value()
            env[f"STELLAR_{group.upper()}__{key.upper()}"] = str(value)
    env.update(STELLAR_TEMPORAL__ADDRESS=temporal_address, STELLAR_TEMPORAL__TASK_QUEUE=task_queue,
               STELLAR_LOG_JSON="true", STELLAR_ENV="test")
    return env


@contextlib.contextmanager
def worker_process(stack, tmp_path: Path) -> Iterator[subprocess.Popen]:
    """``python worker.py`` on ``stack``'s settings and queue (log: ``tmp_path/worker.log``); killed
    at the end of the block if still alive."""
    address = stack.client.service_client.config.target_host
    with (tmp_path / "worker.log").open("w") as log:
        proc = subprocess.Popen([sys.executable, str(ROOT / "worker.py")], cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT, env=_settings_env(stack.settings, address, stack.task_queue))
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def kill_now(proc: subprocess.Popen) -> None:
    """SIGKILL: no graceful shutdown, its activities just vanish."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


#: After the kill: the monitor's watch heartbeat timeout (30 s), then its catch-up and the order's
#: close and settle (about 2 s alone, 25 s after the kill in all); the rest is room for a loaded machine.
AFTER_KILL = 120 + MONITOR_WATCH["heartbeat_timeout"].total_seconds()


@pytest.mark.timeout(90 + AFTER_KILL + 60)  # two frames, the wait after the kill, setup and teardown
async def test_worker_killed_mid_session_resumes_without_losing_or_doubling_frames(temporal_env, order_stack, engine, tmp_path):
    stack = await order_stack(temporal_env, sim={"speed": 150.0}, start_worker=False)
    with worker_process(stack, tmp_path) as proc:
        customer = await create_customer(engine, credits=20)
        order_id = await create_order(engine, customer, [{"filter": "L", "exposure": 120.0, "quantity": 20}])
        handle = await stack.start(order_id, customer)

        async def two_frames() -> bool:
            assert proc.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            return len(await frames_of(engine, order_id)) >= 2

        await wait_for(two_frames, 90, "two frames ingested by the first worker")
        kill_now(proc)
    killed_at = len(await frames_of(engine, order_id))
    await stack.start_worker(start_monitor=True)

    # The dead worker's monitor watch (workflows/_options.py MONITOR_WATCH) is retried once its
    # heartbeat timeout passes; it catches up and closes the night (no watch of the order's own:
    # there is none to retry).
    result = await asyncio.wait_for(stack.result(handle), AFTER_KILL)

    assert result.status == OrderStatus.COMPLETED, result.reason
    frames = await _assert_frames_once(stack, engine, order_id)
    assert sum(f.accepted for f in frames) == 20 and killed_at < 20
    assert await _attempts(handle, "ingest.watch_session") == []
    await _assert_settled_once(engine, order_id)
    assert result.credits_captured == result.credits_held


async def test_voyager_connection_dropped_mid_session_is_waited_out(temporal_env, order_stack, engine):
    stack = await order_stack(temporal_env, sim={"speed": 150.0})
    customer = await create_customer(engine, credits=20)
    order_id = await create_order(engine, customer, [{"filter": "G", "exposure": 120.0, "quantity": 16}])
    handle = await stack.start(order_id, customer)

    async def frames_at_least(n: int) -> bool:
        return len(await frames_of(engine, order_id)) >= n

    await wait_for(lambda: frames_at_least(2), 90, "two frames")
    await stack.sim.drop_connections()
    await wait_for(lambda: frames_at_least(5), 90, "frames after the first drop")
    await stack.sim.drop_connections()
    result = await asyncio.wait_for(stack.result(handle), 120)

    assert result.status == OrderStatus.COMPLETED, result.reason
    frames = await _assert_frames_once(stack, engine, order_id)
    assert sum(f.accepted for f in frames) == 16
    assert await _attempts(handle, "ingest.watch_session") == []  # the monitor waited the drops out, closed the night
    await _assert_settled_once(engine, order_id)


async def test_command_that_timed_out_but_succeeded_is_found_by_its_guid(temporal_env, order_stack, engine):
    stack = await order_stack(temporal_env, command_timeout=2.0)
    handlers = stack.sim.commands.handlers
    add_target = handlers[wire.M_ADD_TARGET]
    calls: list[str] = []

    async def slow_add_target(session: Any, params: dict[str, Any]) -> Any:
        result = await add_target(session, params)  # applied in Voyager ...
        calls.append(params[wire.TARGET_FIELDS["guid"]])
        if len(calls) == 1:
            await asyncio.sleep(3.0)  # ... but its result arrives after the client gave up
        return result

    handlers[wire.M_ADD_TARGET] = slow_add_target
    customer = await create_customer(engine, credits=10)
    order_id = await create_order(engine, customer, [{"filter": "B", "exposure": 60.0, "quantity": 5}])
    handle = await stack.start(order_id, customer)

    result = await asyncio.wait_for(stack.result(handle), 120)

    assert result.status == OrderStatus.COMPLETED, result.reason
    row = await order_row(engine, order_id)
    assert calls == [row.target_guid]  # added once; the retry found it by GUID and did not add again
    assert [g for g in stack.sim.store.targets] == [row.target_guid]
    assert len(stack.sim.store.shots) == 1  # its one shot line, once
    assert max(await _attempts(handle, "voyager.submit_target")) >= 2
    await _assert_frames_once(stack, engine, order_id)
    await _assert_settled_once(engine, order_id)
    await save_history(handle, "order_submit_retried")


async def test_session_aborted_by_clouds_then_a_good_night_completes(temporal_env, order_stack, engine):
    stack = await order_stack(temporal_env, sim={"speed": 200.0})
    customer = await create_customer(engine, credits=20)
    # Nebula, repeat 2: Voyager spreads 2 × 8 frames over two nights and comes back after clouds.
    order_id = await create_order(engine, customer, [{"filter": "OIII", "exposure": 120.0, "quantity": 8}], repeat=2)
    handle = await stack.start(order_id, customer)

    async def two_frames() -> bool:
        return len(await frames_of(engine, order_id)) >= 2

    await wait_for(two_frames, 90, "two frames on the first night")
    stack.sim.cloud_out()  # clouds from now on, tonight
    result = await asyncio.wait_for(stack.result(handle), 150)

    assert result.status == OrderStatus.COMPLETED, result.reason
    row = await order_row(engine, order_id)
    results = sorted(s["result"] for s in stack.sim.store.sessions.values() if s["refguidtarget"] == row.target_guid)
    assert results[-1] == wire.SESSION_ABORTED and wire.SESSION_OK in results
    frames = await _assert_frames_once(stack, engine, order_id)
    assert sum(f.accepted for f in frames) == 16
    await _assert_settled_once(engine, order_id)
    assert result.credits_captured == result.credits_held
    await save_history(handle, "order_clouds_then_clear")


async def test_abort_while_submit_is_retrying_releases_and_leaves_nothing_to_observe(temporal_env, order_stack, engine):
    stack = await order_stack(temporal_env, command_timeout=1.5)
    stack.sim.faults.swallow_methods.add(wire.M_ADD_TARGET)  # Voyager never answers the add
    customer = await create_customer(engine, credits=10)
    order_id = await create_order(engine, customer, [{"filter": "SII", "exposure": 60.0, "quantity": 5}])
    handle = await stack.start(order_id, customer)

    async def retrying() -> bool:
        pending = (await handle.describe()).raw_description.pending_activities
        return any(p.activity_type.name == "voyager.submit_target" and p.attempt >= 2 for p in pending)

    await wait_for(retrying, 60, "the submit activity retrying")
    answer = await abort_order(stack.client, order_id, "wrong target", "support:bob", role=AbortRole.SUPPORT)
    result = await asyncio.wait_for(stack.result(handle), 90)

    assert answer.first and result.status == OrderStatus.ABORTED
    assert (result.credits_captured, result.credits_released) == (0, result.credits_held)
    row = await order_row(engine, order_id)
    target = stack.sim.store.targets.get(row.target_guid)
    assert target is None or target[wire.TARGET_FIELDS["status"]] == 1  # nothing left for Voyager to run
    assert await frames_of(engine, order_id) == []
    kinds = sorted(e.kind for e in await ledger_entries(engine, order_id))
    assert kinds == ["hold", "release"]
    assert row.aborted_by == "support:bob"


async def test_one_night_order_clouded_out_ends_partial_and_releases_under_half(temporal_env, order_stack, engine):
    # 120 s frames at 50× are 2.4 s apart: the clouds come well before the 8th frame even when a
    # loaded machine notices the second frame late.
    stack = await order_stack(temporal_env, sim={"speed": 50.0})
    customer = await create_customer(engine, credits=20)
    # Stardust is one-shot (IsRepeat false): Voyager does not come back after the clouds.
    order_id = await create_order(engine, customer, [{"filter": "Ha", "exposure": 120.0, "quantity": 16}], plan="stardust")
    handle = await stack.start(order_id, customer, plan="stardust")

    async def two_frames() -> bool:
        return len(await frames_of(engine, order_id)) >= 2

    await wait_for(two_frames, 90, "two frames")
    stack.sim.cloud_out()
    result = await asyncio.wait_for(stack.result(handle), 90)

    frames = await _assert_frames_once(stack, engine, order_id)
    accepted = sum(f.accepted for f in frames)
    assert 2 <= accepted < 8
    assert result.status == OrderStatus.PARTIAL and "clouds" in result.reason.lower()
    # A Voyager abort delivering under 50 % of the integration is released in full (settlement policy).
    assert (result.credits_captured, result.credits_released) == (0, result.credits_held)
    row = await order_row(engine, order_id)
    assert stack.sim.store.targets[row.target_guid][wire.TARGET_FIELDS["status"]] == 1
    assert row.report["frames_accepted"] == accepted
    await _assert_settled_once(engine, order_id)


async def test_session_that_ended_while_the_monitor_was_stopped_is_closed_when_it_restarts(
        temporal_env, order_stack, engine):
    """No watch follows the session: the monitor closes it. Stopped mid-session (its workflow
    terminated, its watch cancelled), it closes the session at its restart (the catch-up pass of a
    new watch activity): the order completes on the monitor's ingest, every frame once."""
    stack = await order_stack(temporal_env, sim={"speed": 0.0})  # the test moves Voyager's clock itself
    polls = count_commands(stack.sim)
    customer = await create_customer(engine, credits=10)
    order_id = await create_order(engine, customer, [{"filter": "L", "exposure": 60.0, "quantity": 5}])
    handle = await stack.start(order_id, customer)

    async def submitted() -> bool:
        return (await order_row(engine, order_id)).status == "submitted"

    await wait_for(submitted, 30, "the order submitted")
    target = (await order_row(engine, order_id)).target_guid

    def sessions() -> list[dict]:
        return [s for s in stack.sim.store.sessions.values() if s["refguidtarget"] == target]

    for _ in range(600):  # on through the evening, a minute at a time, until Voyager starts the target
        if sessions():
            break
        await stack.sim.advance(60)
    assert [s["result"] for s in sessions()] == [wire.SESSION_RUNNING]

    async def running() -> bool:
        return (await order_row(engine, order_id)).status == "running"

    await wait_for(running, 30, "the monitor seeing the session run")
    monitor = stack.client.get_workflow_handle(monitor_workflow_id(stack.settings.orders.telescope))
    await monitor.terminate("test: the monitor stops")

    async def monitor_stopped() -> bool:  # its watch learns of it at a heartbeat, then stops polling
        before = polls[wire.M_GET_RUN_LIST]
        await asyncio.sleep(3.0)
        return polls[wire.M_GET_RUN_LIST] == before

    await wait_for(monitor_stopped, 60, "the monitor's watch stopped")
    await stack.sim.advance(12 * 3600)  # the session ends, unseen
    assert sessions() and all(s["result"] == wire.SESSION_OK for s in sessions()), sessions()
    await asyncio.sleep(2.0)
    assert (await order_row(engine, order_id)).status == "running"  # nobody closed the night

    await ensure_monitor(stack.client, stack.settings.orders.telescope, stack.task_queue)
    result = await asyncio.wait_for(stack.result(handle), 90)

    assert result.status == OrderStatus.COMPLETED, result.reason
    frames = await _assert_frames_once(stack, engine, order_id)
    assert sum(f.accepted for f in frames) == 5
    assert await _attempts(handle, "ingest.watch_session") == []  # the monitor's signal closed the night
    assert status_sequence(await events_of(engine, order_id)) == [
        "held", "submitted", "running", "settling", "completed"]
    await _assert_settled_once(engine, order_id)
    assert result.credits_captured == result.credits_held
