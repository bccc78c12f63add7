"""Client-side helper to start ``CustomerSetWorkflow`` (used by the API; docs/sets.md), beside
``core/order_control.py`` for orders: client code, never imported by a workflow.
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from models.customer_sets import SetSyncInput, SetSyncResult
from models.temporal_contract import CUSTOMER_SET_WORKFLOW, customer_set_workflow_id


async def start_set_sync(client: Client, set_id: int, version: int, *, task_queue: str) -> str:
    """Start ``CustomerSetWorkflow`` for change ``version`` of customer Set ``set_id`` (its row is
    committed); returns the workflow id. Idempotent: the same change started twice is one
    workflow (``USE_EXISTING``, then ``REJECT_DUPLICATE`` once closed). Raises RPCError when
    Temporal is unreachable."""
    workflow_id = customer_set_workflow_id(set_id, version)
    try:
        await client.start_workflow(
            CUSTOMER_SET_WORKFLOW, SetSyncInput(set_id=set_id), id=workflow_id, task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            result_type=SetSyncResult,
        )
    except WorkflowAlreadyStartedError:
        pass
    return workflow_id
