"""Fixtures of the order-workflow tests: ``order_stack(env, ...)`` starts a Voyager simulator and a
worker (``worker.open_worker``) on the test's task queue, against the session's PostgreSQL and the
given Temporal environment, and tears both down (terminating the monitor workflow) afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from core.order_control import start_order_workflow
from core.settings import Settings
from models.orders import OrderWorkflowResult
from models.temporal_contract import order_workflow_id
from tests.workflows.support import order_settings, start_sim, terminate_quietly
from voyager.simulator import VoyagerSimulator
from worker import monitor_workflow_id, open_worker


@dataclass
class OrderStack:
    """A running simulator + worker. ``start(order_id, customer_id)`` starts the order workflow."""

    env: WorkflowEnvironment
    sim: VoyagerSimulator
    settings: Settings
    client: Client
    task_queue: str
    engine: AsyncEngine
    exits: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    workflow_ids: list[str] = field(default_factory=list)

    async def start(self, order_id: int, customer_id: int, *, plan: str = "nebula", target_name: str = "M42") -> WorkflowHandle:
        await start_order_workflow(self.client, order_id, customer_id=customer_id, plan=plan,
                                   target_name=target_name, task_queue=self.task_queue)
        self.workflow_ids.append(order_workflow_id(order_id))
        return self.client.get_workflow_handle(order_workflow_id(order_id), result_type=OrderWorkflowResult)

    async def result(self, handle: WorkflowHandle) -> OrderWorkflowResult:
        """The workflow's result; on the time-skipping server, with time skipping unlocked
        (handles from ``get_workflow_handle`` do not unlock it by themselves)."""
        if self.env.supports_time_skipping:
            async with self.env.time_skipping_unlocked():  # type: ignore[attr-defined]
                return await handle.result()
        return await handle.result()

    async def start_worker(self, **kwargs: Any) -> None:
        """(Re)start an in-process worker on the same queue, e.g. after killing one."""
        await self.exits.enter_async_context(open_worker(
            self.settings, client=self.client, engine=self.engine, task_queue=self.task_queue, **kwargs))


StackFactory = Callable[..., Awaitable[OrderStack]]


@pytest_asyncio.fixture
async def order_stack(tmp_path: Path, database_url: str, engine: AsyncEngine, task_queue: str) -> AsyncIterator[StackFactory]:
    stacks: list[OrderStack] = []

    async def make(env: WorkflowEnvironment, *, sim: dict[str, Any] | None = None, start_worker: bool = True,
                   start_monitor: bool = True, **settings: Any) -> OrderStack:
        simulator = await start_sim(tmp_path, **(sim or {}))
        cfg = order_settings(simulator, database_url, tmp_path, **settings)
        stack = OrderStack(env, simulator, cfg, env.client, task_queue, engine)
        stacks.append(stack)
        if start_worker:
            await stack.start_worker(start_monitor=start_monitor,
                                     start_reconciliation=not env.supports_time_skipping)
        return stack

    yield make
    for stack in stacks:
        for workflow_id in [*stack.workflow_ids, monitor_workflow_id(stack.settings.orders.telescope)]:
            await terminate_quietly(stack.client, workflow_id)
        await stack.exits.aclose()
        if stack.sim.running:
            await stack.sim.stop()
