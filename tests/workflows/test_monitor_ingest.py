"""The observatory monitor ingests the frames of the sessions it sees change itself
(``activities/monitor_ingest.py``): a frame reaches the order's events with no workflow task and no
session watch on its way, each frame once, and the order's own watch afterwards doubles nothing."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import sqlalchemy as sa
from temporalio.testing import ActivityEnvironment

from activities.ingest import IngestActivities
from activities.monitor import MonitorActivities
from activities.monitor_ingest import SessionIngests
from core.database import make_sessionmaker
from core.voyager_clients import pool_from_settings
from models.db import VoyagerSession
from models.orders import MonitorWatchRequest, OrderStatus
from tests.e2e.test_order_faults import _attempts as activity_attempts
from tests.workflows.support import create_customer, create_order, events_of, frames_of, order_row, wait_for
from voyager import wire
from voyager.robotarget import RoboTarget

pytestmark = pytest.mark.timeout(420)


async def test_a_kick_during_an_ingest_runs_it_once_more_and_one_task_serves_a_session():
    calls: list[tuple[int, str]] = []
    release = asyncio.Event()

    async def ingest(order_id: int, session_guid: str) -> int:
        calls.append((order_id, session_guid))
        await release.wait()
        return 2

    ingests = SessionIngests(ingest)
    ingests.kick(7, "s1")
    await asyncio.sleep(0)
    for _ in range(3):  # frames announced while the first ingest runs: one more pass, not three
        ingests.kick(7, "s1")
    ingests.kick(8, "s2")
    assert ingests.running == 2
    release.set()
    await ingests.close()
    assert sorted(calls) == [(7, "s1"), (7, "s1"), (8, "s2")]
    assert ingests.frames == 6 and ingests.running == 0


async def test_a_failed_ingest_is_logged_and_left_to_the_watch():
    async def ingest(order_id: int, session_guid: str) -> int:
        raise ConnectionError("database away")

    ingests = SessionIngests(ingest)
    ingests.kick(1, "s")
    await ingests.close()  # no exception escapes: the order's watch and sweep ingest the frames
    assert ingests.frames == 0 and ingests.running == 0


async def test_finishing_a_session_ingests_now_and_raises_what_the_ingest_raises():
    """The close of a night awaits its session's last ingest: no failure is swallowed (the monitor
    then signals nothing, or hands the session to the order's watch)."""
    async def ingest(order_id: int, session_guid: str) -> int:
        if session_guid == "refused":
            raise RuntimeError("RoboTarget refused the shot list")
        return 3

    ingests = SessionIngests(ingest)
    assert await ingests.finish(1, "s") == 3 and ingests.frames == 3
    with pytest.raises(RuntimeError):
        await ingests.finish(1, "refused")
    assert ingests.frames == 3 and ingests.running == 0


async def test_the_monitor_ingests_a_running_sessions_frames_once_with_no_worker_running(temporal_env, order_stack, engine):
    stack = await order_stack(temporal_env, sim={"speed": 60.0}, start_monitor=False)
    customer = await create_customer(engine, credits=20)
    order_id = await create_order(engine, customer, [{"filter": "L", "exposure": 60.0, "quantity": 6}])
    handle = await stack.start(order_id, customer)

    async def submitted() -> bool:
        return (await order_row(engine, order_id)).status == OrderStatus.SUBMITTED.value

    await wait_for(submitted, 60, "order submitted")
    await stack.exits.aclose()  # no worker from here on: no watch, no sweep; only the monitor below ingests
    target = (await order_row(engine, order_id)).target_guid

    def sessions() -> list[dict]:
        return [s for s in stack.sim.store.sessions.values() if s["refguidtarget"] == target]

    def taken() -> set[str]:
        return {g for g, d in stack.sim.store.shots_done.items() if d["refguidtarget"] == target}

    settings = stack.settings.model_copy(update={"orders": stack.settings.orders.model_copy(
        update={"monitor_run_for": 600.0, "monitor_poll_interval": 5.0})})  # frames come through dashboard events
    pool = pool_from_settings(settings.voyager)
    await pool.start()
    try:
        rt = RoboTarget(pool)
        sessionmaker = make_sessionmaker(engine)
        monitor = MonitorActivities(rt, sessionmaker, stack.client, settings,
                                    ingest=IngestActivities(rt, sessionmaker, settings).ingest_session)
        env = ActivityEnvironment()
        watch = asyncio.create_task(env.run(
            monitor.watch_observatory, MonitorWatchRequest(telescope=settings.orders.telescope)))

        async def two_frames_mid_session() -> bool:
            return len(await frames_of(engine, order_id)) >= 2

        await wait_for(two_frames_mid_session, 150, "two frames ingested by the monitor")
        assert [s["result"] for s in sessions()] == [wire.SESSION_RUNNING]  # while the session still runs

        async def night_closed() -> bool:  # the ended row is written once the order was signalled
            async with engine.connect() as conn:
                results = (await conn.execute(sa.select(VoyagerSession.result).where(
                    VoyagerSession.order_id == order_id))).scalars().all()
            return bool(results) and all(r != wire.SESSION_RUNNING for r in results)

        await wait_for(night_closed, 60, "the session ended and its night closed by the monitor")
        assert {f.shot_done_guid for f in await frames_of(engine, order_id)} == taken()
        assert not watch.done()  # the monitor's watch was still running: it, and nothing else, ingested
        env.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
    finally:
        await pool.close()

    frames = await frames_of(engine, order_id)
    assert len(frames) == len(taken()) >= 6 and sum(f.accepted for f in frames) == 6
    assert all(f.jpg_key for f in frames)
    events = await events_of(engine, order_id)
    progress = [e for e in events if e.kind == "progress"]
    assert len(progress) == len(frames)
    # The stream shows the order running before the session's frames: the monitor wrote it first.
    statuses = [(e.id, e.payload["status"]) for e in events if e.kind == "status"]
    assert [st for i, st in statuses if i < progress[0].id][-1:] == [OrderStatus.RUNNING.value], statuses

    # The monitor closed the night (its ``session_ended`` carries the progress, waiting for a
    # worker): the order settles on it with no watch of its own, and its final sweep doubles nothing.
    await stack.start_worker(start_monitor=False)
    result = await asyncio.wait_for(stack.result(handle), 120)
    assert result.status == OrderStatus.COMPLETED, result.reason
    assert await activity_attempts(handle, "ingest.watch_session") == []
    assert sorted(f.shot_done_guid for f in await frames_of(engine, order_id)) == sorted(taken())
    events = await events_of(engine, order_id)
    assert sum(e.kind == "progress" for e in events) == len(frames)
    # ``running`` once, and no ``submitted`` after it: every shot was done.
    assert sum(e.kind == "status" and e.payload["status"] == OrderStatus.RUNNING.value for e in events) == 1


class CountingRoboTarget(RoboTarget):
    """The real client, counting the JPG previews it fetches (one per frame stored)."""

    jpgs = 0

    async def get_shot_jpg(self, *args, **kwargs) -> bytes:
        self.jpgs += 1
        return await super().get_shot_jpg(*args, **kwargs)


async def test_ingests_racing_on_a_session_store_each_frame_once(temporal_env, order_stack, engine):
    """The monitor, the watch and the sweep reach a session together: in one process they take turns
    (each frame fetched and stored once), across processes the ``shot_done`` key keeps one row."""
    stack = await order_stack(temporal_env, sim={"speed": 60.0}, start_monitor=False)
    customer = await create_customer(engine, credits=20)
    order_id = await create_order(engine, customer, [{"filter": "L", "exposure": 60.0, "quantity": 6}])
    await stack.start(order_id, customer)

    async def submitted() -> bool:
        return (await order_row(engine, order_id)).status == OrderStatus.SUBMITTED.value

    await wait_for(submitted, 60, "order submitted")
    await stack.exits.aclose()  # no worker: only the ingests below
    target = (await order_row(engine, order_id)).target_guid

    def taken() -> dict[str, str]:
        return {g: d["refguidsession"] for g, d in stack.sim.store.shots_done.items() if d["refguidtarget"] == target}

    async def two_taken() -> bool:
        return len(taken()) >= 2

    await wait_for(two_taken, 150, "two frames taken")
    session_guid = next(iter(taken().values()))
    pool = pool_from_settings(stack.settings.voyager)
    await pool.start()
    try:
        sessionmaker = make_sessionmaker(engine)
        here, elsewhere = CountingRoboTarget(pool), CountingRoboTarget(pool)
        ingest = IngestActivities(here, sessionmaker, stack.settings)
        other_process = IngestActivities(elsewhere, sessionmaker, stack.settings)
        counts = await asyncio.gather(*(ingest.ingest_session(order_id, session_guid) for _ in range(3)),
                                      other_process.ingest_session(order_id, session_guid))
    finally:
        await pool.close()

    frames = await frames_of(engine, order_id)
    assert sum(counts) == len(frames) >= 2
    assert len({f.shot_done_guid for f in frames}) == len(frames)
    assert sum(e.kind == "progress" for e in await events_of(engine, order_id)) == len(frames)
    assert here.jpgs <= len(frames)  # the three calls of one process took turns: no frame fetched twice
