"""``ReconciliationWorkflow``: compare what Stripe says was paid (subscription invoices, pack
PaymentIntents) with the ledger, repair what is missing and report the rest. Run daily by the
Temporal Schedule ``stripe-reconciliation`` (``core/schedules.py``).

The Stripe side looks back two days more than the ledger side, so a grant near the window's edge
is not reported as unexplained just because its invoice was created before the ledger window.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.reconciliation import ReconcileActivities
    from activities.stripe_ops import StripeActivities
    from models import temporal_contract as contract
    from models.payment_workflows import ReconcileInput, ReconcileLedgerInput, ReconciliationReport
    from workflows._payment_options import RECONCILE_CALL

STRIPE_MARGIN_DAYS = 2


@workflow.defn(name=contract.RECONCILIATION_WORKFLOW)
class ReconciliationWorkflow:
    @workflow.run
    async def run(self, inp: ReconcileInput) -> ReconciliationReport:
        wide = inp.model_copy(update={"lookback_days": inp.lookback_days + STRIPE_MARGIN_DAYS})
        objects = await workflow.execute_activity_method(StripeActivities.list_paid, wide, **RECONCILE_CALL)
        report = await workflow.execute_activity_method(
            ReconcileActivities.reconcile_ledger, ReconcileLedgerInput(objects=objects, options=inp), **RECONCILE_CALL)
        if report.reversed:
            workflow.logger.warning("reconciliation: %d missed refunds/disputes applied", len(report.reversed))
        if report.missing or report.unexplained:
            workflow.logger.warning("reconciliation: %d missing (%d repaired), %d unexplained",
                                    len(report.missing), len(report.repaired), len(report.unexplained))
        return report
