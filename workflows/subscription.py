"""``SubscriptionWorkflow``: one per customer (id ``subscription-<customer id>``), owner of the
subscription's life cycle (docs/payments.md, docs/pricing.md §7).

* Commands are updates with validators: ``subscribe`` (create the Stripe customer, attach the
  card, create the subscription: Stripe charges the first invoice, whose credits are granted
  once), ``change_plan`` (upgrade now: prorated invoice paid, the credit difference granted;
  downgrade at period end: no proration, the next renewal is the lower plan), ``cancel`` (at
  period end: credits kept until then).
* Facts from Stripe arrive as the ``stripe_fact`` signal (the webhook uses signal-with-start) and
  are applied in batches by one activity, each exactly once (``billing.stripe_effects``): a paid
  invoice grants its allowance keyed by invoice id; the end of the subscription expires the
  subscription credits. The state is a fold of facts that is the same in any order
  (``SubscriptionState``), and is written to the ``subscription`` row after each change.
* An entity workflow: it runs for the customer's lifetime, and continues as new each billing
  period (and whenever Temporal suggests it), carrying its state and unapplied facts.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.stripe_ops import StripeActivities
    from activities.subscription_store import SubscriptionStore
    from billing.allowance import invoice_allowance
    from billing.subscription_fold import expire_flag, fold, plan_credits
    from models import temporal_contract as contract
    from models.payment_workflows import (
        AttachPaymentMethodInput,
        CancelAtPeriodEndInput,
        CancelCommand,
        ChangePlanCommand,
        ChangePlanInput,
        CreateSubscriptionInput,
        DeleteSubscriptionInput,
        PlanTable,
        SubscribeCommand,
        SubscriptionRecord,
        SubscriptionState,
        SubscriptionView,
        SubscriptionWorkflowInput,
    )
    from models.payments import (
        CancelResult,
        ChangePlanResult,
        FactBatch,
        FactOutcome,
        StripeFact,
        SubscribeResult,
        SubscriptionResult,
    )
    from workflows._payment_options import DB_CALL, FACT_RETRY_DELAY, STRIPE_CALL

MAX_SEEN_EVENTS = 2000


def _as_app_error(exc: ActivityError) -> ApplicationError:
    """An activity failure as the update's failure (``type`` = the activity's error type)."""
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        return ApplicationError(cause.message, type=cause.type or contract.ERR_PAYMENT_ERROR, non_retryable=True)
    return ApplicationError(str(cause or exc), type=contract.ERR_STRIPE_UNAVAILABLE, non_retryable=True)


def _date(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%d/%m/%Y") if ts else "?"


@workflow.defn(name=contract.SUBSCRIPTION_WORKFLOW)
class SubscriptionWorkflow:
    @workflow.init
    def __init__(self, inp: SubscriptionWorkflowInput) -> None:
        self.state = inp.state or SubscriptionState(customer_id=inp.customer_id)
        # Every plan decision reads this table, never billing.plans: replay-safe across deploys.
        self.plans = inp.plans.by_id()
        self._facts: list[StripeFact] = list(inp.pending)
        self._seen = set(self.state.seen_events)
        self._lock = asyncio.Lock()
        self._start_period_end = self.state.period_end_ts or 0

    # -- run -------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: SubscriptionWorkflowInput) -> None:
        workflow.upsert_search_attributes([contract.SA_CUSTOMER_ID.value_set(str(self.state.customer_id))])
        while True:
            await workflow.wait_condition(lambda: bool(self._facts) or self._roll_due())
            if self._facts:
                async with self._lock:
                    await self._drain()
            if self._roll_due():
                await workflow.wait_condition(workflow.all_handlers_finished)
                # The next run decides with the plan table deployed now (an activity result).
                plans = await workflow.execute_activity_method(SubscriptionStore.plan_table, **DB_CALL)
                # An update accepted while that activity ran would be lost by continue-as-new (the
                # caller gets AcceptedUpdateCompletedWorkflow): let it finish first. Nothing awaits
                # between this wait and the call, so no other update slips in.
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(SubscriptionWorkflowInput(
                    customer_id=self.state.customer_id, plans=plans, state=self.state, pending=self._facts))

    def _roll_due(self) -> bool:
        return (self.state.period_end_ts or 0) > self._start_period_end or workflow.info().is_continue_as_new_suggested()

    # -- facts -----------------------------------------------------------------------------------

    @workflow.signal(name="stripe_fact")
    def stripe_fact(self, fact: StripeFact) -> None:
        """A fact from Stripe (webhook or reconciliation). Duplicates are dropped here and in the DB."""
        if fact.event_id and fact.event_id in self._seen:
            return
        self._facts.append(fact)

    async def _drain(self) -> None:
        batch, self._facts = self._facts, []
        fresh, ids = [], set()
        for f in batch:
            if f.event_id and (f.event_id in self._seen or f.event_id in ids):
                continue
            if f.event_id:
                ids.add(f.event_id)
            fresh.append(f)
        if fresh:
            await self._apply(fresh)

    async def _apply(self, facts: list[StripeFact]) -> list[FactOutcome]:
        """Apply facts (one activity, one transaction each), then adopt the folded state."""
        sim = self.state.model_copy(deep=True)
        flags = []
        for f in facts:
            flags.append(expire_flag(sim, f, self.plans))
            fold(sim, f, self.plans)
        try:
            res = await workflow.execute_activity_method(
                SubscriptionStore.apply_facts, FactBatch(facts=facts, expire_subscription=flags), **DB_CALL)
        except ActivityError as exc:
            # The database stayed down for the whole retry policy: keep the facts and try later.
            workflow.logger.error("stripe facts not applied, retrying in %s: %s", FACT_RETRY_DELAY, exc)
            self._facts = facts + self._facts
            await workflow.sleep(FACT_RETRY_DELAY)
            return []
        for o in res.outcomes:
            if o.error:
                workflow.logger.error("stripe fact %s (%s) failed: %s", o.event_id, o.kind, o.error)
        new_ids = [f.event_id for f in facts if f.event_id]
        sim.seen_events = (sim.seen_events + new_ids)[-MAX_SEEN_EVENTS:]
        self._seen = set(sim.seen_events)
        changed = self._record(sim) != self._record(self.state)
        self.state = sim
        if changed:
            await self._save()
        return res.outcomes

    # -- the subscription row ----------------------------------------------------------------------

    def _record(self, s: SubscriptionState) -> SubscriptionRecord | None:
        if not s.stripe_subscription_id or s.plan not in self.plans:
            return None
        return SubscriptionRecord(
            customer_id=s.customer_id, stripe_subscription_id=s.stripe_subscription_id, plan=s.plan,
            status=s.status(), period_start_ts=s.period_start_ts, period_end_ts=s.period_end_ts,
            cancel_at_period_end=s.cancel_at_period_end, pending_plan=s.pending_plan)

    async def _save(self) -> SubscriptionResult | None:
        rec = self._record(self.state)
        if rec is None:
            return None
        out = await workflow.execute_activity_method(SubscriptionStore.save_subscription, rec, **DB_CALL)
        self.state.row_id = out.id
        workflow.upsert_search_attributes([contract.SA_PLAN.value_set(rec.plan)])
        return out

    def _out(self) -> SubscriptionResult | None:
        rec = self._record(self.state)
        if rec is None:
            return None
        plan = self.plans[rec.plan]
        dt = lambda ts: datetime.fromtimestamp(ts, timezone.utc) if ts else None  # noqa: E731
        return SubscriptionResult(
            id=self.state.row_id, plan=rec.plan, status=rec.status, monthly_credits=plan.monthly_credits,
            price_cents=plan.price_cents, current_period_start=dt(rec.period_start_ts),
            current_period_end=dt(rec.period_end_ts), cancel_at_period_end=rec.cancel_at_period_end,
            pending_plan=rec.pending_plan, stripe_subscription_id=rec.stripe_subscription_id)

    @workflow.query
    def current(self) -> SubscriptionView:
        return SubscriptionView(subscription=self._out())

    async def _act(self, method, arg, options=STRIPE_CALL):
        try:
            return await workflow.execute_activity_method(method, arg, **options)
        except ActivityError as exc:
            raise _as_app_error(exc) from None

    # -- subscribe ---------------------------------------------------------------------------------

    def _check_subscribe(self, cmd: SubscribeCommand) -> None:
        if cmd.plan not in self.plans:
            raise ApplicationError(f"unknown plan {cmd.plan!r}; expected {', '.join(self.plans)}",
                                   type=contract.ERR_UNKNOWN_PLAN)
        if self.state.live() and self.state.status() in ("active", "past_due"):
            raise ApplicationError(f"already subscribed to {self.state.plan}; change plan instead",
                                   type=contract.ERR_ALREADY_SUBSCRIBED)

    @workflow.update
    async def subscribe(self, cmd: SubscribeCommand) -> SubscribeResult:
        """Subscribe to ``cmd.plan`` with card ``cmd.payment_method_id``. Fails with type
        ``card_declined`` (nothing charged, no subscription left), ``payment_method_invalid``,
        ``already_subscribed``, ``unknown_plan``."""
        async with self._lock:
            self._check_subscribe(cmd)
            cid = self.state.customer_id
            cust = await self._act(SubscriptionStore.load_customer, cid, DB_CALL)
            sc = await self._act(StripeActivities.ensure_customer, cust)
            if not cust.stripe_customer_id:
                await self._act(SubscriptionStore.set_stripe_customer, sc, DB_CALL)
            self.state.stripe_customer_id = sc.stripe_customer_id
            await self._act(StripeActivities.attach_payment_method, AttachPaymentMethodInput(
                stripe_customer_id=sc.stripe_customer_id, payment_method_id=cmd.payment_method_id))
            snap = await self._act(StripeActivities.create_subscription, CreateSubscriptionInput(
                customer_id=cid, stripe_customer_id=sc.stripe_customer_id, plan=cmd.plan,
                request_id=str(workflow.uuid4())))
            sub_id = snap.subscription.stripe_subscription_id
            if snap.invoice is None or snap.invoice_status != "paid":
                # First payment failed or needs action: cancel it so a retry starts clean.
                await self._act(StripeActivities.delete_subscription, DeleteSubscriptionInput(stripe_subscription_id=sub_id))
                if sub_id not in self.state.ended_subscriptions:
                    self.state.ended_subscriptions.append(sub_id)
                raise ApplicationError("the first payment was declined; no subscription was created",
                                       type=contract.ERR_CARD_DECLINED, non_retryable=True)
            s = self.state
            if s.stripe_subscription_id and s.stripe_subscription_id not in s.ended_subscriptions:
                s.ended_subscriptions.append(s.stripe_subscription_id)
            self.state = SubscriptionState(
                customer_id=cid, stripe_customer_id=sc.stripe_customer_id, stripe_subscription_id=sub_id,
                ended_subscriptions=s.ended_subscriptions, seen_events=s.seen_events)
            await self._apply([snap.subscription, snap.invoice])
            await self._save()
            return SubscribeResult(subscription=self._out(), credits_added=invoice_allowance(snap.invoice.lines, self.plans))

    @subscribe.validator
    def _validate_subscribe(self, cmd: SubscribeCommand) -> None:
        self._check_subscribe(cmd)

    # -- change plan -------------------------------------------------------------------------------

    def _check_change(self, cmd: ChangePlanCommand) -> None:
        s = self.state
        if cmd.plan not in self.plans:
            raise ApplicationError(f"unknown plan {cmd.plan!r}; expected {', '.join(self.plans)}",
                                   type=contract.ERR_UNKNOWN_PLAN)
        if not s.live() or s.status() != "active":
            raise ApplicationError("no active subscription to change", type=contract.ERR_NO_ACTIVE_SUBSCRIPTION)
        if s.cancel_at_period_end:
            raise ApplicationError("the subscription ends at the end of the period; it cannot change plan",
                                   type=contract.ERR_SUBSCRIPTION_ENDING)
        if cmd.plan == s.plan and not s.pending_plan:
            raise ApplicationError(f"already on {s.plan}", type=contract.ERR_SAME_PLAN)
        if s.pending_plan and cmd.plan not in (s.plan, s.pending_plan):
            raise ApplicationError(f"a change to {s.pending_plan} is pending; change back to {s.plan} first",
                                   type=contract.ERR_CHANGE_PENDING)
        if s.pending_plan and cmd.plan == s.pending_plan:
            raise ApplicationError(f"already changing to {s.pending_plan} at period end", type=contract.ERR_SAME_PLAN)

    @workflow.update
    async def change_plan(self, cmd: ChangePlanCommand) -> ChangePlanResult:
        """Upgrade now (prorated payment; credit difference granted) or downgrade at period end;
        changing back to the current plan cancels a pending downgrade. Fails with
        ``card_declined`` (nothing changed), ``no_active_subscription``, ``same_plan``, …"""
        async with self._lock:
            self._check_change(cmd)
            s = self.state
            current = s.plan or cmd.plan
            billed = s.pending_plan or current  # the plan Stripe bills now
            upgrade = plan_credits(cmd.plan, self.plans) > plan_credits(current, self.plans)
            snap = await self._act(StripeActivities.change_plan, ChangePlanInput(
                customer_id=s.customer_id, stripe_customer_id=s.stripe_customer_id or "",
                stripe_subscription_id=s.stripe_subscription_id or "", from_plan=billed, to_plan=cmd.plan,
                upgrade=upgrade, request_id=str(workflow.uuid4())))
            if upgrade:
                facts = [snap.subscription] + ([snap.invoice] if snap.invoice else [])
                await self._apply(facts)
                added = invoice_allowance(snap.invoice.lines, self.plans) if snap.invoice and snap.invoice_status == "paid" else 0
                return ChangePlanResult(subscription=self._out(), effective="now", credits_added=added,
                                          message=f"Upgraded to {self.plans[cmd.plan].name} now: {added} credits added.")
            self.state.pending_plan = None if cmd.plan == current else cmd.plan
            await self._apply([snap.subscription])
            await self._save()
            if self.state.pending_plan is None:
                msg = f"The change to {self.plans[billed].name} is cancelled; you stay on {self.plans[current].name}."
            else:
                msg = (f"You move to {self.plans[cmd.plan].name} on {_date(s.period_end_ts)}; "
                       f"{self.plans[current].name} stays until then.")
            return ChangePlanResult(subscription=self._out(), effective="period_end", message=msg)

    @change_plan.validator
    def _validate_change(self, cmd: ChangePlanCommand) -> None:
        self._check_change(cmd)

    # -- cancel ------------------------------------------------------------------------------------

    def _check_cancel(self) -> None:
        if not self.state.live() or self.state.status() not in ("active", "past_due"):
            raise ApplicationError("no active subscription to cancel", type=contract.ERR_NO_ACTIVE_SUBSCRIPTION)
        if self.state.cancel_at_period_end:
            raise ApplicationError("the subscription is already cancelled at period end", type=contract.ERR_ALREADY_CANCELLED)

    @workflow.update
    async def cancel(self, cmd: CancelCommand) -> CancelResult:
        """Cancel at the end of the current period (docs/pricing.md §7: credits are kept until that
        date); when Stripe ends it, subscription credits expire and pack credits stay."""
        async with self._lock:
            self._check_cancel()
            snap = await self._act(StripeActivities.set_cancel_at_period_end, CancelAtPeriodEndInput(
                stripe_subscription_id=self.state.stripe_subscription_id or "", cancel=True,
                request_id=str(workflow.uuid4())))
            await self._apply([snap.subscription])
            await self._save()
            end = _date(self.state.period_end_ts)
            return CancelResult(
                subscription=self._out(),
                message=f"Your subscription will end on {end}. You keep your credits until that date.")

    @cancel.validator
    def _validate_cancel(self, cmd: CancelCommand) -> None:
        self._check_cancel()
