"""The ledger side of the daily Stripe reconciliation: what Stripe says was paid vs what the
ledger granted.

* A paid subscription invoice whose grant (``invoice:<id>``) is missing is **missing**; with
  ``repair`` it is sent to the customer's ``SubscriptionWorkflow`` as a fact (signal-with-start),
  which grants it exactly once and knows whether the subscription has ended since.
* A succeeded pack PaymentIntent whose grant (``payment:<id>``) is missing is **missing**; with
  ``repair`` it is applied here (grant + payment completed, exactly once by its key).
* A ledger grant for an invoice or payment Stripe does not show as paid in the window is
  **unexplained**: reported, never clawed back automatically (a human looks at it).
* A refunded or disputed charge (refunds and disputes of the window) is folded in like its webhook
  (``billing.reversals``: the same state whatever was missed); when that moves credits it is
  listed in ``reversed`` — the webhook had been missed.
* With ``repair``, manual plans past their period end are ended and their subscription credits
  expire (``billing.manual_plans``; nobody else sends that fact): ``manual_plans_ended``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from billing.allowance import invoice_allowance
from billing.fact_forwarding import forward_fact
from billing.manual_plans import expire_manual_plans
from billing.stripe_effects import PAYMENT, apply_fact, invoice_key, payment_key
from models.db import LedgerEntry
from models.payment_workflows import ReconcileItem, ReconcileLedgerInput, ReconciliationReport

log = structlog.get_logger(__name__)
ENTRY = LedgerEntry.__table__


class ReconcileActivities:
    """``engine``: the async engine; repairs of subscription invoices use the worker's Temporal client."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def _existing(self, keys: list[str]) -> set[str]:
        if not keys:
            return set()
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(ENTRY.c.idempotency_key).where(ENTRY.c.idempotency_key.in_(keys)))
        return {r[0] for r in rows}

    @activity.defn(name="payments.reconcile_ledger")
    async def reconcile_ledger(self, inp: ReconcileLedgerInput) -> ReconciliationReport:
        objs, opts = inp.objects, inp.options
        report = ReconciliationReport(checked_invoices=len(objs.invoices),
                                      checked_payment_intents=len(objs.payment_intents))
        invoices = {f.invoice_id: f for f in objs.invoices if f.invoice_id and invoice_allowance(f.lines) > 0}
        intents = {f.payment_id: f for f in objs.payment_intents if f.payment_id is not None}
        have = await self._existing([invoice_key(i) for i in invoices] + [payment_key(p) for p in intents])
        task_queue = activity.info().task_queue

        for inv_id, fact in invoices.items():
            if invoice_key(inv_id) in have:
                continue
            item = ReconcileItem(kind="invoice", stripe_id=inv_id, customer_id=fact.customer_id,
                                 idempotency_key=invoice_key(inv_id), credits=invoice_allowance(fact.lines),
                                 detail="paid in Stripe, no grant in the ledger")
            report.missing.append(item)
            if opts.repair:
                where = await forward_fact(activity.client(), self.engine, fact, task_queue)
                report.repaired.append(item.model_copy(update={"detail": f"sent to {where}"}))
        for pid, fact in intents.items():
            if payment_key(pid) in have:
                continue
            item = ReconcileItem(kind="payment", stripe_id=fact.payment_intent_id or "", customer_id=fact.customer_id,
                                 idempotency_key=payment_key(pid), detail="succeeded in Stripe, no grant in the ledger")
            report.missing.append(item)
            if opts.repair:
                out = await apply_fact(self.engine, fact)
                report.repaired.append(item.model_copy(update={"credits": out.credits, "detail": out.note}))

        for fact in objs.reversals:
            out = await apply_fact(self.engine, fact)
            if out.credits:
                report.reversed.append(ReconcileItem(
                    kind=fact.kind, stripe_id=fact.dispute_id or fact.charge_id or "", customer_id=fact.customer_id,
                    idempotency_key=f"reversal:{fact.charge_id}", credits=out.credits, detail=out.note))

        if opts.repair:
            report.manual_plans_ended = await expire_manual_plans(self.engine)

        since = datetime.now(timezone.utc) - timedelta(days=opts.lookback_days)
        async with self.engine.connect() as conn:
            grants = (await conn.execute(
                sa.select(ENTRY.c.customer_id, ENTRY.c.reference_type, ENTRY.c.reference_id,
                          ENTRY.c.idempotency_key, ENTRY.c.amount, PAYMENT.c.stripe_payment_intent_id)
                .select_from(ENTRY.outerjoin(PAYMENT, sa.and_(ENTRY.c.reference_type == "payment",
                                                              sa.cast(PAYMENT.c.id, sa.String) == ENTRY.c.reference_id)))
                .where(ENTRY.c.kind == "grant", ENTRY.c.reference_type.in_(("invoice", "payment")),
                       ENTRY.c.created_at >= since))).all()
        paid_invoices = {f.invoice_id for f in objs.invoices}
        paid_intents = {f.payment_intent_id for f in objs.payment_intents}
        for g in grants:
            ok = (g.reference_id in paid_invoices) if g.reference_type == "invoice" else (
                g.stripe_payment_intent_id in paid_intents)
            if not ok:
                report.unexplained.append(ReconcileItem(
                    kind=g.reference_type, stripe_id=g.reference_id if g.reference_type == "invoice"
                    else (g.stripe_payment_intent_id or ""), customer_id=g.customer_id,
                    idempotency_key=g.idempotency_key, credits=g.amount,
                    detail="granted, but not paid in Stripe within the window"))
        log.info("stripe.reconciled", invoices=report.checked_invoices, intents=report.checked_payment_intents,
                 missing=len(report.missing), repaired=len(report.repaired), unexplained=len(report.unexplained),
                 reversed=len(report.reversed))
        return report
