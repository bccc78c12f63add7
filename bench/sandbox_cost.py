"""What the workflow sandbox itself costs per workflow run: the Python memory of creating one
workflow instance (the sandbox's importer, its module table, its own copies of modules not passed
through, the workflow object), with no server and no history (bench/worker_memory.py).

    python -m bench.sandbox_cost [--instances 200]

Prints JSON: workflow → runner → bytes per instance (``tracemalloc``: every Python allocation,
small or large, traced while ``--instances`` instances are created and kept) and ``own_modules``:
the modules each sandboxed run imports again instead of taking the worker's. Workflows: Stellar's
``OrderWorkflow`` and the bench's ``BenchBareWaiting``; runners: ``worker.workflow_runner`` (what
the worker runs; the bare workflow's module passed through as ``workflows`` is), the SDK's default
sandbox, ``UnsandboxedWorkflowRunner``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tracemalloc
from typing import Any

import temporalio.converter
import temporalio.workflow
from temporalio.api.common.v1.message_pb2 import Payloads
from temporalio.api.failure.v1.message_pb2 import Failure
from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowInstanceDetails, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._runner import _fake_info

from bench.ceiling_workflow import BareWaiting
from core.temporal import DATA_CONVERTER
from worker import workflow_runner
from workflows.order import OrderWorkflow


def _details(cls: type) -> WorkflowInstanceDetails:
    """What the worker hands a runner for a new run, with the SDK's placeholder info (as its own
    start-up validation does)."""
    return WorkflowInstanceDetails(
        payload_converter_factory=DATA_CONVERTER._new_payload_converter,
        failure_converter_class=DATA_CONVERTER.failure_converter_class,
        interceptor_classes=[], defn=temporalio.workflow._Definition.must_from_class(cls), info=_fake_info,
        randomness_seed=-1, extern_functions={}, disable_eager_activity_execution=False,
        worker_level_failure_exception_types=[], patch_activation_callback=None,
        last_completion_result=Payloads(), last_failure=Failure())


def instance_cost(cls: type, runner: WorkflowRunner, instances: int) -> dict[str, Any]:
    """Bytes per instance of ``cls`` created by ``runner`` (past the first, which may import), and
    the modules a sandboxed instance holds copies of."""
    keep = [runner.create_instance(_details(cls))]
    importer = getattr(keep[0], "importer", None)
    own = sorted(k for k, m in (importer.new_modules.items() if importer else ())
                 if sys.modules.get(k) is not m and k != "__main__")
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    keep += [runner.create_instance(_details(cls)) for _ in range(instances)]
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return {"bytes": (after - before) / instances, "own_modules": own}


async def measure(instances: int = 200) -> dict[str, dict[str, dict[str, Any]]]:
    """workflow name → runner name → :func:`instance_cost` (needs a running loop: an instance is an
    event loop of its own)."""
    runners: dict[str, Any] = {
        "worker": lambda cls: workflow_runner(cls.__module__) if cls is BareWaiting else workflow_runner(),
        "sdk default sandbox": lambda cls: SandboxedWorkflowRunner(),
        "unsandboxed": lambda cls: UnsandboxedWorkflowRunner(),
    }
    return {cls.__name__: {name: instance_cost(cls, make(cls), instances) for name, make in runners.items()}
            for cls in (OrderWorkflow, BareWaiting)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200)
    a = parser.parse_args(argv)
    print(json.dumps(asyncio.run(measure(a.instances))))


if __name__ == "__main__":
    main()
