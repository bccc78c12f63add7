"""The worker's workflow sandbox (``worker.workflow_runner``) passes the workflow files, the models
and pydantic through from the worker process: a workflow run does not import its own copy of them
(the memory of a waiting order, bench/worker_memory.py), and the models it uses are the very objects
the worker built — complete at import, so no workflow ever rebuilds a shared model."""

from __future__ import annotations

import importlib
import pkgutil
import uuid

import pydantic
import pytest
from temporalio.worker import Worker

import models
from tests.workflows.sandbox_probe import PROBED, SandboxProbe

pytestmark = pytest.mark.timeout(120)


async def _probe(client, task_queue: str) -> dict[str, int]:
    return await client.execute_workflow(SandboxProbe.run, id=f"probe-{uuid.uuid4().hex[:8]}", task_queue=task_queue)


async def test_a_workflow_on_the_worker_sees_the_worker_process_objects(temporal_env, order_stack):
    stack = await order_stack(temporal_env, start_worker=False)
    await stack.start_worker(start_monitor=False, start_reconciliation=False, start_repair=False,
                             extra_workflows=[SandboxProbe])
    seen = await _probe(stack.client, stack.task_queue)
    assert seen == {name: id(get()) for name, get in PROBED.items()}


async def test_the_sdk_default_sandbox_would_import_the_workflow_file_again(temporal_env):
    # The control: without the worker's passthrough list, the same probe sees its own copies.
    queue = f"probe-default-{uuid.uuid4().hex[:6]}"
    async with Worker(temporal_env.client, task_queue=queue, workflows=[SandboxProbe]):
        seen = await _probe(temporal_env.client, queue)
    assert seen["workflows.order.OrderWorkflow"] != id(PROBED["workflows.order.OrderWorkflow"]())
    assert seen["models.orders.SubmitRequest"] != id(PROBED["models.orders.SubmitRequest"]())


def test_every_model_is_complete_at_import():
    # A model left with a forward reference is rebuilt lazily on first use — inside a workflow's
    # sandbox, where its module may not be in the sandbox's sys.modules ("not fully defined").
    incomplete = []
    for info in pkgutil.iter_modules(models.__path__):
        module = importlib.import_module(f"models.{info.name}")
        for name, value in vars(module).items():
            if (isinstance(value, type) and issubclass(value, pydantic.BaseModel)
                    and value.__module__ == module.__name__ and not value.__pydantic_complete__):
                incomplete.append(f"{module.__name__}.{name}")
    assert incomplete == []
