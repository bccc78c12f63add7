"""A worker and the Voyager simulator it drives stop without leaving a task pending: a task left
waiting (an ``asyncio.Event.wait``) is destroyed pending once nothing holds it, and asyncio logs
"Task was destroyed but it is pending!" — as a bench's history run did when its deployment stopped."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import uuid

import pytest
import sqlalchemy as sa
from temporalio.service import RPCError

from tests.patience import patience
from tests.workflows.support import order_settings, start_sim, wait_for
from worker import open_worker

pytestmark = pytest.mark.timeout(120)


async def _left_pending(before: set[asyncio.Task], within: float) -> list[asyncio.Task]:
    """The tasks started since ``before`` that are still pending after up to ``within`` seconds
    (cancelled ones take a few loop turns to finish)."""
    me = asyncio.current_task()
    loop = asyncio.get_running_loop()
    until = loop.time() + within
    while True:
        left = [t for t in asyncio.all_tasks() - before if t is not me and not t.done()]
        if not left or loop.time() > until:
            return left
        await asyncio.sleep(0.05)


async def test_a_worker_and_its_simulator_leave_no_task_pending_when_they_stop(tmp_path, database_url, engine,
                                                                                temporal_env):
    loop = asyncio.get_running_loop()
    destroyed: list[str] = []
    handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda lp, ctx: destroyed.append(f"{ctx.get('message')}: {ctx.get('task')!r}"))
    before = set(asyncio.all_tasks())
    sim = await start_sim(tmp_path)
    settings = order_settings(sim, database_url, tmp_path)
    telescope, queue = settings.orders.telescope, f"shutdown-{uuid.uuid4().hex[:8]}"
    monitor = temporal_env.client.get_workflow_handle(f"observatory-monitor-{telescope}")
    try:
        async with open_worker(settings, client=temporal_env.client, engine=engine, task_queue=queue,
                               start_monitor=True, start_reconciliation=False, start_repair=False):
            # The monitor's watch polls the simulator and listens to its dashboard events.
            async def polled() -> bool:
                async with engine.connect() as conn:
                    return bool((await conn.execute(sa.text(
                        "SELECT count(*) FROM observatory_status WHERE telescope = :t AND ok"), {"t": telescope})).scalar())

            async def streaming() -> bool:
                return any(s.dashboard for s in sim.sessions)

            await wait_for(polled, patience(30), "the monitor's first poll")
            await wait_for(streaming, patience(30), "the monitor's event stream")
        await monitor.terminate("test over")
        await sim.stop()

        left = await _left_pending(before, patience(5))
        assert not left, [repr(t) for t in left]
        del left
        gc.collect()
        await asyncio.sleep(0)
        assert destroyed == []
    finally:
        loop.set_exception_handler(handler)
        with contextlib.suppress(RPCError):  # already terminated when the test got that far
            await monitor.terminate("test over")
        await sim.stop()
        async with engine.begin() as conn:
            await conn.execute(sa.text("DELETE FROM observatory_status WHERE telescope = :t"), {"t": telescope})
