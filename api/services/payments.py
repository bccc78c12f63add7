"""Payments behind the routes: subscription commands (updates of ``subscription-<customer>``),
credit-pack purchases (``payment-<id>``), purchase history, and the Stripe webhook.

Workflow failures become the one error model, their ``ApplicationError.type`` being the HTTP
``code`` and its status coming from ``api.errors.STATUS_BY_CODE``: ``card_declined`` 402;
``unknown_plan``, ``payment_method_invalid`` 422; ``already_subscribed``, ``no_active_subscription``,
``same_plan``, ``change_pending``, ``subscription_ending``, ``already_cancelled`` 409; Stripe
unreachable or refusing 502; no worker answering within the timeout 503 ``workflow_unresponsive``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
import structlog
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from api.errors import (
    STATUS_BY_CODE,
    TEMPORAL_UNAVAILABLE,
    WORKFLOW_UNRESPONSIVE,
    ApiError,
    ErrorResponse,
    NotFound,
    domain_error,
    errors,
)
from api.resources import Resources
from billing.fact_forwarding import forward_fact
from billing.packs import Pack, UnknownPack, currency, get_pack
from billing.plans import plan_table
from billing.stripe_effects import PAYMENT, payment_row
from billing.webhooks import event_to_fact, verify_event
from models.db import Customer, Subscription
from models.payment_workflows import PackPaymentInput, PaymentIntentResult, SubscriptionWorkflowInput
from api.schemas.payments import PaymentListOut, PaymentOut, PurchaseOut
from models.payments import StripeFact, SubscriptionResult
from models.temporal_contract import (
    ERR_PAYMENT_ERROR,
    PACK_PAYMENT_WORKFLOW,
    SUBSCRIPTION_WORKFLOW,
    payment_workflow_id,
    subscription_workflow_id,
)

log = structlog.get_logger(__name__)

#: How long a command waits for its workflow (Stripe calls included) before answering 503: a
#: request must not hang when no worker runs. The workflow goes on; the command is safe to retry.
COMMAND_TIMEOUT_S = 90.0
PURCHASE_TIMEOUT_S = 30.0

def payment_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``errors(...)`` plus 502 (Stripe unreachable or refusing), which the shared table lacks."""
    out = errors(*[c for c in codes if c != 502])
    if 502 in codes:
        out[502] = {"model": ErrorResponse, "description": "Stripe is unreachable or refused the request"}
    return out


class PaymentFailed(ApiError):
    """A payment command the workflow refused or Stripe declined."""


def _failure(exc: WorkflowUpdateFailedError) -> ApiError:
    cause = exc.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause
    code = (cause.type if isinstance(cause, ApplicationError) else None) or ERR_PAYMENT_ERROR
    message = cause.message if isinstance(cause, ApplicationError) else str(exc)
    return PaymentFailed(message, code=code, status_code=STATUS_BY_CODE.get(code, 502))


async def subscription_command(res: Resources, client: Client, customer_id: int, update: str, arg: Any,
                               result_type: type) -> Any:
    """Run ``update`` on the customer's ``SubscriptionWorkflow`` (started if needed) and return its
    result. Raises PaymentFailed (see the module doc) or ServiceUnavailable."""
    op = WithStartWorkflowOperation(
        SUBSCRIPTION_WORKFLOW, SubscriptionWorkflowInput(customer_id=customer_id, plans=plan_table()),
        id=subscription_workflow_id(customer_id), id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        task_queue=res.settings.temporal.task_queue)
    try:
        async with asyncio.timeout(COMMAND_TIMEOUT_S):
            return await client.execute_update_with_start_workflow(
                update, arg, start_workflow_operation=op, result_type=result_type)
    except WorkflowUpdateFailedError as exc:
        raise _failure(exc) from None
    except RPCError as exc:
        raise domain_error(TEMPORAL_UNAVAILABLE, f"Temporal refused the request: {exc.message}") from None
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        raise _no_answer(COMMAND_TIMEOUT_S) from None


def _no_answer(seconds: float) -> ApiError:
    return domain_error(WORKFLOW_UNRESPONSIVE, f"the payments worker did not answer within {seconds:.0f} s; retry later")


async def current_subscription(res: Resources, customer_id: int) -> SubscriptionResult | None:
    """The customer's latest subscription row (any status), or None."""
    from activities.subscription_store import subscription_out

    async with res.engine.connect() as conn:
        row = (await conn.execute(sa.select(Subscription.__table__).where(
            Subscription.__table__.c.customer_id == customer_id).order_by(
            Subscription.__table__.c.id.desc()).limit(1))).first()
    return subscription_out(row) if row else None


async def create_pending_payment(res: Resources, customer_id: int, pack_id: str) -> tuple[int, Pack, str, str | None]:
    """Insert a ``pending`` payment row for ``pack_id``: (payment id, pack, currency, the customer's
    Stripe customer id or None). Raises NotFound (``unknown_pack``)."""
    try:
        pack = get_pack(pack_id)
    except UnknownPack as exc:
        raise NotFound(str(exc), code="unknown_pack") from None
    cur = currency()
    async with res.engine.begin() as conn:
        stripe_customer = (await conn.execute(sa.select(Customer.__table__.c.stripe_customer_id).where(
            Customer.__table__.c.id == customer_id))).scalar()
        payment_id = (await conn.execute(PAYMENT.insert().values(
            customer_id=customer_id, pack_id=pack.id, credits=pack.credits, bonus_credits=pack.bonus,
            amount_cents=pack.price_cents, currency=cur, status="pending", created_at=sa.func.now())
            .returning(PAYMENT.c.id))).scalar_one()
    log.info("payment.created", payment_id=payment_id, customer_id=customer_id, pack=pack.id)
    return payment_id, pack, cur, stripe_customer


async def purchase_pack(res: Resources, client: Client, customer_id: int, pack_id: str,
                        payment_method_id: str | None) -> PurchaseOut:
    """Create the pending payment row, start its workflow and return the PaymentIntent's client
    secret. Raises NotFound (``unknown_pack``), PaymentFailed (502 ``payment_unavailable``)."""
    payment_id, pack, cur, stripe_customer = await create_pending_payment(res, customer_id, pack_id)
    inp = PackPaymentInput(
        payment_id=payment_id, customer_id=customer_id, pack_id=pack.id, amount_cents=pack.price_cents,
        currency=cur, total_credits=pack.total_credits, stripe_customer_id=stripe_customer,
        payment_method_id=payment_method_id, ttl_seconds=res.settings.billing.pending_payment_ttl_hours * 3600)
    op = WithStartWorkflowOperation(
        PACK_PAYMENT_WORKFLOW, inp, id=payment_workflow_id(payment_id),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING, task_queue=res.settings.temporal.task_queue)
    try:
        async with asyncio.timeout(PURCHASE_TIMEOUT_S):
            intent: PaymentIntentResult = await client.execute_update_with_start_workflow(
                "intent", start_workflow_operation=op, result_type=PaymentIntentResult)
    except WorkflowUpdateFailedError as exc:
        raise _failure(exc) from None
    except RPCError as exc:
        raise domain_error(TEMPORAL_UNAVAILABLE, f"Temporal refused the request: {exc.message}") from None
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        # The pending payment stays; its workflow, once a worker runs, cancels it after the time to live.
        raise _no_answer(PURCHASE_TIMEOUT_S) from None
    payment = await get_payment(res, customer_id, payment_id)
    assert payment is not None
    return PurchaseOut(payment=payment, client_secret=intent.client_secret, payment_intent_status=intent.status)


async def get_payment(res: Resources, customer_id: int, payment_id: int) -> PaymentOut | None:
    async with res.engine.connect() as conn:
        row = (await conn.execute(sa.select(PAYMENT).where(PAYMENT.c.id == payment_id,
                                                           PAYMENT.c.customer_id == customer_id))).first()
    return PaymentOut(**payment_row(row)) if row else None


async def list_payments(res: Resources, customer_id: int, limit: int, offset: int) -> PaymentListOut:
    """The customer's purchases, newest first."""
    async with res.engine.connect() as conn:
        rows = (await conn.execute(sa.select(PAYMENT).where(PAYMENT.c.customer_id == customer_id)
                                   .order_by(PAYMENT.c.id.desc()).limit(limit).offset(offset))).all()
    return PaymentListOut(payments=[PaymentOut(**payment_row(r)) for r in rows])


def parse_webhook(res: Resources, payload: bytes, signature: str | None) -> tuple[dict[str, Any], StripeFact | None]:
    """Verify the raw body's signature and reduce the event to a fact (None: type not handled).
    Raises WebhookSignatureError (→ 400; nothing changes)."""
    st = res.settings.stripe
    event = verify_event(payload, signature, st.webhook_secret.get_secret_value(), st.webhook_tolerance)
    return event, event_to_fact(event)


async def route_fact(res: Resources, client: Client, event: dict[str, Any], fact: StripeFact) -> dict[str, str]:
    """Forward the fact to its workflow. Raises RPCError (Temporal down → 503, Stripe retries)."""
    routed = await forward_fact(client, res.engine, fact, res.settings.temporal.task_queue)
    log.info("stripe.webhook_received", event_id=event["id"], type=event["type"], routed=routed)
    return {"received": event["id"], "routed": routed}


__all__ = ["PaymentFailed", "subscription_command", "purchase_pack", "list_payments",
           "current_subscription", "parse_webhook", "route_fact"]
