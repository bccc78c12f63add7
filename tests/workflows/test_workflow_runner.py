"""The worker's sandbox skips the SDK's per-payload serialization-context look-ups only while
Stellar's data converter has no codec and no external storage (core/workflow_runner.py), and
workflows run on it as on the SDK's own: pydantic payloads both ways, activities in between."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from temporalio.converter import PayloadCodec
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from bench.ceiling_workflow import TwoActivities, noop
from core.temporal import DATA_CONVERTER
from core.workflow_runner import ContextFreeSandboxRunner, context_free
from models.orders import OrderRef
from tests.workflows.sandbox_probe import ConverterProbe
from worker import worker_options, workflow_runner

pytestmark = pytest.mark.timeout(120)


class _Identity(PayloadCodec):
    async def encode(self, payloads):  # type: ignore[no-untyped-def]
        return list(payloads)

    async def decode(self, payloads):  # type: ignore[no-untyped-def]
        return list(payloads)


def test_the_runner_skips_the_lookups_only_for_a_converter_without_codec_or_storage():
    runner = workflow_runner()
    assert context_free(DATA_CONVERTER) and isinstance(runner, ContextFreeSandboxRunner)
    assert isinstance(runner, SandboxedWorkflowRunner)  # the same sandbox and restrictions
    assert not context_free(dataclasses.replace(DATA_CONVERTER, payload_codec=_Identity()))


async def test_workflows_run_on_it_with_pydantic_payloads_and_activities(temporal_env):
    queue = f"runner-{uuid.uuid4().hex[:6]}"
    async with Worker(temporal_env.client, task_queue=queue, workflows=[ConverterProbe, TwoActivities],
                      activities=[noop], **worker_options(TwoActivities.__module__)):
        probe = await temporal_env.client.execute_workflow(
            ConverterProbe.run, OrderRef(order_id=7), id=f"{queue}-probe", task_queue=queue)
        two = await temporal_env.client.execute_workflow(
            TwoActivities.run, 40, id=f"{queue}-two", task_queue=queue)
    assert probe == OrderRef(order_id=7) and two == 41
