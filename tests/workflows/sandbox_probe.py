"""``SandboxProbe``: a workflow that reports the identity of the objects it sees inside the
workflow sandbox, so a test can tell which modules the sandbox passed through from the worker
process and which it imported again. Imports at module level and without
``imports_passed_through()`` on purpose: only the runner's passthrough list decides."""

from __future__ import annotations

import pydantic
from temporalio import workflow

import models.orders
import workflows._options
import workflows.order

#: What the probe reports: a name → the object seen inside the sandbox.
PROBED = {
    "workflows.order.OrderWorkflow": lambda: workflows.order.OrderWorkflow,
    "workflows._options.NON_RETRYABLE": lambda: workflows._options.NON_RETRYABLE,
    "models.orders.SubmitRequest": lambda: models.orders.SubmitRequest,
    "models.orders.OrderReport": lambda: models.orders.OrderReport,
    "pydantic.BaseModel": lambda: pydantic.BaseModel,
}


@workflow.defn(name="TestSandboxProbe")
class SandboxProbe:
    @workflow.run
    async def run(self) -> dict[str, int]:
        """``id()`` of each :data:`PROBED` object as the sandbox sees it."""
        return {name: id(get()) for name, get in PROBED.items()}


@workflow.defn(name="TestConverterProbe")
class ConverterProbe:
    """Takes and returns a model of ``models`` (passed through): its payloads are decoded by the
    run's own payload converter, as an order's are."""

    @workflow.run
    async def run(self, ref: models.orders.OrderRef) -> models.orders.OrderRef:
        return ref
