"""Every payload converter of the process — the one the worker builds for each workflow run it
holds included — decodes pydantic models with one shared ``TypeAdapter`` cache
(``core.temporal.PYDANTIC_JSON_CONVERTER``), so a waiting order keeps no adapters of its own
(bench/worker_memory.py), and the payloads stay the SDK pydantic converter's bytes."""

from __future__ import annotations

import uuid

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from core.temporal import DATA_CONVERTER, PYDANTIC_JSON_CONVERTER
from models.orders import OrderRef, SessionSignal
from tests.workflows.sandbox_probe import ConverterProbe
from worker import workflow_runner

pytestmark = pytest.mark.timeout(120)


def test_payload_converters_share_one_pydantic_json_converter():
    a, b = DATA_CONVERTER.payload_converter_class(), DATA_CONVERTER.payload_converter_class()
    assert a is not b
    assert a.converters[b"json/plain"] is b.converters[b"json/plain"] is PYDANTIC_JSON_CONVERTER


def test_payloads_are_the_sdk_pydantic_converters_bytes_both_ways():
    value = SessionSignal(session_guid="s", run_guid="r", target_guid="t", result=1, exit_text="clouds")
    ours = DATA_CONVERTER.payload_converter.to_payloads([value])
    sdk = pydantic_data_converter.payload_converter.to_payloads([value])
    assert ours == sdk
    assert DATA_CONVERTER.payload_converter.from_payloads(sdk, [SessionSignal]) == [value]


async def test_workflow_runs_decode_with_the_process_wide_type_adapters(temporal_env):
    queue = f"converter-{uuid.uuid4().hex[:6]}"
    async with Worker(temporal_env.client, task_queue=queue, workflows=[ConverterProbe],
                      workflow_runner=workflow_runner()):
        async def one(i: int) -> OrderRef:
            return await temporal_env.client.execute_workflow(
                ConverterProbe.run, OrderRef(order_id=i), id=f"{queue}-{i}", task_queue=queue)

        assert await one(1) == OrderRef(order_id=1)
        before = PYDANTIC_JSON_CONVERTER._type_adapter.cache_info()
        assert [await one(i) for i in (2, 3)] == [OrderRef(order_id=2), OrderRef(order_id=3)]
        after = PYDANTIC_JSON_CONVERTER._type_adapter.cache_info()
    # Each run decoded its input through the shared cache: hits, and no adapter built again.
    assert after.hits >= before.hits + 2
