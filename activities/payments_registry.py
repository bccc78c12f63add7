"""What a worker registers for payments, and the reconciliation schedule.

``worker.py`` adds ``PAYMENT_WORKFLOWS`` to its workflows and ``payment_activities(...)`` to its
activities, and calls ``ensure_reconciliation_schedule`` once at start.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

import stripe
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
)

from activities.payment_store import PaymentStore
from activities.reconciliation import ReconcileActivities
from activities.stripe_ops import StripeActivities
from activities.subscription_store import SubscriptionStore
from billing.stripe_client import make_stripe_client
from core.settings import Settings
from models.payment_workflows import ReconcileInput
from workflows.pack_payment import PackPaymentWorkflow
from workflows.reconciliation import ReconciliationWorkflow
from workflows.subscription import SubscriptionWorkflow

log = structlog.get_logger(__name__)

PAYMENT_WORKFLOWS: list[type] = [SubscriptionWorkflow, PackPaymentWorkflow, ReconciliationWorkflow]
RECONCILIATION_SCHEDULE_ID = "stripe-reconciliation"


def payment_activities(settings: Settings, engine: AsyncEngine,
                       stripe_client: stripe.StripeClient | None = None) -> list[Callable[..., Any]]:
    """The payment activities, bound to ``engine`` and a Stripe client for ``settings.stripe``."""
    client = stripe_client or make_stripe_client(settings.stripe)
    s = StripeActivities(client, settings.stripe)
    store = SubscriptionStore(engine)
    pay = PaymentStore(engine)
    rec = ReconcileActivities(engine)
    return [
        s.ensure_customer, s.attach_payment_method, s.create_subscription, s.delete_subscription,
        s.set_cancel_at_period_end, s.change_plan, s.create_payment_intent, s.cancel_payment_intent, s.list_paid,
        store.load_customer, store.set_stripe_customer, store.save_subscription, store.apply_facts,
        pay.attach_intent, pay.close_payment, rec.reconcile_ledger,
    ]


async def ensure_reconciliation_schedule(client: Client, task_queue: str, *, hour_utc: int = 3,
                                         lookback_days: int = 3) -> str:
    """Create the daily ``stripe-reconciliation`` schedule (at ``hour_utc``:15 UTC) unless it exists.
    Returns the schedule id."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            ReconciliationWorkflow.run, ReconcileInput(lookback_days=lookback_days, repair=True),
            id="stripe-reconciliation-run", task_queue=task_queue,
            execution_timeout=timedelta(hours=1)),
        spec=ScheduleSpec(calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(hour_utc)],
                                                          minute=[ScheduleRange(15)])]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(RECONCILIATION_SCHEDULE_ID, schedule)
        log.info("schedule.created", schedule_id=RECONCILIATION_SCHEDULE_ID, hour_utc=hour_utc)
    except ScheduleAlreadyRunningError:
        pass
    return RECONCILIATION_SCHEDULE_ID
