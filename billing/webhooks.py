"""Stripe webhooks: signature verification on the raw body, and events reduced to facts.

Verification is Stripe's scheme (https://docs.stripe.com/webhooks#verify-manually): header
``Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the endpoint
secret>``; an event older than ``tolerance`` seconds is refused (replay protection). localstripe
signs the same way.

Facts (``models.payments.StripeFact``) keep only what Stellar acts on, and read both the classic
API shapes (``invoice.subscription``, ``line.plan``, ``subscription.current_period_end`` — what
localstripe sends) and the 2025+ ones (``invoice.parent.subscription_details``,
``line.pricing.price_details.price``, ``line.parent.*.proration``, periods on subscription items).
"""

from __future__ import annotations

import json
from typing import Any

import stripe

from billing.stripe_client import plan_from_stripe_id
from models.payments import InvoiceLine, StripeFact

INVOICE_PAID_TYPES = ("invoice.paid", "invoice.payment_succeeded")
#: Every dispute event carries the dispute with its current status; one fact kind covers them all.
DISPUTE_TYPES = ("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
                 "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated")
HANDLED_TYPES = (
    *INVOICE_PAID_TYPES,
    "invoice.payment_failed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "charge.refunded",
    *DISPUTE_TYPES,
)
PAYMENT_ID_METADATA = "stellar_payment_id"
CUSTOMER_ID_METADATA = "stellar_customer_id"
PLAN_METADATA = "stellar_plan"


class WebhookSignatureError(ValueError):
    """The body is unsigned, wrongly signed, stale, or not a Stripe event. Answer 400."""


def verify_event(payload: bytes, signature_header: str | None, secret: str, tolerance: int) -> dict[str, Any]:
    """Check ``Stripe-Signature`` over the exact raw ``payload`` bytes and return the event dict.

    ``tolerance``: seconds an event's timestamp may be old. Raises WebhookSignatureError.
    """
    if not signature_header:
        raise WebhookSignatureError("missing Stripe-Signature header")
    try:
        stripe.WebhookSignature.verify_header(payload, signature_header, secret, tolerance)
    except stripe.SignatureVerificationError as exc:
        raise WebhookSignatureError(str(exc.user_message or exc)) from None
    try:
        event = json.loads(payload)
    except ValueError:
        raise WebhookSignatureError("signed body is not JSON") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise WebhookSignatureError("signed body is not a Stripe event")
    obj = (event.get("data") or {}).get("object")
    if not isinstance(obj, dict):
        raise WebhookSignatureError("event has no data.object")
    return event


# --- shape helpers ------------------------------------------------------------------------------


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def _id(v: Any) -> str | None:
    """An id field that may be expanded into an object."""
    if isinstance(v, dict):
        return v.get("id")
    return v if isinstance(v, str) else None


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _line_price_id(line: dict[str, Any]) -> str | None:
    return (_id(line.get("plan")) or _id(line.get("price"))
            or _id(_get(line, "pricing", "price_details", "price")))


def _line_proration(line: dict[str, Any]) -> bool:
    if isinstance(line.get("proration"), bool):
        return line["proration"]
    parent = line.get("parent") or {}
    for key in ("subscription_item_details", "invoice_item_details"):
        if isinstance(_get(parent, key, "proration"), bool):
            return parent[key]["proration"]
    return False


def invoice_lines(invoice: dict[str, Any]) -> list[InvoiceLine]:
    """The invoice's lines (``lines.data``) as :class:`InvoiceLine` (plan = Stellar plan id or None)."""
    out = []
    for line in _get(invoice, "lines", "data") or []:
        if not isinstance(line, dict):
            continue
        out.append(InvoiceLine(
            plan=plan_from_stripe_id(_line_price_id(line)),
            amount=_int(line.get("amount")) or 0,
            proration=_line_proration(line),
            period_start_ts=_int(_get(line, "period", "start")),
            period_end_ts=_int(_get(line, "period", "end")),
        ))
    return out


def invoice_subscription_id(invoice: dict[str, Any]) -> str | None:
    return (_id(invoice.get("subscription"))
            or _id(_get(invoice, "parent", "subscription_details", "subscription")))


def _invoice_metadata_customer(invoice: dict[str, Any]) -> int | None:
    for md in (_get(invoice, "parent", "subscription_details", "metadata"),
               _get(invoice, "subscription_details", "metadata"), invoice.get("metadata")):
        value = (md or {}).get(CUSTOMER_ID_METADATA) if isinstance(md, dict) else None
        if value and str(value).isdigit():
            return int(value)
    return None


def invoice_payment_intent(invoice: dict[str, Any]) -> str | None:
    """The PaymentIntent that paid the invoice: ``invoice.payment_intent`` (classic) or the first
    ``invoice.payments.data[].payment.payment_intent`` (2025+), when the payload carries it."""
    pi = _id(invoice.get("payment_intent"))
    if pi:
        return pi
    for p in _get(invoice, "payments", "data") or []:
        pi = _id(_get(p, "payment", "payment_intent"))
        if pi:
            return pi
    return None


def invoice_fact(invoice: dict[str, Any], kind: str, event: dict[str, Any] | None = None) -> StripeFact:
    """An ``invoice_paid`` / ``invoice_payment_failed`` fact from an invoice object.

    The billing period is the latest period among the invoice's lines of our plans (what the
    invoice pays for), falling back to the invoice's own ``period_start``/``period_end``.
    """
    lines = invoice_lines(invoice)
    ours = [ln for ln in lines if ln.plan and ln.period_end_ts]
    if ours:
        latest = max(ours, key=lambda ln: (ln.period_end_ts or 0, ln.amount))
        start, end = latest.period_start_ts, latest.period_end_ts
    else:
        start, end = _int(invoice.get("period_start")), _int(invoice.get("period_end"))
    return StripeFact(
        kind=kind,  # type: ignore[arg-type]
        event_id=event.get("id") if event else None,
        event_type=event.get("type", "") if event else "",
        created_ts=_int((event or invoice).get("created")) or 0,
        stripe_customer_id=_id(invoice.get("customer")),
        customer_id=_invoice_metadata_customer(invoice),
        stripe_subscription_id=invoice_subscription_id(invoice),
        invoice_id=invoice.get("id"),
        billing_reason=invoice.get("billing_reason"),
        lines=lines,
        period_start_ts=start,
        period_end_ts=end,
        amount_cents=_int(invoice.get("amount_paid")) if kind == "invoice_paid" else _int(invoice.get("amount_due")),
        currency=invoice.get("currency"),
        payment_intent_id=invoice_payment_intent(invoice),
    )


def subscription_fact(sub: dict[str, Any], kind: str, event: dict[str, Any] | None = None) -> StripeFact:
    """A ``subscription_updated`` / ``subscription_deleted`` fact from a subscription object."""
    item = (_get(sub, "items", "data") or [None])[0] or {}
    start = _int(sub.get("current_period_start")) or _int(item.get("current_period_start"))
    end = _int(sub.get("current_period_end")) or _int(item.get("current_period_end"))
    md = sub.get("metadata") or {}
    cid = md.get(CUSTOMER_ID_METADATA)
    return StripeFact(
        kind=kind,  # type: ignore[arg-type]
        event_id=event.get("id") if event else None,
        event_type=event.get("type", "") if event else "",
        created_ts=_int((event or sub).get("created")) or 0,
        stripe_customer_id=_id(sub.get("customer")),
        customer_id=int(cid) if cid and str(cid).isdigit() else None,
        stripe_subscription_id=sub.get("id"),
        subscription_status=sub.get("status"),
        cancel_at_period_end=bool(sub.get("cancel_at_period_end")),
        plan=plan_from_stripe_id(_id(item.get("plan")) or _id(item.get("price"))),
        period_start_ts=start,
        period_end_ts=end,
    )


def payment_intent_fact(pi: dict[str, Any], kind: str, event: dict[str, Any] | None = None) -> StripeFact:
    """A ``payment_intent_*`` fact; ``payment_id`` from ``metadata.stellar_payment_id`` (None = not a pack)."""
    md = pi.get("metadata") or {}
    pid = md.get(PAYMENT_ID_METADATA)
    cid = md.get(CUSTOMER_ID_METADATA)
    return StripeFact(
        kind=kind,  # type: ignore[arg-type]
        event_id=event.get("id") if event else None,
        event_type=event.get("type", "") if event else "",
        created_ts=_int((event or pi).get("created")) or 0,
        stripe_customer_id=_id(pi.get("customer")),
        customer_id=int(cid) if cid and str(cid).isdigit() else None,
        payment_intent_id=pi.get("id"),
        payment_id=int(pid) if pid and str(pid).isdigit() else None,
        amount_cents=_int(pi.get("amount")),
        currency=pi.get("currency"),
    )


#: A Checkout Session in ``payment`` mode whose money arrived (cards at once; delayed methods later).
CHECKOUT_PAID_TYPES = ("checkout.session.completed", "checkout.session.async_payment_succeeded")


def checkout_session_fact(session: dict[str, Any], event: dict[str, Any] | None = None) -> StripeFact:
    """A paid Checkout Session of a credit pack (https://docs.stripe.com/api/checkout/sessions/object)
    as the ``payment_intent_succeeded`` fact of its PaymentIntent: ``amount_total`` and the
    session's metadata (``stellar_payment_id``). Its PaymentIntent's own ``payment_intent.succeeded``
    names the same payment (``payment_intent_data.metadata``), so both grant under one ledger key
    (``payment:<id>``): once."""
    fact = payment_intent_fact({"id": _id(session.get("payment_intent")), "customer": session.get("customer"),
                                "amount": session.get("amount_total"), "currency": session.get("currency"),
                                "metadata": session.get("metadata") or {}, "created": session.get("created")},
                               "payment_intent_succeeded", event)
    return fact


def charge_fact(charge: dict[str, Any], event: dict[str, Any] | None = None) -> StripeFact:
    """A ``charge_refunded`` fact from a charge (https://docs.stripe.com/api/charges/object):
    ``amount_refunded`` is cumulative, so the latest of any order of events is the largest.
    ``invoice`` is read when present (classic API versions; later ones drop it)."""
    return StripeFact(
        kind="charge_refunded",
        event_id=event.get("id") if event else None,
        event_type=event.get("type", "") if event else "",
        created_ts=_int((event or charge).get("created")) or 0,
        stripe_customer_id=_id(charge.get("customer")),
        charge_id=charge.get("id"),
        payment_intent_id=_id(charge.get("payment_intent")),
        invoice_id=_id(charge.get("invoice")),
        amount_cents=_int(charge.get("amount")),
        refunded_cents=_int(charge.get("amount_refunded")) or 0,
        currency=charge.get("currency"),
    )


def dispute_fact(dispute: dict[str, Any], event: dict[str, Any] | None = None) -> StripeFact:
    """A ``charge_dispute`` fact from a dispute (https://docs.stripe.com/api/disputes/object).
    ``charge`` may be expanded into the charge object, which then gives the charge's amount,
    customer and invoice too."""
    charge = dispute.get("charge")
    charge = charge if isinstance(charge, dict) else {}
    return StripeFact(
        kind="charge_dispute",
        event_id=event.get("id") if event else None,
        event_type=event.get("type", "") if event else "",
        created_ts=_int((event or dispute).get("created")) or 0,
        stripe_customer_id=_id(charge.get("customer")),
        charge_id=_id(dispute.get("charge")),
        payment_intent_id=_id(dispute.get("payment_intent")) or _id(charge.get("payment_intent")),
        invoice_id=_id(charge.get("invoice")),
        amount_cents=_int(charge.get("amount")),
        dispute_id=dispute.get("id"),
        dispute_status=dispute.get("status"),
        dispute_amount_cents=_int(dispute.get("amount")) or 0,
        currency=dispute.get("currency"),
    )


def event_to_fact(event: dict[str, Any]) -> StripeFact | None:
    """The fact an event states, or None for event types Stellar does not act on."""
    etype = event.get("type")
    obj = _get(event, "data", "object") or {}
    if etype in INVOICE_PAID_TYPES:
        return invoice_fact(obj, "invoice_paid", event)
    if etype == "invoice.payment_failed":
        return invoice_fact(obj, "invoice_payment_failed", event)
    if etype in ("customer.subscription.created", "customer.subscription.updated"):
        return subscription_fact(obj, "subscription_updated", event)
    if etype == "customer.subscription.deleted":
        return subscription_fact(obj, "subscription_deleted", event)
    if etype == "payment_intent.succeeded":
        return payment_intent_fact(obj, "payment_intent_succeeded", event)
    if etype == "payment_intent.payment_failed":
        return payment_intent_fact(obj, "payment_intent_failed", event)
    if etype == "payment_intent.canceled":
        return payment_intent_fact(obj, "payment_intent_canceled", event)
    if etype in CHECKOUT_PAID_TYPES and obj.get("mode") == "payment" and obj.get("payment_status") == "paid":
        return checkout_session_fact(obj, event)
    if etype == "charge.refunded" and obj.get("id"):
        return charge_fact(obj, event)
    if etype in DISPUTE_TYPES and obj.get("id") and obj.get("charge"):
        return dispute_fact(obj, event)
    return None
