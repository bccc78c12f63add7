"""``worker.ensure_monitor`` keeps one monitor per telescope routed as the worker wants: a monitor
started in the other shape (single-telescope ↔ network) watches a queue nobody polls, so it is
started again (docs/network.md §4)."""

from __future__ import annotations

import uuid

from worker import MONITOR_ROUTE, ensure_monitor
from tests.workflows.support import terminate_quietly


async def test_a_monitor_routed_otherwise_is_started_again_routed_as_wanted(temporal_env, task_queue):
    client = temporal_env.client
    workflow_id = await ensure_monitor(client, f"route-{uuid.uuid4().hex[:6]}", task_queue, "site-somewhere")
    try:
        handle = client.get_workflow_handle(workflow_id)
        first = await handle.describe()
        assert (await first.memo())[MONITOR_ROUTE] == "site-somewhere"

        await ensure_monitor(client, workflow_id.removeprefix("observatory-monitor-"), task_queue, "site-somewhere")
        assert (await handle.describe()).run_id == first.run_id  # same route: the running monitor is kept

        await ensure_monitor(client, workflow_id.removeprefix("observatory-monitor-"), task_queue, None)
        now = await handle.describe()
        assert now.run_id != first.run_id and (await now.memo())[MONITOR_ROUTE] == ""
        assert (await client.get_workflow_handle(workflow_id, run_id=first.run_id).describe()).status.name == "TERMINATED"
    finally:
        await terminate_quietly(client, workflow_id)
