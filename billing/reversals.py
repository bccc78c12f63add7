"""Payment reversals: a refunded or disputed charge takes back the credits its payment granted.

Per charge, Stripe's facts are folded into a state that is the same whatever the order and the
number of deliveries:

* ``refunded_cents``: the largest cumulative ``amount_refunded`` seen (``charge.refunded``);
* each dispute's status (``payment_dispute``) only moves up :data:`DISPUTE_RANK` — a closed
  dispute never reopens, and ``won`` outranks ``lost`` (funds reinstated: the customer's favour);
* reversed = min(charge amount, refunded + Σ amounts of disputes whose funds are withdrawn
  (:data:`FUNDS_WITHDRAWN`)).

The credits to take back are ``granted × reversed ÷ charge amount``, rounded down (pro rata to the
amount reversed; a full refund takes everything). ``payment_reversal.clawed_back`` is moved to that
target by one ledger operation: ``Ledger.clawback`` (from the grant's bucket first, the rest as
debt) or ``Ledger.restore`` (to the debt first). The account row lock is taken before the state is
read, so concurrent deliveries serialize, and a repeated fact finds nothing left to move.

The grant a charge paid for: a pack's ``payment:<id>`` (the payment whose PaymentIntent was
charged) or a subscription invoice's ``invoice:<id>`` (the charge's invoice, or the invoice its
PaymentIntent paid — ``invoice_payment``, recorded when the invoice was granted). A reversal that
arrives before its grant is stored and applied when the grant is (:func:`sync_grant`).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from billing.host_earnings import on_grant_reversed
from billing.ledger import Ledger
from models.db import Customer, InvoicePayment, LedgerEntry, Payment, PaymentDispute, PaymentReversal
from models.payments import FactOutcome, StripeFact

log = structlog.get_logger(__name__)

REVERSAL = PaymentReversal.__table__
DISPUTE = PaymentDispute.__table__
ENTRY = LedgerEntry.__table__
PAYMENT = Payment.__table__
CUSTOMER = Customer.__table__
INVOICE_PAYMENT = InvoicePayment.__table__
ACTOR = "stripe"

#: Stripe dispute statuses, ordered: a fact never moves a dispute to a lower rank.
DISPUTE_RANK = {
    "warning_needs_response": 1, "needs_response": 1,
    "warning_under_review": 2, "under_review": 2,
    "warning_closed": 3, "charge_refunded": 3, "prevented": 3, "lost": 3,
    "won": 4,
}
#: Statuses under which the disputed amount has left our balance (inquiries, ``warning_*``, never
#: withdraw funds; ``charge_refunded`` is counted by the refund itself).
FUNDS_WITHDRAWN = frozenset({"needs_response", "under_review", "lost"})
CLOSED_STATUSES = frozenset({"won", "lost", "warning_closed", "charge_refunded", "prevented"})


@dataclass(frozen=True)
class _Grant:
    customer_id: int
    key: str
    bucket: str
    amount_cents: int | None


def _rank(status: str | None) -> tuple[int, str]:
    return DISPUTE_RANK.get(status or "", 0), status or ""


async def _grant_for(conn: AsyncConnection, fact: StripeFact) -> _Grant | None:
    """The grant ``fact``'s charge paid for: a pack payment by PaymentIntent, else the charge's
    invoice, else what an earlier fact of this charge recorded. None when it cannot be told."""
    if fact.payment_intent_id:
        p = (await conn.execute(sa.select(PAYMENT.c.id, PAYMENT.c.customer_id, PAYMENT.c.amount_cents).where(
            PAYMENT.c.stripe_payment_intent_id == fact.payment_intent_id))).first()
        if p is not None:
            return _Grant(p.customer_id, f"payment:{p.id}", "pack", p.amount_cents)
        inv = (await conn.execute(sa.select(INVOICE_PAYMENT).where(
            INVOICE_PAYMENT.c.payment_intent_id == fact.payment_intent_id))).first()
        if inv is not None:
            fact = fact.model_copy(update={"invoice_id": fact.invoice_id or inv.invoice_id,
                                           "amount_cents": fact.amount_cents or inv.amount_cents})
    if fact.charge_id:
        r = (await conn.execute(sa.select(REVERSAL).where(REVERSAL.c.charge_id == fact.charge_id))).first()
        if r is not None:
            return _Grant(r.customer_id, r.grant_key, r.bucket, r.charge_amount_cents or fact.amount_cents)
    if fact.invoice_id:
        key = f"invoice:{fact.invoice_id}"
        customer_id = (await conn.execute(sa.select(ENTRY.c.customer_id).where(ENTRY.c.idempotency_key == key))).scalar()
        if customer_id is None and fact.stripe_customer_id:
            customer_id = (await conn.execute(sa.select(CUSTOMER.c.id).where(
                CUSTOMER.c.stripe_customer_id == fact.stripe_customer_id))).scalar()
        if customer_id is not None:
            return _Grant(customer_id, key, "subscription", fact.amount_cents)
    return None


async def _record_dispute(conn: AsyncConnection, fact: StripeFact, customer_id: int) -> str:
    """Insert or raise the dispute's status (never lower it); returns the status it has after."""
    row = (await conn.execute(sa.select(DISPUTE).where(DISPUTE.c.id == fact.dispute_id).with_for_update())).first()
    status = fact.dispute_status or "needs_response"
    closed = sa.func.now() if status in CLOSED_STATUSES else None
    if row is None:
        await conn.execute(DISPUTE.insert().values(
            id=fact.dispute_id, charge_id=fact.charge_id, customer_id=customer_id,
            amount_cents=fact.dispute_amount_cents or 0, status=status, reason="", created_at=sa.func.now(),
            closed_at=closed))
        return status
    if _rank(status) > _rank(row.status):
        await conn.execute(DISPUTE.update().where(DISPUTE.c.id == row.id).values(
            status=status, amount_cents=max(row.amount_cents, fact.dispute_amount_cents or 0),
            closed_at=sa.func.coalesce(DISPUTE.c.closed_at, closed)))
        return status
    return row.status


async def _ended_since_grant(conn: AsyncConnection, customer_id: int, bucket: str, grant_key: str) -> bool:
    """Subscription credits given back after their subscription ended stay expired: an ``expire``
    of the subscription bucket (not an order's) came after the grant."""
    if bucket != "subscription":
        return False
    grant_id = sa.select(ENTRY.c.id).where(ENTRY.c.idempotency_key == grant_key).scalar_subquery()
    return bool((await conn.execute(sa.select(sa.exists().where(
        ENTRY.c.customer_id == customer_id, ENTRY.c.kind == "expire", ENTRY.c.reference_type == "subscription",
        ENTRY.c.id > grant_id)))).scalar())


async def _sync(conn: AsyncConnection, charge_id: str) -> int:
    """Move ``clawed_back`` of ``charge_id`` to its target; returns the signed change of available
    credits (negative: taken back). The caller holds the customer's account lock."""
    r = (await conn.execute(sa.select(REVERSAL).where(REVERSAL.c.charge_id == charge_id).with_for_update())).one()
    granted = (await conn.execute(sa.select(ENTRY.c.amount).where(
        ENTRY.c.idempotency_key == r.grant_key, ENTRY.c.kind == "grant"))).scalar() or 0
    withdrawn = (await conn.execute(sa.select(sa.func.coalesce(sa.func.sum(DISPUTE.c.amount_cents), 0)).where(
        DISPUTE.c.charge_id == charge_id, DISPUTE.c.status.in_(FUNDS_WITHDRAWN)))).scalar_one()
    amount = r.charge_amount_cents
    reversed_cents = min(amount, r.refunded_cents + int(withdrawn)) if amount > 0 else 0
    target = granted * reversed_cents // amount if amount > 0 else 0
    delta = target - r.clawed_back
    key = f"reversal:{charge_id}:{r.moves + 1}"
    why = (f"charge {charge_id} reversed {reversed_cents} of {amount} cents: "
           f"{target} of the {granted} credits of {r.grant_key} taken back")
    # The hosts' share follows the money reversed, even when it moves no whole credit.
    await on_grant_reversed(conn, r.customer_id, r.grant_key, (reversed_cents, amount), delta,
                            f"{key}:{reversed_cents}c", why)
    if delta == 0:
        return 0
    ledger = Ledger.bound(conn)
    if delta > 0:
        await ledger.clawback(r.customer_id, r.bucket, delta, key, "charge", charge_id, ACTOR, why)
    else:
        await ledger.restore(r.customer_id, r.bucket, -delta, key, "charge", charge_id, ACTOR, why,
                             expired=await _ended_since_grant(conn, r.customer_id, r.bucket, r.grant_key))
    await conn.execute(REVERSAL.update().where(REVERSAL.c.id == r.id).values(
        clawed_back=target, moves=r.moves + 1, updated_at=sa.func.now()))
    log.info("stripe.reversal_applied", charge_id=charge_id, grant=r.grant_key, target=target, delta=delta)
    return -delta


async def apply_reversal(conn: AsyncConnection, fact: StripeFact) -> FactOutcome:
    """Fold a ``charge_refunded`` / ``charge_dispute`` fact into its charge's state and move the
    ledger to match, inside the caller's transaction. ``FactOutcome.credits``: signed change of
    available credits (−8: eight credits taken back)."""
    out = FactOutcome(event_id=fact.event_id, kind=fact.kind)
    if not fact.charge_id:
        out.note = "no charge id"
        return out
    grant = await _grant_for(conn, fact)
    if grant is None:
        out.note = f"charge {fact.charge_id} is not tied to a pack payment or a known invoice"
        log.warning("stripe.reversal_unmatched", charge_id=fact.charge_id, kind=fact.kind,
                    payment_intent=fact.payment_intent_id, invoice=fact.invoice_id)
        return out
    await Ledger.lock_account(conn, grant.customer_id)  # serializes this customer's reversals
    await conn.execute(pg_insert(REVERSAL).values(
        charge_id=fact.charge_id, customer_id=grant.customer_id, grant_key=grant.key, bucket=grant.bucket,
        granted_credits=0, charge_amount_cents=grant.amount_cents or 0, refunded_cents=0, clawed_back=0,
        moves=0, created_at=sa.func.now(), updated_at=sa.func.now(),
    ).on_conflict_do_nothing(index_elements=["charge_id"]))
    if fact.kind == "charge_refunded":
        await conn.execute(REVERSAL.update().where(REVERSAL.c.charge_id == fact.charge_id).values(
            refunded_cents=sa.func.greatest(REVERSAL.c.refunded_cents, fact.refunded_cents or 0),
            charge_amount_cents=sa.func.greatest(REVERSAL.c.charge_amount_cents, fact.amount_cents or 0),
            updated_at=sa.func.now()))
        out.note = f"refunded {fact.refunded_cents} of {fact.amount_cents} cents"
    elif fact.kind == "charge_dispute" and fact.dispute_id:
        status = await _record_dispute(conn, fact, grant.customer_id)
        out.note = f"dispute {fact.dispute_id} {status}"
    granted = (await conn.execute(sa.select(ENTRY.c.amount).where(ENTRY.c.idempotency_key == grant.key))).scalar()
    await conn.execute(REVERSAL.update().where(REVERSAL.c.charge_id == fact.charge_id).values(
        granted_credits=granted or 0))
    out.credits = await _sync(conn, fact.charge_id)
    return out


async def sync_grant(conn: AsyncConnection, grant_key: str) -> int:
    """After ``grant_key`` was granted: apply the reversals that arrived before it. Returns the
    signed change of available credits."""
    charges = (await conn.execute(sa.select(REVERSAL.c.charge_id, REVERSAL.c.customer_id).where(
        REVERSAL.c.grant_key == grant_key))).all()
    moved = 0
    for c in charges:
        await Ledger.lock_account(conn, c.customer_id)
        granted = (await conn.execute(sa.select(ENTRY.c.amount).where(ENTRY.c.idempotency_key == grant_key))).scalar()
        await conn.execute(REVERSAL.update().where(REVERSAL.c.charge_id == c.charge_id).values(
            granted_credits=granted or 0))
        moved += await _sync(conn, c.charge_id)
    return moved

