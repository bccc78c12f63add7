"""Inputs, outputs and state of the payment workflows and activities (Temporal boundary only).

Units: cents, credits (integers); ``*_ts`` epoch seconds; ``ttl_seconds`` seconds.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from models.payments import StripeFact, SubscriptionResult

# --- subscription workflow ----------------------------------------------------------------------


class SubscriptionState(BaseModel):
    """What ``SubscriptionWorkflow`` knows about a customer's subscription; carried over
    continue-as-new. Every field is a fold of facts that gives the same result in any order:
    ``plan`` and the period follow the paid invoice with the latest period end; ``status`` is
    derived (ended → cancelled, a failed invoice not paid since → past_due, a paid one → active);
    ``cancel_at_period_end`` follows the newest subscription snapshot (``snapshot_at``)."""

    customer_id: int
    stripe_customer_id: str | None = None
    stripe_subscription_id: str | None = None
    row_id: int | None = None
    plan: str | None = None
    plan_period_end_ts: int = 0
    period_start_ts: int | None = None
    period_end_ts: int | None = None
    cancel_at_period_end: bool = False
    pending_plan: str | None = None
    stripe_status: str | None = None
    snapshot_at: tuple[int, str] = (0, "")
    ended: bool = False
    ended_subscriptions: list[str] = Field(default_factory=list)
    paid_invoices: list[str] = Field(default_factory=list)
    failed_invoices: list[str] = Field(default_factory=list)
    seen_events: list[str] = Field(default_factory=list)

    def status(self) -> str:
        if self.ended:
            return "cancelled"
        if self.stripe_status == "incomplete_expired":
            return "expired"
        if self.failed_invoices:
            return "past_due"
        if self.paid_invoices:
            return "active"
        return "incomplete"

    def live(self) -> bool:
        """A subscription exists and has not ended."""
        return self.stripe_subscription_id is not None and not self.ended


class PlanTerms(BaseModel):
    """What the subscription workflow needs of one plan (docs/pricing.md §1): ``id`` (``nebula``),
    display ``name``, ``price_cents`` (EUR cents a month), ``monthly_credits`` (credits)."""

    id: str
    name: str
    price_cents: int
    monthly_credits: int


class PlanTable(BaseModel):
    """The plan table as a Temporal payload, cheapest first (``billing.plans.plan_table``).

    It reaches ``SubscriptionWorkflow`` through its input, and at each continue-as-new through the
    ``payments.plan_table`` activity, so a change to ``billing.plans.PLANS`` never changes what a
    recorded run does on replay."""

    plans: list[PlanTerms]

    def by_id(self) -> dict[str, PlanTerms]:
        return {p.id: p for p in self.plans}


class SubscriptionWorkflowInput(BaseModel):
    """Start/continue-as-new input of ``subscription-<customer_id>``; ``plans``: the plan table this
    run decides with (the starter's ``billing.plans.plan_table()``); ``pending``: facts received
    but not yet applied when the previous run continued as new."""

    customer_id: int
    plans: PlanTable
    state: SubscriptionState | None = None
    pending: list[StripeFact] = Field(default_factory=list)


class SubscribeCommand(BaseModel):
    plan: str
    payment_method_id: str
    actor: str = "customer"


class ChangePlanCommand(BaseModel):
    plan: str
    actor: str = "customer"


class CancelCommand(BaseModel):
    actor: str = "customer"


# --- activities: customers and Stripe objects ---------------------------------------------------


class CustomerBilling(BaseModel):
    customer_id: int
    email: str
    name: str = ""
    stripe_customer_id: str | None = None


class StripeCustomerInput(BaseModel):
    customer_id: int
    stripe_customer_id: str


class AttachPaymentMethodInput(BaseModel):
    stripe_customer_id: str
    payment_method_id: str


class AttachPaymentMethodResult(BaseModel):
    payment_method_id: str


class CreateSubscriptionInput(BaseModel):
    """``request_id``: makes the Stripe idempotency key (one per subscribe command)."""

    customer_id: int
    stripe_customer_id: str
    plan: str
    request_id: str


class SubscriptionSnapshot(BaseModel):
    """A subscription read from Stripe after a write: its fact, its item id, and the invoice the
    write produced (``invoice`` fact kind ``invoice_paid`` when paid, else ``invoice_payment_failed``)."""

    subscription: StripeFact
    item_id: str | None = None
    invoice: StripeFact | None = None
    invoice_status: str | None = None


class ChangePlanInput(BaseModel):
    customer_id: int
    stripe_customer_id: str
    stripe_subscription_id: str
    from_plan: str
    to_plan: str
    upgrade: bool
    request_id: str


class CancelAtPeriodEndInput(BaseModel):
    stripe_subscription_id: str
    cancel: bool = True
    request_id: str


class DeleteSubscriptionInput(BaseModel):
    stripe_subscription_id: str


class SubscriptionRecord(BaseModel):
    """The ``subscription`` row as the workflow sees it (upserted by ``stripe_subscription_id``)."""

    customer_id: int
    stripe_subscription_id: str
    plan: str
    status: str
    period_start_ts: int | None = None
    period_end_ts: int | None = None
    cancel_at_period_end: bool = False
    pending_plan: str | None = None


# --- pack payment workflow ----------------------------------------------------------------------


class PackPaymentInput(BaseModel):
    """``payment-<payment_id>``: create the PaymentIntent, then wait for the outcome or ``ttl_seconds``."""

    payment_id: int
    customer_id: int
    pack_id: str
    amount_cents: int
    currency: str
    total_credits: int
    stripe_customer_id: str | None = None
    payment_method_id: str | None = None
    ttl_seconds: int = Field(ge=1)


class CreatePaymentIntentInput(BaseModel):
    payment_id: int
    customer_id: int
    pack_id: str
    amount_cents: int
    currency: str
    stripe_customer_id: str | None = None
    payment_method_id: str | None = None


class PaymentIntentResult(BaseModel):
    """``status``: Stripe's PaymentIntent status (requires_payment_method, succeeded, canceled, …)."""

    payment_intent_id: str
    client_secret: str
    status: str
    fact: StripeFact | None = None


class AttachIntentInput(BaseModel):
    payment_id: int
    payment_intent_id: str


class CancelPaymentIntentInput(BaseModel):
    payment_intent_id: str
    payment_id: int


class ClosePaymentInput(BaseModel):
    payment_id: int
    status: str = Field(pattern="^(cancelled|failed)$")


class PackPaymentResult(BaseModel):
    payment_id: int
    status: str
    payment_intent_id: str | None = None


# --- reconciliation -----------------------------------------------------------------------------


class ReconcileInput(BaseModel):
    """Look back ``lookback_days`` days in Stripe; ``repair`` grants what the ledger misses."""

    lookback_days: int = Field(default=3, ge=1, le=90)
    repair: bool = True


class StripePaidObjects(BaseModel):
    """Paid subscription invoices and succeeded pack PaymentIntents found in Stripe, as facts."""

    invoices: list[StripeFact] = Field(default_factory=list)
    payment_intents: list[StripeFact] = Field(default_factory=list)
    #: refunded charges (``charge_refunded``) and disputes (``charge_dispute``) of the window
    reversals: list[StripeFact] = Field(default_factory=list)


class ReconcileLedgerInput(BaseModel):
    objects: StripePaidObjects
    options: ReconcileInput


class ReconcileItem(BaseModel):
    kind: str
    stripe_id: str
    customer_id: int | None = None
    idempotency_key: str
    credits: int = 0
    detail: str = ""


class ReconciliationReport(BaseModel):
    """``missing``: paid in Stripe but not in the ledger; ``repaired``: of those, granted now;
    ``unexplained``: ledger grants for an invoice/payment Stripe does not show as paid (reported only)."""

    checked_invoices: int = 0
    checked_payment_intents: int = 0
    missing: list[ReconcileItem] = Field(default_factory=list)
    repaired: list[ReconcileItem] = Field(default_factory=list)
    unexplained: list[ReconcileItem] = Field(default_factory=list)
    #: refunds/disputes whose credits the ledger had not taken back (or given back) yet: applied now
    reversed: list[ReconcileItem] = Field(default_factory=list)
    #: manual plans (no Stripe subscription) ended at their period end, subscription credits expired
    manual_plans_ended: list[int] = Field(default_factory=list)


class SubscriptionView(BaseModel):
    """Query result: the subscription the workflow holds (None before the first subscribe)."""

    subscription: SubscriptionResult | None = None
