"""Stripe event payloads built from Stripe's documented shapes (API 2025-03-31 "basil" and later:
``invoice.parent.subscription_details.subscription``, line ``pricing.price_details.price`` and
``parent.subscription_item_details.proration``, periods on subscription items), for the paths
localstripe cannot produce: twelve distinct monthly periods, ``billing_reason`` values, a
declined renewal, an upgrade's proration invoice.

References: https://docs.stripe.com/api/events/object, /api/invoices/object,
/api/invoice-line-item/object, /api/subscriptions/object.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timezone
from typing import Any

from dateutil.relativedelta import relativedelta

_seq = itertools.count(1)
YEAR_START = datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc)


def ts(dt: datetime) -> int:
    return int(dt.timestamp())


def month(m: int) -> tuple[int, int]:
    """(start, end) epoch seconds of the ``m``-th monthly period (0-based) of the year."""
    return ts(YEAR_START + relativedelta(months=m)), ts(YEAR_START + relativedelta(months=m + 1))


def event(etype: str, obj: dict[str, Any], created: int) -> dict[str, Any]:
    n = next(_seq)
    return {"id": f"evt_test_{n:06d}_{obj['id'][-6:]}", "object": "event", "api_version": "2025-03-31.basil",
            "created": created, "livemode": False, "pending_webhooks": 1, "type": etype,
            "request": {"id": None, "idempotency_key": None}, "data": {"object": obj}}


def line(plan: str, amount: int, start: int, end: int, proration: bool = False) -> dict[str, Any]:
    return {"id": f"il_{next(_seq):08d}", "object": "line_item", "amount": amount, "currency": "eur",
            "description": f"1 × Stellar {plan}", "period": {"start": start, "end": end},
            "pricing": {"type": "price_details", "price_details": {"price": f"stellar_{plan}_monthly",
                                                                     "product": f"prod_{plan}"}},
            "parent": {"type": "subscription_item_details",
                       "subscription_item_details": {"proration": proration, "subscription_item": "si_test"}},
            "quantity": 1}


def invoice(inv_id: str, customer: str, sub: str, lines: list[dict[str, Any]], *, status: str, reason: str,
            created: int, customer_id: int) -> dict[str, Any]:
    total = sum(ln["amount"] for ln in lines)
    paid = status == "paid"
    return {"id": inv_id, "object": "invoice", "customer": customer, "currency": "eur", "status": status,
            "billing_reason": reason, "amount_due": total, "amount_paid": total if paid else 0,
            "amount_remaining": 0 if paid else total, "attempt_count": 1, "created": created,
            "period_start": lines[0]["period"]["start"], "period_end": lines[0]["period"]["start"],
            "parent": {"type": "subscription_details", "quote_details": None,
                       "subscription_details": {"subscription": sub,
                                                "metadata": {"stellar_customer_id": str(customer_id)}}},
            "lines": {"object": "list", "data": lines, "has_more": False, "total_count": len(lines),
                      "url": f"/v1/invoices/{inv_id}/lines"},
            "status_transitions": {"finalized_at": created, "paid_at": created + 5 if paid else None}}


def subscription(sub: str, customer: str, plan: str, period: tuple[int, int], *, status: str,
                 cancel_at_period_end: bool = False, customer_id: int) -> dict[str, Any]:
    return {"id": sub, "object": "subscription", "customer": customer, "status": status,
            "cancel_at_period_end": cancel_at_period_end, "created": period[0],
            "metadata": {"stellar_customer_id": str(customer_id), "stellar_plan": plan},
            "items": {"object": "list", "data": [{
                "id": "si_test", "object": "subscription_item", "current_period_start": period[0],
                "current_period_end": period[1], "price": {"id": f"stellar_{plan}_monthly", "object": "price"},
                "quantity": 1}]}}


def subscription_year(customer: str, customer_id: int, sub: str, plan: str = "nebula", *,
                      failed_month: int | None = 5, cancel_in_month: int | None = 11,
                      end: bool = False, upgrade_month: int | None = None, upgrade_to: str = "quasar",
                      downgrade_month: int | None = None, downgrade_to: str = "stardust") -> list[dict[str, Any]]:
    """Every webhook of one subscription year, in the order Stripe would send them.

    Each month: ``invoice.paid`` and ``invoice.payment_succeeded`` (Stripe sends both) for that
    month's invoice. ``failed_month``: that renewal is first declined (``invoice.payment_failed``,
    subscription ``past_due``), then paid on retry. ``upgrade_month``: a prorated upgrade invoice
    (``subscription_update``) in that month; ``downgrade_month``: renewals from that month on bill
    ``downgrade_to``. ``cancel_in_month``: cancel at period end requested then; ``end``: the
    subscription ends after the twelfth period (``customer.subscription.deleted``).
    """
    out: list[dict[str, Any]] = []
    current = plan
    out.append(event("customer.subscription.created",
                     subscription(sub, customer, plan, month(0), status="incomplete", customer_id=customer_id),
                     month(0)[0]))
    for m in range(12):
        start, stop = month(m)
        if downgrade_month is not None and m == downgrade_month:
            current = downgrade_to
        amount = {"stardust": 2900, "nebula": 5900, "quasar": 11900}[current]
        inv_id = f"in_{sub[-8:]}_{m:02d}"
        lines = [line(current, amount, start, stop)]
        reason = "subscription_create" if m == 0 else "subscription_cycle"
        if failed_month is not None and m == failed_month:
            failed = invoice(inv_id, customer, sub, lines, status="open", reason=reason, created=start,
                             customer_id=customer_id)
            out.append(event("invoice.payment_failed", failed, start + 60))
            out.append(event("customer.subscription.updated", subscription(
                sub, customer, current, (start, stop), status="past_due", customer_id=customer_id), start + 61))
            out.append(event("customer.subscription.updated", subscription(
                sub, customer, current, (start, stop), status="active", customer_id=customer_id), start + 86_400))
            paid_at = start + 86_400
        else:
            paid_at = start + 10
            out.append(event("customer.subscription.updated", subscription(
                sub, customer, current, (start, stop), status="active", customer_id=customer_id), start + 1))
        paid = invoice(inv_id, customer, sub, lines, status="paid", reason=reason, created=start,
                       customer_id=customer_id)
        out.append(event("invoice.paid", paid, paid_at))
        out.append(event("invoice.payment_succeeded", paid, paid_at))
        if upgrade_month is not None and m == upgrade_month:
            mid = start + (stop - start) // 2
            up_amount = {"stardust": 2900, "nebula": 5900, "quasar": 11900}[upgrade_to]
            up_lines = [line(current, -(amount // 2), mid, stop, proration=True),
                        line(upgrade_to, up_amount // 2, mid, stop, proration=True)]
            up = invoice(f"in_{sub[-8:]}_{m:02d}u", customer, sub, up_lines, status="paid",
                         reason="subscription_update", created=mid, customer_id=customer_id)
            out.append(event("customer.subscription.updated", subscription(
                sub, customer, upgrade_to, (start, stop), status="active", customer_id=customer_id), mid))
            out.append(event("invoice.paid", up, mid + 5))
            out.append(event("invoice.payment_succeeded", up, mid + 5))
            current = upgrade_to
        if cancel_in_month is not None and m == cancel_in_month:
            out.append(event("customer.subscription.updated", subscription(
                sub, customer, current, (start, stop), status="active", cancel_at_period_end=True,
                customer_id=customer_id), start + 3600))
    if end:
        out.append(event("customer.subscription.deleted", subscription(
            sub, customer, current, month(11), status="canceled", cancel_at_period_end=True,
            customer_id=customer_id), month(12)[0]))
    return out


def charge_refunded(charge: dict[str, Any], amount_refunded: int, created: int) -> dict[str, Any]:
    """``charge.refunded`` for ``charge`` (a charge object, e.g. read from localstripe) once
    ``amount_refunded`` cents (cumulative) are refunded (https://docs.stripe.com/api/charges/object)."""
    obj = {**charge, "amount_refunded": amount_refunded, "refunded": amount_refunded >= charge["amount"]}
    return event("charge.refunded", obj, created)


def dispute(dispute_id: str, charge: dict[str, Any], amount: int, status: str, etype: str,
            created: int) -> dict[str, Any]:
    """A ``charge.dispute.*`` event for a dispute of ``amount`` cents of ``charge``, in ``status``
    (https://docs.stripe.com/api/disputes/object)."""
    obj = {"id": dispute_id, "object": "dispute", "amount": amount, "currency": charge.get("currency", "eur"),
           "charge": charge["id"], "payment_intent": charge.get("payment_intent"), "status": status,
           "reason": "fraudulent", "created": created, "livemode": False, "is_charge_refundable": False}
    return event(etype, obj, created)
