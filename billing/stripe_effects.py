"""The credit effects of Stripe facts, each applied exactly once.

One database transaction per fact: the ``stripe_event`` row (its event id, UNIQUE) and the
effect are committed together, so an event is processed at most once even when Stripe delivers
it again, late or out of order; a fact read from the API (``event_id`` None: subscribe path,
reconciliation) records no event row and relies on the ledger keys alone:

* ``invoice_paid`` → grant ``billing.allowance.invoice_allowance`` subscription credits, key
  ``invoice:<invoice id>`` (``invoice.paid`` and ``invoice.payment_succeeded`` of one invoice, and
  the subscribe path, all hit the same key);
* ``subscription_deleted`` whose subscription is the customer's current one → expire the
  subscription bucket, key ``expire:<subscription id>`` (pack credits stay); a paid invoice of
  that subscription arriving after its end is granted, then expired again (same final balance
  in any order);
* ``payment_intent_succeeded`` of a pack → grant the pack's credits + bonus to the pack bucket,
  key ``payment:<payment id>``, and mark the payment ``completed``;
* ``charge_refunded`` / ``charge_dispute`` → take back (or give back) the credits of the grant the
  charge paid for, pro rata to what is reversed (``billing.reversals``); a grant that arrives after
  its reversal is taken back at once.

Other facts only record their event; the owning workflow acts on them (status, period, closing
an unpaid payment).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, TypeVar

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from billing.allowance import invoice_allowance, invoice_plan
from billing.grant_lots import record_grant_value
from billing.ledger import Ledger
from billing.reversals import apply_reversal, sync_grant
from models.db import Customer, InvoicePayment, Payment, StripeEvent
from models.payments import FactOutcome, StripeFact

log = structlog.get_logger(__name__)

EVENT = StripeEvent.__table__
PAYMENT = Payment.__table__
CUSTOMER = Customer.__table__
INVOICE_PAYMENT = InvoicePayment.__table__
T = TypeVar("T")
ACTOR = "stripe"
REVERSAL_KINDS = ("charge_refunded", "charge_dispute")


def invoice_key(invoice_id: str) -> str:
    return f"invoice:{invoice_id}"


def payment_key(payment_id: int) -> str:
    return f"payment:{payment_id}"


def expire_key(stripe_subscription_id: str) -> str:
    return f"expire:{stripe_subscription_id}"


class _LedgerInTransaction(Ledger):
    """The ledger's operations inside the caller's transaction (a savepoint each), so the
    ``stripe_event`` row and the credit movement commit or roll back together.

    Relies on ``Ledger._tx`` being the one place the ledger opens its transactions.
    """

    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__(conn.engine)
        self._conn = conn

    async def _tx(self, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async with self._conn.begin_nested():
            return await fn(self._conn)


async def record_event(conn: AsyncConnection, event_id: str, event_type: str) -> bool:
    """Insert the event id; False when it was already processed."""
    row = (await conn.execute(
        pg_insert(EVENT).values(id=event_id, type=event_type[:100], processed_at=sa.func.now())
        .on_conflict_do_nothing(index_elements=["id"]).returning(EVENT.c.id))).first()
    return row is not None


async def customer_for_stripe(conn: AsyncConnection, stripe_customer_id: str | None) -> int | None:
    """Our customer id for a Stripe customer id, or None."""
    if not stripe_customer_id:
        return None
    return (await conn.execute(sa.select(CUSTOMER.c.id).where(
        CUSTOMER.c.stripe_customer_id == stripe_customer_id))).scalar()


async def trusted_customer(conn: AsyncConnection, fact: StripeFact) -> int | None:
    """Our customer for a fact, never from event metadata alone when Stripe names the customer.

    A fact naming a Stripe customer resolves only through the id we stored when we created that
    customer (``customer.stripe_customer_id``): metadata can be written by anything holding the
    account's API key, the customer object's id cannot be forged into our table. The
    ``stellar_customer_id`` metadata is the fallback only for a fact naming no Stripe customer, and
    only for a customer of ours that has no Stripe customer on record. None = not ours.
    """
    if fact.stripe_customer_id:
        return await customer_for_stripe(conn, fact.stripe_customer_id)
    if fact.customer_id is None:
        return None
    row = (await conn.execute(sa.select(CUSTOMER.c.id, CUSTOMER.c.stripe_customer_id).where(
        CUSTOMER.c.id == fact.customer_id))).first()
    return row.id if row is not None and row.stripe_customer_id is None else None


async def _invoice_paid(conn: AsyncConnection, fact: StripeFact) -> FactOutcome:
    customer_id = await trusted_customer(conn, fact)
    amount = invoice_allowance(fact.lines)
    out = FactOutcome(event_id=fact.event_id, kind=fact.kind)
    if customer_id is None:
        out.note = f"unknown Stripe customer {fact.stripe_customer_id}"
        log.warning("stripe.invoice_unknown_customer", invoice_id=fact.invoice_id, stripe_customer=fact.stripe_customer_id)
        return out
    if amount <= 0 or not fact.invoice_id:
        out.note = "no allowance on this invoice"
        return out
    plan = invoice_plan(fact.lines) or "?"
    if fact.payment_intent_id:  # a later dispute names only the PaymentIntent: remember its invoice
        await conn.execute(pg_insert(INVOICE_PAYMENT).values(
            payment_intent_id=fact.payment_intent_id, invoice_id=fact.invoice_id, customer_id=customer_id,
            amount_cents=fact.amount_cents or 0, created_at=sa.func.now(),
        ).on_conflict_do_nothing(index_elements=["payment_intent_id"]))
    res = await _LedgerInTransaction(conn).grant(
        customer_id, amount, "subscription", invoice_key(fact.invoice_id), "invoice", fact.invoice_id,
        actor=ACTOR, reason=f"monthly credits, {plan} (invoice {fact.invoice_id})")
    out.credits = 0 if res.replayed else amount
    out.note = "replayed" if res.replayed else "granted"
    if not res.replayed:  # the invoice's amount paid buys its allowance (docs/host-earnings.md §1)
        await record_grant_value(conn, invoice_key(fact.invoice_id), max(0, fact.amount_cents or 0), "subscription")
        out.credits += await sync_grant(conn, invoice_key(fact.invoice_id))
    return out


async def _expire(conn: AsyncConnection, fact: StripeFact, out: FactOutcome) -> FactOutcome:
    """Expire the subscription bucket because ``fact``'s subscription has ended (pack credits stay)."""
    customer_id = await trusted_customer(conn, fact)
    sub = fact.stripe_subscription_id
    if customer_id is None or not sub:
        out.note = (out.note + "; " if out.note else "") + "cannot expire: unknown customer or subscription"
        return out
    # A late paid invoice of an ended subscription is granted (it was paid) and expired again.
    key = expire_key(sub) if fact.kind == "subscription_deleted" else f"{expire_key(sub)}:{fact.invoice_id}"
    res = await _LedgerInTransaction(conn).expire(
        customer_id, key, actor=ACTOR, reason=f"subscription {sub} ended", reference_type="subscription",
        reference_id=sub)
    if not res.replayed:
        out.credits += res.amount
    out.note = (out.note + "; " if out.note else "") + ("expire replayed" if res.replayed else "expired")
    return out


async def _payment_succeeded(conn: AsyncConnection, fact: StripeFact) -> FactOutcome:
    out = FactOutcome(event_id=fact.event_id, kind=fact.kind)
    if fact.payment_id is None:
        out.note = "not a credit-pack payment"
        return out
    p = (await conn.execute(sa.select(PAYMENT).where(PAYMENT.c.id == fact.payment_id).with_for_update())).first()
    if p is None:
        out.note = f"no payment {fact.payment_id}"
        log.warning("stripe.payment_unknown", payment_id=fact.payment_id, payment_intent=fact.payment_intent_id)
        return out
    if p.stripe_payment_intent_id and fact.payment_intent_id and p.stripe_payment_intent_id != fact.payment_intent_id:
        out.note = f"payment {p.id} belongs to {p.stripe_payment_intent_id}, not {fact.payment_intent_id}"
        log.error("stripe.payment_intent_mismatch", payment_id=p.id, expected=p.stripe_payment_intent_id,
                  got=fact.payment_intent_id)
        return out
    # The payment id comes from metadata: the PaymentIntent itself must match the purchase we priced.
    refused = _payment_mismatch(p, fact, await customer_for_stripe(conn, fact.stripe_customer_id))
    if refused:
        out.note = refused
        log.error("stripe.payment_mismatch", payment_id=p.id, payment_intent=fact.payment_intent_id, why=refused)
        return out
    total = p.credits + p.bonus_credits
    res = await _LedgerInTransaction(conn).grant(
        p.customer_id, total, "pack", payment_key(p.id), "payment", str(p.id), actor=ACTOR,
        reason=f"credit pack {p.pack_id}: {p.credits} + {p.bonus_credits} bonus (payment {p.id})")
    # The customer paid, so the purchase completes even if our 24 h timer had given up on it.
    await conn.execute(PAYMENT.update().where(PAYMENT.c.id == p.id).values(
        status="completed", completed_at=sa.func.coalesce(PAYMENT.c.completed_at, sa.func.now()),
        stripe_payment_intent_id=sa.func.coalesce(PAYMENT.c.stripe_payment_intent_id, fact.payment_intent_id)))
    out.credits = 0 if res.replayed else total
    out.note = "replayed" if res.replayed else "granted"
    if not res.replayed:  # the pack's price buys its credits and bonus (docs/host-earnings.md §1)
        await record_grant_value(conn, payment_key(p.id), p.amount_cents, "pack")
        out.credits += await sync_grant(conn, payment_key(p.id))
    return out


def _payment_mismatch(p: Any, fact: StripeFact, stripe_owner: int | None) -> str | None:
    """Why a ``payment_intent_succeeded`` fact cannot pay payment row ``p`` (None: it can): an
    amount below the price, another currency, or a Stripe customer that is another of ours."""
    if fact.amount_cents is None or fact.amount_cents < p.amount_cents:
        return f"payment {p.id} costs {p.amount_cents}, the PaymentIntent is for {fact.amount_cents}"
    if fact.currency and fact.currency.lower() != str(p.currency).lower():
        return f"payment {p.id} is in {p.currency}, the PaymentIntent in {fact.currency}"
    if fact.stripe_customer_id and stripe_owner is not None and stripe_owner != p.customer_id:
        return f"payment {p.id} belongs to customer {p.customer_id}, the PaymentIntent to {stripe_owner}"
    return None


async def apply_fact(engine: AsyncEngine, fact: StripeFact, expire: bool = False) -> FactOutcome:
    """Apply one fact in one transaction (event row + effect).

    ``expire`` (decided by the subscription workflow, which knows the customer's current
    subscription): after a ``subscription_deleted`` of the current subscription, or a late
    ``invoice_paid`` of it, expire the subscription bucket (key ``expire:<sub>`` /
    ``expire:<sub>:<invoice>``). Raises billing errors (IdempotencyConflict, UnknownCustomer)."""
    async with engine.begin() as conn:
        if fact.event_id and not await record_event(conn, fact.event_id, fact.event_type or fact.kind):
            return FactOutcome(event_id=fact.event_id, kind=fact.kind, duplicate=True, note="duplicate event")
        if fact.kind == "invoice_paid":
            out = await _invoice_paid(conn, fact)
        elif fact.kind == "payment_intent_succeeded":
            out = await _payment_succeeded(conn, fact)
        elif fact.kind in REVERSAL_KINDS:
            out = await apply_reversal(conn, fact)
        else:
            out = FactOutcome(event_id=fact.event_id, kind=fact.kind, note="recorded")
        if expire and fact.kind in ("invoice_paid", "subscription_deleted"):
            out = await _expire(conn, fact, out)
    log.info("stripe.fact_applied", kind=fact.kind, event_id=fact.event_id, credits=out.credits, note=out.note)
    return out


async def close_payment(engine: AsyncEngine, payment_id: int, status: str) -> str:
    """Move a *pending* payment to ``cancelled`` or ``failed``; returns the status it has after
    (a completed payment stays completed)."""
    if status not in ("cancelled", "failed"):
        raise ValueError(f"close_payment status must be cancelled or failed, got {status!r}")
    async with engine.begin() as conn:
        await conn.execute(PAYMENT.update().where(PAYMENT.c.id == payment_id, PAYMENT.c.status == "pending")
                           .values(status=status))
        now = (await conn.execute(sa.select(PAYMENT.c.status).where(PAYMENT.c.id == payment_id))).scalar()
    log.info("payment.closed", payment_id=payment_id, requested=status, status=now)
    return now or "missing"


def payment_row(p: Any) -> dict[str, Any]:
    """A payment row mapping → ``PaymentOut`` fields."""
    return dict(id=p.id, pack_id=p.pack_id, credits=p.credits, bonus_credits=p.bonus_credits,
                total_credits=p.credits + p.bonus_credits, amount_cents=p.amount_cents, currency=p.currency,
                status=p.status, stripe_payment_intent_id=p.stripe_payment_intent_id,
                created_at=p.created_at, completed_at=p.completed_at)
