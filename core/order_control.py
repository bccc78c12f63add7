"""Client side of ``OrderWorkflow``: start it, abort it, query it (used by the API, the repair
sweep and the CLI).

Client code, not workflow code: it talks to the Temporal server through a ``Client`` and shares
only the contract (``models/temporal_contract.py``) and the payloads (``models/orders.py``) with
``workflows/order.py``. The API inserts the Order and
OrderShot rows first, then calls :func:`start_order_workflow`; aborts go through the workflow's
``abort`` update (:func:`abort_order`), reads through its ``status`` query.
"""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from models.temporal_contract import (
    ERR_ABORT_REFUSED,
    ORDER_WORKFLOW,
    SA_CUSTOMER_ID,
    SA_ORDER_STATUS,
    SA_PLAN,
    SA_TELESCOPE,
    SA_TARGET_NAME,
    order_workflow_id,
)
from models.orders import (
    AbortRequest,
    AbortResult,
    AbortRole,
    OrderStatus,
    OrderStatusView,
    OrderWorkflowInput,
    OrderWorkflowResult,
    StatusQuery,
)

class OrderControlError(Exception):
    """Base of the order-control errors. ``code``: stable machine-readable id (for api/errors.py)."""

    code = "order_control_error"

    def __init__(self, order_id: int, message: str) -> None:
        super().__init__(message)
        self.order_id = order_id


class OrderWorkflowNotFound(OrderControlError):
    """No workflow ``order-<id>`` (never started, or past the namespace's retention)."""

    code = "order_workflow_not_found"


class AbortRefused(OrderControlError):
    """The order is settling or done: too late to abort. ``status``: the order's status then."""

    code = ERR_ABORT_REFUSED

    def __init__(self, order_id: int, message: str, status: str | None = None) -> None:
        super().__init__(order_id, message)
        self.status = status


async def start_order_workflow(
    client: Client,
    order_id: int,
    *,
    customer_id: int,
    plan: str,
    target_name: str,
    task_queue: str,
    restart_failed: bool = False,
    telescope: str = "",
) -> str:
    """Start ``OrderWorkflow`` for an order whose rows are committed; returns its workflow id.

    Idempotent: id ``order-<order_id>`` with ``USE_EXISTING`` while it runs (a retried API call gets
    the running workflow) and ``REJECT_DUPLICATE`` once closed (an order runs once, ever; starting a
    finished order returns its id and starts nothing). ``restart_failed``: for an order still
    ``pending`` (nothing held), a run that failed, was terminated or cancelled may be replaced by a
    new one (``ALLOW_DUPLICATE_FAILED_ONLY``); a completed run never is. Sets the search attributes
    ``CustomerId``, ``OrderStatus`` (``pending``), ``TargetName``, ``Plan``, ``Telescope`` (its slug;
    omitted when empty) and the ``summary`` memo.
    """
    workflow_id = order_workflow_id(order_id)
    try:
        handle = await client.start_workflow(
            ORDER_WORKFLOW,
            OrderWorkflowInput(order_id=order_id, customer_id=customer_id, plan=plan, target_name=target_name),
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=(WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY if restart_failed
                             else WorkflowIDReusePolicy.REJECT_DUPLICATE),
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(SA_CUSTOMER_ID, str(customer_id)),
                SearchAttributePair(SA_ORDER_STATUS, OrderStatus.PENDING.value),
                SearchAttributePair(SA_TARGET_NAME, target_name),
                SearchAttributePair(SA_PLAN, plan),
                *([SearchAttributePair(SA_TELESCOPE, telescope)] if telescope else []),
            ]),
            memo={"summary": {"order_id": order_id, "customer_id": customer_id, "plan": plan,
                              "target_name": target_name, "status": OrderStatus.PENDING.value,
                              **({"telescope": telescope} if telescope else {})}},
            result_type=OrderWorkflowResult,
        )
    except WorkflowAlreadyStartedError:
        return workflow_id
    return handle.id


def order_handle(client: Client, order_id: int) -> WorkflowHandle:
    return client.get_workflow_handle(order_workflow_id(order_id), result_type=OrderWorkflowResult)


async def abort_order(client: Client, order_id: int, reason: str, requested_by: str, *,
                      role: AbortRole) -> AbortResult:
    """Abort through the ``abort`` update; returns once the workflow accepted it (the effect —
    Voyager abort, final ingest, settlement — follows asynchronously; watch the status).

    ``requested_by``: who asks, for the audit (``customer:42``, ``support:alice@example.com``);
    ``role``: the kind of abort, which decides the settlement outcome (customer or support abort,
    docs/pricing.md §6). Several aborts have one effect: later
    ones return ``first=False`` with the first requester. Raises :class:`AbortRefused` once the order
    is settling or done, :class:`OrderWorkflowNotFound` when there is no such workflow.
    """
    handle = order_handle(client, order_id)
    try:
        return await handle.execute_update(
            "abort", AbortRequest(reason=reason, requested_by=requested_by, role=role), result_type=AbortResult
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == ERR_ABORT_REFUSED:
            status = cause.details[0] if cause.details else None
            raise AbortRefused(order_id, cause.message, str(status) if status else None) from None
        raise
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    # Closed workflows reject updates with NOT_FOUND, as do missing ones: tell them apart.
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise OrderWorkflowNotFound(order_id, f"no workflow for order {order_id}") from None
        raise
    raise AbortRefused(order_id, f"order {order_id} is already finished",
                       description.typed_search_attributes.get(SA_ORDER_STATUS))


async def query_order_status(client: Client, order_id: int) -> OrderStatusView:
    """The ``status`` query: phase, status, GUIDs, money, progress. Works on closed workflows too
    (needs a running worker). Raises :class:`OrderWorkflowNotFound`."""
    try:
        return await order_handle(client, order_id).query("status", StatusQuery(), result_type=OrderStatusView)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise OrderWorkflowNotFound(order_id, f"no workflow for order {order_id}") from None
        raise
