"""Is a customer's (or an order's) payment in dispute? A read for other parts of Stellar, e.g. data
retention keeping an order's frames while a chargeback is argued.

Credits are fungible: an order is paid from the customer's buckets, not from one charge, so "this
order's payment" is answered at the customer level — the order's customer has a Stripe dispute
(``payment_dispute``, written by billing/reversals.py from ``charge.dispute.*`` webhooks) that is
still open. Stripe's statuses (https://docs.stripe.com/api/disputes/object#dispute_object-status):
open = ``warning_needs_response``, ``warning_under_review``, ``needs_response``, ``under_review``;
closed = ``won``, ``lost``, ``warning_closed``, ``charge_refunded`` (and ``prevented``).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from models.db import Order, PaymentDispute

DISPUTE = PaymentDispute.__table__
ORDER = Order.__table__
OPEN_DISPUTE_STATUSES = ("warning_needs_response", "warning_under_review", "needs_response", "under_review")


def _open_for(customer_id_expr) -> sa.Exists:
    return sa.exists().where(DISPUTE.c.customer_id == customer_id_expr,
                             DISPUTE.c.status.in_(OPEN_DISPUTE_STATUSES))


async def payment_in_dispute(db: AsyncConnection | AsyncSession, customer_id: int) -> bool:
    """True when ``customer_id`` has a Stripe dispute that is not closed yet. Read-only, one query."""
    return bool((await db.execute(sa.select(_open_for(customer_id)))).scalar())


async def order_payment_in_dispute(db: AsyncConnection | AsyncSession, order_id: int) -> bool:
    """True when the customer of order ``order_id`` has an open Stripe dispute (module doc: credits
    are fungible, so the customer's disputes are the order's). False for an unknown order.
    Read-only, one query."""
    stmt = sa.select(_open_for(ORDER.c.customer_id)).select_from(ORDER).where(ORDER.c.id == order_id)
    return bool((await db.execute(stmt)).scalar())
