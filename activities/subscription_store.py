"""Database side of the payment workflows: customers' Stripe ids, the ``subscription`` row, and
the exactly-once application of Stripe facts (``billing.stripe_effects``).

Writes are idempotent (upserts keyed by Stripe ids, ledger idempotency keys, ``stripe_event``
ids), so a retried activity changes nothing twice.
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from billing.errors import BillingError
from billing.plans import PLANS, plan_table
from billing.stripe_effects import apply_fact
from models.db import Customer, Subscription
from models.payment_workflows import CustomerBilling, PlanTable, StripeCustomerInput, SubscriptionRecord
from models.payments import FactBatch, FactBatchResult, FactOutcome, SubscriptionResult
from models.temporal_contract import ERR_UNKNOWN_CUSTOMER

log = structlog.get_logger(__name__)

SUB = Subscription.__table__
CUSTOMER = Customer.__table__


def _dt(ts: int | None) -> datetime | None:
    return datetime.fromtimestamp(ts, timezone.utc) if ts else None


def subscription_out(row) -> SubscriptionResult:
    """A ``subscription`` row → the API model."""
    return SubscriptionResult(
        id=row.id, plan=row.plan, status=row.status, monthly_credits=row.monthly_credits,
        price_cents=row.price_cents, current_period_start=row.current_period_start,
        current_period_end=row.current_period_end, cancel_at_period_end=row.cancel_at_period_end,
        pending_plan=row.pending_plan, stripe_subscription_id=row.stripe_subscription_id)


class SubscriptionStore:
    """``engine``: the async engine (postgresql+asyncpg)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @activity.defn(name="payments.plan_table")
    async def plan_table(self) -> PlanTable:
        """The deployed plan table (``billing.plans.PLANS``), read by ``SubscriptionWorkflow``
        before it continues as new: as an activity result it is recorded, so replay never re-reads
        a table a later deploy changed."""
        return plan_table()

    @activity.defn(name="payments.load_customer")
    async def load_customer(self, customer_id: int) -> CustomerBilling:
        """Email, name and Stripe id of a customer. Raises ``unknown_customer`` (non-retryable)."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(CUSTOMER).where(CUSTOMER.c.id == customer_id))).first()
        if row is None:
            raise ApplicationError(f"no customer {customer_id}", type=ERR_UNKNOWN_CUSTOMER, non_retryable=True)
        return CustomerBilling(customer_id=row.id, email=row.email, name=row.name or "",
                               stripe_customer_id=row.stripe_customer_id)

    @activity.defn(name="payments.set_stripe_customer")
    async def set_stripe_customer(self, inp: StripeCustomerInput) -> None:
        """Remember the Stripe customer id (first one wins)."""
        async with self.engine.begin() as conn:
            await conn.execute(CUSTOMER.update().where(
                CUSTOMER.c.id == inp.customer_id, CUSTOMER.c.stripe_customer_id.is_(None))
                .values(stripe_customer_id=inp.stripe_customer_id))

    @activity.defn(name="payments.save_subscription")
    async def save_subscription(self, rec: SubscriptionRecord) -> SubscriptionResult:
        """Upsert the ``subscription`` row of ``rec.stripe_subscription_id`` to the workflow's view."""
        plan = PLANS[rec.plan]
        values = dict(
            customer_id=rec.customer_id, plan=rec.plan, status=rec.status, monthly_credits=plan.monthly_credits,
            price_cents=plan.price_cents, current_period_start=_dt(rec.period_start_ts),
            current_period_end=_dt(rec.period_end_ts), cancel_at_period_end=rec.cancel_at_period_end,
            pending_plan=rec.pending_plan, updated_at=sa.func.now())
        stmt = pg_insert(SUB).values(stripe_subscription_id=rec.stripe_subscription_id, created_at=sa.func.now(),
                                     **values)
        stmt = stmt.on_conflict_do_update(index_elements=["stripe_subscription_id"], set_=values).returning(*SUB.c)
        async with self.engine.begin() as conn:
            row = (await conn.execute(stmt)).one()
        return subscription_out(row)

    @activity.defn(name="payments.apply_facts")
    async def apply_facts(self, batch: FactBatch) -> FactBatchResult:
        """Apply each fact exactly once, one transaction per fact (``billing.stripe_effects``).

        A billing error (a bug: a key reused for another amount, an unknown customer) would fail
        the same way on every retry: that fact's transaction rolls back (its event stays
        unprocessed, so the daily reconciliation reports it), its outcome carries ``error``, and
        the other facts still apply. Database/network errors raise and the activity is retried."""
        outcomes = []
        flags = batch.expire_subscription + [False] * (len(batch.facts) - len(batch.expire_subscription))
        for fact, expire in zip(batch.facts, flags):
            try:
                outcomes.append(await apply_fact(self.engine, fact, expire))
            except BillingError as exc:
                log.error("stripe.fact_failed", kind=fact.kind, event_id=fact.event_id, error=str(exc))
                outcomes.append(FactOutcome(event_id=fact.event_id, kind=fact.kind, error=f"{exc.code}: {exc}"))
        return FactBatchResult(outcomes=outcomes)
