"""Stripe side effects for the payment workflows. Every write carries an idempotency key from
business ids (``billing.stripe_client.idem``), so retried activities do not duplicate anything on
Stripe.

Permanent failures are non-retryable ``ApplicationError`` types: ``card_declined`` (Stripe 402 or
a charge that failed), ``payment_method_invalid`` (unknown ``pm_…``), ``stripe_rejected`` (any
other 4xx). Network errors and 5xx are retried.

localstripe (``settings.is_localstripe()``) has no ``proration_behavior``: a plan change there is
applied, localstripe's own proration items are removed, and an upgrade is invoiced explicitly
with one "unused time" credit for the old plan — the invoice a prorated upgrade produces on
Stripe, minus the time proration (localstripe does not prorate by time).
"""

from __future__ import annotations

import time
from typing import Any

import stripe
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from billing.plans import PLANS
from billing.stripe_client import ensure_plans, idem, stripe_plan_id
from billing.webhooks import (
    CUSTOMER_ID_METADATA,
    PAYMENT_ID_METADATA,
    PLAN_METADATA,
    charge_fact,
    dispute_fact,
    invoice_fact,
    payment_intent_fact,
    subscription_fact,
)
from core.settings import StripeSettings
from models.payment_workflows import (
    AttachPaymentMethodInput,
    AttachPaymentMethodResult,
    CancelAtPeriodEndInput,
    CancelPaymentIntentInput,
    ChangePlanInput,
    CreatePaymentIntentInput,
    CreateSubscriptionInput,
    CustomerBilling,
    DeleteSubscriptionInput,
    PaymentIntentResult,
    ReconcileInput,
    StripeCustomerInput,
    StripePaidObjects,
    SubscriptionSnapshot,
)
from models.temporal_contract import (
    ERR_CARD_DECLINED,
    ERR_PAYMENT_METHOD_INVALID,
    ERR_STRIPE_NOT_FOUND,
    ERR_STRIPE_REJECTED,
)

log = structlog.get_logger(__name__)


def _permanent(exc: stripe.StripeError) -> ApplicationError | None:
    """The non-retryable error for a permanent Stripe failure, or None (retry)."""
    status = exc.http_status or 0
    message = exc.user_message or str(exc)
    if isinstance(exc, stripe.CardError) or status == 402:
        return ApplicationError(message, type=ERR_CARD_DECLINED, non_retryable=True)
    if status == 404:
        return ApplicationError(message, type=ERR_PAYMENT_METHOD_INVALID if "payment_method" in message.lower()
                                else ERR_STRIPE_NOT_FOUND, non_retryable=True)
    if 400 <= status < 500 and status not in (409, 429):
        return ApplicationError(message, type=ERR_STRIPE_REJECTED, non_retryable=True)
    return None


def _d(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


class StripeActivities:
    """Stripe calls. ``client``: ``billing.stripe_client.make_stripe_client(settings)``."""

    def __init__(self, client: stripe.StripeClient, settings: StripeSettings) -> None:
        self.client = client
        self.settings = settings
        self.local = settings.is_localstripe()
        self._plans_ready = False

    async def _call(self, coro):
        try:
            return await coro
        except stripe.StripeError as exc:
            permanent = _permanent(exc)
            log.warning("stripe.call_failed", error=str(exc), status=exc.http_status, permanent=permanent is not None)
            if permanent is not None:
                raise permanent from None
            raise

    async def _ensure_plans(self) -> None:
        if not self._plans_ready:
            await self._call(ensure_plans(self.client, self.settings.currency))
            self._plans_ready = True

    # -- customers ----------------------------------------------------------------------------

    @activity.defn(name="stripe.ensure_customer")
    async def ensure_customer(self, customer: CustomerBilling) -> StripeCustomerInput:
        """The customer's Stripe customer (created once, key ``customer:<id>``)."""
        if customer.stripe_customer_id:
            return StripeCustomerInput(customer_id=customer.customer_id, stripe_customer_id=customer.stripe_customer_id)
        created = await self._call(self.client.v1.customers.create_async(
            {"email": customer.email, "name": customer.name or customer.email,
             "metadata": {CUSTOMER_ID_METADATA: str(customer.customer_id)}},
            idem("customer", customer.customer_id)))
        log.info("stripe.customer_created", customer_id=customer.customer_id, stripe_customer_id=created.id)
        return StripeCustomerInput(customer_id=customer.customer_id, stripe_customer_id=created.id)

    @activity.defn(name="stripe.attach_payment_method")
    async def attach_payment_method(self, inp: AttachPaymentMethodInput) -> AttachPaymentMethodResult:
        """Attach ``pm_…`` to the customer and make it the default for invoices.
        Raises ``card_declined`` / ``payment_method_invalid`` (non-retryable)."""
        pm = await self._call(self.client.v1.payment_methods.attach_async(
            inp.payment_method_id, {"customer": inp.stripe_customer_id},
            idem("attach", inp.stripe_customer_id, inp.payment_method_id)))
        await self._call(self.client.v1.customers.update_async(
            inp.stripe_customer_id, {"invoice_settings": {"default_payment_method": pm.id}},
            idem("default-pm", inp.stripe_customer_id, pm.id)))
        return AttachPaymentMethodResult(payment_method_id=pm.id)

    # -- subscriptions ------------------------------------------------------------------------

    async def _snapshot(self, sub_id: str, invoice_id: str | None = None) -> SubscriptionSnapshot:
        sub = _d(await self._call(self.client.v1.subscriptions.retrieve_async(sub_id)))
        fact = subscription_fact(sub, "subscription_updated")
        fact.created_ts = int(time.time())  # a read now is newer than every earlier snapshot
        item = ((sub.get("items") or {}).get("data") or [{}])[0]
        inv_id = invoice_id or (sub.get("latest_invoice") if isinstance(sub.get("latest_invoice"), str)
                                else (sub.get("latest_invoice") or {}).get("id"))
        snap = SubscriptionSnapshot(subscription=fact, item_id=item.get("id"))
        if inv_id:
            inv = _d(await self._call(self.client.v1.invoices.retrieve_async(inv_id)))
            snap.invoice_status = inv.get("status")
            snap.invoice = invoice_fact(inv, "invoice_paid" if inv.get("status") == "paid" else "invoice_payment_failed")
        return snap

    @activity.defn(name="stripe.create_subscription")
    async def create_subscription(self, inp: CreateSubscriptionInput) -> SubscriptionSnapshot:
        """Create the monthly subscription (Stripe charges the first invoice now) and return it with
        that invoice. Key ``subscription:<customer>:<request>``."""
        await self._ensure_plans()
        try:
            sub = await self.client.v1.subscriptions.create_async(
                {"customer": inp.stripe_customer_id, "items": [{"plan": stripe_plan_id(inp.plan)}],
                 "metadata": {CUSTOMER_ID_METADATA: str(inp.customer_id), PLAN_METADATA: inp.plan}},
                idem("subscription", inp.customer_id, inp.request_id))
        except stripe.StripeError as exc:
            permanent = _permanent(exc)
            if permanent is not None:
                raise permanent from None
            raise
        log.info("stripe.subscription_created", customer_id=inp.customer_id, stripe_subscription_id=sub.id,
                 status=sub.status)
        return await self._snapshot(sub.id)

    @activity.defn(name="stripe.delete_subscription")
    async def delete_subscription(self, inp: DeleteSubscriptionInput) -> SubscriptionSnapshot:
        """Cancel now (used when the first payment failed, so the customer can retry cleanly)."""
        try:
            await self.client.v1.subscriptions.cancel_async(inp.stripe_subscription_id)
        except stripe.InvalidRequestError as exc:
            if exc.http_status != 404:
                raise
        sub = _d(await self._call(self.client.v1.subscriptions.retrieve_async(inp.stripe_subscription_id)))
        return SubscriptionSnapshot(subscription=subscription_fact(sub, "subscription_updated"))

    @activity.defn(name="stripe.set_cancel_at_period_end")
    async def set_cancel_at_period_end(self, inp: CancelAtPeriodEndInput) -> SubscriptionSnapshot:
        """Cancel (or resume) at the end of the current period."""
        await self._call(self.client.v1.subscriptions.update_async(
            inp.stripe_subscription_id, {"cancel_at_period_end": inp.cancel},
            idem("cancel-at-period-end", inp.stripe_subscription_id, inp.cancel, inp.request_id)))
        snap = await self._snapshot(inp.stripe_subscription_id)
        snap.invoice = None  # the latest invoice was already accounted for
        return snap

    async def _drop_pending_prorations(self, customer: str, sub_id: str) -> None:
        """localstripe creates "unused time" items on every plan change; drop them (proration none)."""
        items = await self._call(self.client.v1.invoice_items.list_async({"customer": customer, "limit": 100}))
        for ii in items.data:
            d = _d(ii)
            if d.get("subscription") == sub_id and d.get("proration") and not d.get("invoice"):
                await self._call(self.client.v1.invoice_items.delete_async(d["id"]))

    @activity.defn(name="stripe.change_plan")
    async def change_plan(self, inp: ChangePlanInput) -> SubscriptionSnapshot:
        """Switch the subscription item to ``to_plan``. Upgrade: charged now (prorated invoice, paid
        before returning; ``card_declined`` → the plan is switched back). Downgrade: no proration,
        the next renewal bills the lower plan."""
        await self._ensure_plans()
        sub = _d(await self._call(self.client.v1.subscriptions.retrieve_async(inp.stripe_subscription_id)))
        item_id = sub["items"]["data"][0]["id"]
        target = stripe_plan_id(inp.to_plan)
        key = ("change-plan", inp.stripe_subscription_id, inp.to_plan, inp.request_id)
        if not self.local:
            params: dict[str, Any] = {"items": [{"id": item_id, "plan": target}],
                                      "proration_behavior": "always_invoice" if inp.upgrade else "none"}
            if inp.upgrade:
                params["payment_behavior"] = "pending_if_incomplete"  # no plan change unless paid
            updated = _d(await self._call(self.client.v1.subscriptions.update_async(
                inp.stripe_subscription_id, params, idem(*key))))
            inv = updated.get("latest_invoice")
            inv_id = inv if isinstance(inv, str) else (inv or {}).get("id")
            if inp.upgrade and updated.get("pending_update"):
                raise ApplicationError("the upgrade payment failed", type=ERR_CARD_DECLINED, non_retryable=True)
            return await self._snapshot(inp.stripe_subscription_id, inv_id if inp.upgrade else None)

        await self._call(self.client.v1.subscriptions.update_async(
            inp.stripe_subscription_id, {"items": [{"id": item_id, "plan": target}]}, idem(*key)))
        await self._drop_pending_prorations(inp.stripe_customer_id, inp.stripe_subscription_id)
        if not inp.upgrade:
            snap = await self._snapshot(inp.stripe_subscription_id)
            snap.invoice = None
            return snap
        old = PLANS[inp.from_plan]
        await self._call(self.client.v1.invoice_items.create_async(
            {"customer": inp.stripe_customer_id, "subscription": inp.stripe_subscription_id,
             "amount": -old.price_cents, "currency": self.settings.currency,
             "plan": stripe_plan_id(old.id), "proration": True,
             "description": f"Unused time on {old.name}"}, idem(*key, "unused")))
        invoice = await self._call(self.client.v1.invoices.create_async(
            {"customer": inp.stripe_customer_id, "subscription": inp.stripe_subscription_id},
            idem(*key, "invoice")))
        try:
            await self.client.v1.invoices.pay_async(invoice.id, options=idem(*key, "pay"))
        except stripe.StripeError as exc:
            if _permanent(exc) is None:
                raise
            # Not paid: undo the switch so rights and billing stay on the old plan.
            await self._call(self.client.v1.invoices.void_invoice_async(invoice.id))
            await self._call(self.client.v1.subscriptions.update_async(
                inp.stripe_subscription_id, {"items": [{"id": item_id, "plan": stripe_plan_id(old.id)}]},
                idem(*key, "revert")))
            await self._drop_pending_prorations(inp.stripe_customer_id, inp.stripe_subscription_id)
            raise ApplicationError(f"the upgrade payment failed: {exc.user_message or exc}", type=ERR_CARD_DECLINED,
                                   non_retryable=True) from None
        return await self._snapshot(inp.stripe_subscription_id, invoice.id)

    # -- pack payments ------------------------------------------------------------------------

    @activity.defn(name="stripe.create_payment_intent")
    async def create_payment_intent(self, inp: CreatePaymentIntentInput) -> PaymentIntentResult:
        """The pack's PaymentIntent (key ``payment:<id>``, metadata ``stellar_payment_id``). With a
        ``payment_method_id`` it is confirmed server-side; a declined card gives status
        ``requires_payment_method`` and a ``payment_intent_failed`` fact."""
        params: dict[str, Any] = {
            "amount": inp.amount_cents, "currency": inp.currency, "payment_method_types": ["card"],
            "metadata": {PAYMENT_ID_METADATA: str(inp.payment_id), CUSTOMER_ID_METADATA: str(inp.customer_id),
                         "stellar_pack": inp.pack_id},
        }
        if inp.stripe_customer_id:
            params["customer"] = inp.stripe_customer_id
        if inp.payment_method_id:
            params["payment_method"] = inp.payment_method_id
        if not self.local:
            params["description"] = f"Stellar credit pack {inp.pack_id}"
        pi = await self._call(self.client.v1.payment_intents.create_async(params, idem("payment", inp.payment_id)))
        if inp.payment_method_id and pi.status == "requires_confirmation":
            try:
                await self.client.v1.payment_intents.confirm_async(pi.id, options=idem("payment-confirm", inp.payment_id))
            except stripe.StripeError as exc:
                if _permanent(exc) is None:
                    raise
                log.info("stripe.payment_declined", payment_id=inp.payment_id, error=str(exc))
            pi = await self._call(self.client.v1.payment_intents.retrieve_async(pi.id))
        d = _d(pi)
        fact = None
        if d.get("status") == "succeeded":
            fact = payment_intent_fact(d, "payment_intent_succeeded")
        elif inp.payment_method_id and d.get("status") == "requires_payment_method":
            fact = payment_intent_fact(d, "payment_intent_failed")
        log.info("stripe.payment_intent_created", payment_id=inp.payment_id, payment_intent=pi.id, status=d.get("status"))
        return PaymentIntentResult(payment_intent_id=pi.id, client_secret=d.get("client_secret") or "",
                                status=d.get("status") or "", fact=fact)

    @activity.defn(name="stripe.cancel_payment_intent")
    async def cancel_payment_intent(self, inp: CancelPaymentIntentInput) -> PaymentIntentResult:
        """Cancel an unpaid PaymentIntent. If it cannot be cancelled because it succeeded meanwhile,
        returns status ``succeeded`` with its fact (the caller credits it)."""
        try:
            await self.client.v1.payment_intents.cancel_async(inp.payment_intent_id)
        except stripe.StripeError as exc:
            if _permanent(exc) is None:
                raise
        d = _d(await self._call(self.client.v1.payment_intents.retrieve_async(inp.payment_intent_id)))
        fact = payment_intent_fact(d, "payment_intent_succeeded") if d.get("status") == "succeeded" else None
        return PaymentIntentResult(payment_intent_id=inp.payment_intent_id, client_secret="",
                                status=d.get("status") or "", fact=fact)

    # -- reconciliation -----------------------------------------------------------------------

    async def _list_all(self, service, since: int, params: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        query: dict[str, Any] = {"limit": 100, **params}
        if not self.local:
            query["created"] = {"gte": since}  # localstripe rejects list filters it does not know
        for _ in range(1000):
            activity.heartbeat(len(out))
            page = await self._call(service.list_async(query))
            rows = [_d(o) for o in page.data]
            out.extend(r for r in rows if (r.get("created") or 0) >= since)
            if not page.has_more or not rows:
                break
            query["starting_after"] = rows[-1]["id"]
        return out

    @activity.defn(name="stripe.list_paid")
    async def list_paid(self, inp: ReconcileInput) -> StripePaidObjects:
        """Paid subscription invoices and succeeded pack PaymentIntents created in the last
        ``lookback_days`` days."""
        since = int(time.time()) - inp.lookback_days * 86_400
        invoices = await self._list_all(self.client.v1.invoices, since, {})
        intents = await self._list_all(self.client.v1.payment_intents, since, {})
        paid = [invoice_fact(i, "invoice_paid") for i in invoices if i.get("status") == "paid"]
        succeeded = [payment_intent_fact(p, "payment_intent_succeeded") for p in intents
                     if p.get("status") == "succeeded" and (p.get("metadata") or {}).get(PAYMENT_ID_METADATA)]
        return StripePaidObjects(invoices=[f for f in paid if f.stripe_subscription_id], payment_intents=succeeded,
                                 reversals=await self._reversals(since))

    async def _reversals(self, since: int) -> list:
        """Refunded and disputed charges (refunds and disputes created since ``since``), as facts.
        A refund's charge is read in full (its cumulative ``amount_refunded``); disputes come with
        their charge expanded. localstripe has no disputes: that list is skipped there."""
        refunds = await self._list_all(self.client.v1.refunds, since, {})
        out = []
        for charge_id in sorted({r["charge"] for r in refunds if isinstance(r.get("charge"), str)}):
            charge = _d(await self._call(self.client.v1.charges.retrieve_async(charge_id)))
            if charge.get("amount_refunded"):
                out.append(charge_fact(charge))
        if not self.local:
            disputes = await self._list_all(self.client.v1.disputes, since, {"expand": ["data.charge"]})
            out.extend(dispute_fact(d) for d in disputes if d.get("charge"))
        return out
