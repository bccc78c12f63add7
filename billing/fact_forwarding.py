"""Route a Stripe fact to the workflow that owns it (used by the webhook and the reconciliation).

* subscription and invoice facts → ``subscription-<customer id>`` (``SubscriptionWorkflow``, an
  entity workflow per customer), by signal-with-start: it is started if it is not running;
* refunds and disputes (``charge_refunded``, ``charge_dispute``) → applied here at once
  (``billing.reversals``: one transaction with the event row; no workflow owns a charge, and the
  fold is the same in any order);
* pack PaymentIntent facts → ``payment-<payment id>`` (``PackPaymentWorkflow``) while it runs; once
  it has finished the payment is settled, and a late success is applied here directly (exactly
  once by its ledger key: the customer paid, so the credits are due).

The customer is found by the Stripe customer id we stored (``customer.stripe_customer_id``);
``metadata.stellar_customer_id`` counts only for a fact that names no Stripe customer
(``billing.stripe_effects.trusted_customer``). Facts of unknown customers are dropped (logged).
"""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from billing.plans import plan_table
from billing.stripe_effects import REVERSAL_KINDS, apply_fact, trusted_customer
from models.payment_workflows import SubscriptionWorkflowInput
from models.payments import StripeFact
from models.temporal_contract import SUBSCRIPTION_WORKFLOW, payment_workflow_id, subscription_workflow_id

log = structlog.get_logger(__name__)

FACT_SIGNAL = "stripe_fact"


async def resolve_customer(engine: AsyncEngine, fact: StripeFact) -> int | None:
    """Our customer id for the fact (``billing.stripe_effects.trusted_customer``), or None."""
    async with engine.connect() as conn:
        return await trusted_customer(conn, fact)


async def forward_fact(client: Client, engine: AsyncEngine, fact: StripeFact, task_queue: str) -> str:
    """Deliver ``fact``; returns where it went (a workflow id, ``applied``, or ``ignored: …``).
    Raises temporalio RPCError when Temporal is unreachable (the webhook then answers 503 and
    Stripe retries)."""
    if fact.kind in REVERSAL_KINDS:
        out = await apply_fact(engine, fact)
        return f"applied: {out.note or 'nothing to do'}" + (f" ({out.credits:+d} credits)" if out.credits else "")
    if fact.kind.startswith("payment_intent_"):
        if fact.payment_id is None:
            return "ignored: not a credit-pack PaymentIntent"
        wid = payment_workflow_id(fact.payment_id)
        try:
            await client.get_workflow_handle(wid).signal(FACT_SIGNAL, fact)
            return wid
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
        if fact.kind == "payment_intent_succeeded":
            out = await apply_fact(engine, fact)
            log.info("stripe.late_payment_applied", payment_id=fact.payment_id, credits=out.credits,
                     duplicate=out.duplicate)
            return "applied"
        return "ignored: payment already settled"

    customer_id = await resolve_customer(engine, fact)
    if customer_id is None:
        log.warning("stripe.fact_unknown_customer", kind=fact.kind, event_id=fact.event_id,
                    stripe_customer=fact.stripe_customer_id)
        return "ignored: unknown customer"
    fact = fact.model_copy(update={"customer_id": customer_id})
    wid = subscription_workflow_id(customer_id)
    await client.start_workflow(
        SUBSCRIPTION_WORKFLOW, SubscriptionWorkflowInput(customer_id=customer_id, plans=plan_table()), id=wid,
        task_queue=task_queue, start_signal=FACT_SIGNAL, start_signal_args=[fact])
    return wid
