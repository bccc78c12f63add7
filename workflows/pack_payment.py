"""``PackPaymentWorkflow``: one credit-pack purchase (id ``payment-<payment id>``), from the pending
record to ``completed`` (credits granted once) or ``cancelled``/``failed`` (docs/payments.md,
docs/pricing.md §7).

1. Create the PaymentIntent (Stripe idempotency key = the payment id) and link it to the row;
   the ``intent`` update returns its client secret to the API.
2. Wait for a Stripe fact (``stripe_fact`` signal from the webhook) or the time to live
   (``settings.billing.pending_payment_ttl_hours``, a durable timer):
   * ``payment_intent_succeeded`` → grant the pack's credits + bonus (ledger key
     ``payment:<id>``) and mark it completed, in one transaction with the event id;
   * ``payment_intent_failed`` / ``payment_intent_canceled`` or the timer → cancel the
     PaymentIntent at Stripe first (so it can no longer be paid), then mark the payment failed /
     cancelled. If Stripe says it succeeded meanwhile, it is credited instead.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.payment_store import PaymentStore
    from activities.stripe_ops import StripeActivities
    from activities.subscription_store import SubscriptionStore
    from models import temporal_contract as contract
    from models.payment_workflows import (
        AttachIntentInput,
        CancelPaymentIntentInput,
        ClosePaymentInput,
        CreatePaymentIntentInput,
        PackPaymentInput,
        PackPaymentResult,
        PaymentIntentResult,
    )
    from models.payments import FactBatch, StripeFact
    from workflows._payment_options import DB_CALL, STRIPE_CALL


@workflow.defn(name=contract.PACK_PAYMENT_WORKFLOW)
class PackPaymentWorkflow:
    @workflow.init
    def __init__(self, inp: PackPaymentInput) -> None:
        self.inp = inp
        self._intent: PaymentIntentResult | None = None
        self._error: str | None = None
        self._facts: list[StripeFact] = []
        self._seen: set[str] = set()
        self._status = "pending"

    @workflow.run
    async def run(self, inp: PackPaymentInput) -> PackPaymentResult:
        workflow.upsert_search_attributes([contract.SA_CUSTOMER_ID.value_set(str(inp.customer_id))])
        try:
            intent = await workflow.execute_activity_method(
                StripeActivities.create_payment_intent, CreatePaymentIntentInput(
                    payment_id=inp.payment_id, customer_id=inp.customer_id, pack_id=inp.pack_id,
                    amount_cents=inp.amount_cents, currency=inp.currency,
                    stripe_customer_id=inp.stripe_customer_id, payment_method_id=inp.payment_method_id),
                **STRIPE_CALL)
        except ActivityError as exc:
            self._error = str(exc.cause or exc)
            self._status = await self._close("failed")
            return await self._result()
        await workflow.execute_activity_method(PaymentStore.attach_intent, AttachIntentInput(
            payment_id=inp.payment_id, payment_intent_id=intent.payment_intent_id), **DB_CALL)
        self._intent = intent  # linked to the row: the ``intent`` update may answer now
        if intent.fact is not None:  # confirmed server-side: the outcome is already known
            self._facts.append(intent.fact)

        deadline = workflow.now() + timedelta(seconds=inp.ttl_seconds)
        while self._status == "pending":
            remaining = (deadline - workflow.now()).total_seconds()
            if remaining <= 0:
                await self._give_up("cancelled")
                break
            try:
                await workflow.wait_condition(lambda: bool(self._facts), timeout=timedelta(seconds=remaining))
            except TimeoutError:
                await self._give_up("cancelled")
                break
            await self._drain()
        return await self._result()

    async def _result(self) -> PackPaymentResult:
        await workflow.wait_condition(workflow.all_handlers_finished)
        return PackPaymentResult(payment_id=self.inp.payment_id, status=self._status,
                                 payment_intent_id=self._intent.payment_intent_id if self._intent else None)

    async def _drain(self) -> None:
        batch, self._facts = self._facts, []
        for fact in batch:
            if self._status != "pending":
                return
            if fact.kind == "payment_intent_succeeded":
                await self._credit(fact)
            elif fact.kind in ("payment_intent_failed", "payment_intent_canceled"):
                await self._record(fact)
                await self._give_up("failed" if fact.kind == "payment_intent_failed" else "cancelled")

    async def _record(self, fact: StripeFact) -> None:
        await workflow.execute_activity_method(SubscriptionStore.apply_facts, FactBatch(facts=[fact]), **DB_CALL)

    async def _credit(self, fact: StripeFact) -> None:
        res = await workflow.execute_activity_method(SubscriptionStore.apply_facts, FactBatch(facts=[fact]), **DB_CALL)
        outcome = res.outcomes[0]
        if outcome.error:
            workflow.logger.error("payment %s not credited: %s", self.inp.payment_id, outcome.error)
        self._status = "completed"

    async def _give_up(self, status: str) -> None:
        """Cancel the PaymentIntent at Stripe, then close the record — unless it was paid meanwhile."""
        assert self._intent is not None
        out = await workflow.execute_activity_method(StripeActivities.cancel_payment_intent, CancelPaymentIntentInput(
            payment_intent_id=self._intent.payment_intent_id, payment_id=self.inp.payment_id), **STRIPE_CALL)
        if out.fact is not None:
            await self._credit(out.fact)
            return
        self._status = await self._close(status)

    async def _close(self, status: str) -> str:
        return await workflow.execute_activity_method(
            PaymentStore.close_payment, ClosePaymentInput(payment_id=self.inp.payment_id, status=status), **DB_CALL)

    @workflow.signal(name="stripe_fact")
    def stripe_fact(self, fact: StripeFact) -> None:
        if fact.event_id:
            if fact.event_id in self._seen:
                return
            self._seen.add(fact.event_id)
        self._facts.append(fact)

    @workflow.update
    async def intent(self) -> PaymentIntentResult:
        """The PaymentIntent's id, client secret and status once created (and, when it was confirmed
        server-side, once the payment is settled). Fails with ``payment_unavailable`` when Stripe
        refused to create it."""
        await workflow.wait_condition(lambda: self._intent is not None or self._error is not None)
        if self._intent is None:
            raise ApplicationError(f"the payment could not be created: {self._error}", type=contract.ERR_PAYMENT_UNAVAILABLE)
        if self._intent.fact is not None:  # confirmed server-side: answer with the settled record
            await workflow.wait_condition(lambda: self._status != "pending")
        return self._intent

    @workflow.query
    def status(self) -> PackPaymentResult:
        return PackPaymentResult(payment_id=self.inp.payment_id, status=self._status,
                                 payment_intent_id=self._intent.payment_intent_id if self._intent else None)
