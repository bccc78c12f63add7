"""The SDK's workflow sandbox without its per-payload serialization-context look-ups, for a worker
whose data converter has no payload codec and no external storage (Stellar's: core/temporal.py).

Why: before a workflow activation's payloads are decoded and after its completion's are encoded
(each on the worker's event loop), the SDK asks the workflow instance, for every payload sequence
and pass (reference decode, external storage, codec), which serialization context applies. A
sandboxed instance answers by running code inside its sandbox (``exec`` of a source string, under
the sandbox's importer): about a fifth of the worker main thread's CPU in the order bench
(bench/orders_e2e.py with ``BENCH_WORKER_PROFILE``). The context only selects which codec or
storage driver handles those payloads; with neither configured every one of those passes returns
its payloads unchanged, whatever the context. The conversion of payloads to values runs inside the
sandbox with the instance's own context-aware converters and is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import temporalio.bridge.proto.workflow_activation
import temporalio.bridge.proto.workflow_completion
import temporalio.converter
import temporalio.workflow
from temporalio.converter._extstore import StorageDriverStoreContext
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker import _command_aware_visitor
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner


def context_free(converter: temporalio.converter.DataConverter) -> bool:
    """True when ``converter`` has neither a payload codec nor external storage: no serialization
    context changes what the worker does to its payloads outside the sandbox."""
    return converter.payload_codec is None and converter.external_storage is None


class _ContextFreeInstance(WorkflowInstance):
    """A sandboxed workflow instance that answers the context look-ups without entering its sandbox:
    no context (the worker then uses its converter as configured) and no storage target."""

    def __init__(self, inner: WorkflowInstance) -> None:
        self._inner = inner

    def activate(
        self, act: temporalio.bridge.proto.workflow_activation.WorkflowActivation
    ) -> temporalio.bridge.proto.workflow_completion.WorkflowActivationCompletion:
        return self._inner.activate(act)

    def get_serialization_context(
        self, command_info: _command_aware_visitor.CommandInfo | None
    ) -> temporalio.converter.SerializationContext | None:
        return None

    def get_external_store_context(
        self, command_info: _command_aware_visitor.CommandInfo | None
    ) -> StorageDriverStoreContext:
        return StorageDriverStoreContext(target=None)

    def get_info(self) -> temporalio.workflow.Info:
        return self._inner.get_info()

    def get_thread_id(self) -> int | None:
        return self._inner.get_thread_id()


@dataclass(frozen=True)
class ContextFreeSandboxRunner(SandboxedWorkflowRunner):
    """:class:`SandboxedWorkflowRunner` (same restrictions, same sandbox per run) whose instances
    skip the serialization-context look-ups. Only for a worker whose client's data converter is
    :func:`context_free` (``worker.workflow_runner`` checks)."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _ContextFreeInstance(super().create_instance(det))
