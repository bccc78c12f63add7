"""Host payouts: money paid to a telescope host lowers its due balance (docs/host-earnings.md §4).

A payout is a ``host_payout`` row and a two-leg transfer (``host:<id>`` −, ``stellar:payouts`` +),
written in one transaction under the host's customer row lock, so two payouts of one host never
both pass the due check. Exactly once per idempotency key: a repeat returns the first payout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Awaitable, Callable

import sqlalchemy as sa
import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from billing.errors import BillingError, IdempotencyConflict, InvalidAmount
from billing.host_earnings import post_transfer, host_account
from models.db import Customer, HostEarningEntry, HostPayout, Telescope

log = structlog.get_logger(__name__)

PAYOUT = HostPayout.__table__
EARN = HostEarningEntry.__table__
CUSTOMER = Customer.__table__
TELESCOPE = Telescope.__table__
METHODS = ("stripe_connect", "external")
PAYOUT_ACCOUNT = "stellar:payouts"

#: Sends ``amount_cents`` to the host's Stripe Connect account; returns the transfer id.
#: Arguments: connect account id, cents, idempotency key.
StripeTransfer = Callable[[str, int, str], Awaitable[str]]


class NotAHost(BillingError):
    """The customer hosts no telescope (HTTP 422)."""

    code = "not_a_host"


class PayoutExceedsDue(BillingError):
    """A payout above the host's due balance (HTTP 422); ``due_cents`` is that balance."""

    code = "payout_exceeds_due"

    def __init__(self, host_customer_id: int, amount_cents: int, due_cents: int) -> None:
        super().__init__(f"payout of {amount_cents} cents exceeds the {due_cents} cents due to host {host_customer_id}")
        self.host_customer_id, self.amount_cents, self.due_cents = host_customer_id, amount_cents, due_cents

    def __reduce__(self):
        return type(self), (self.host_customer_id, self.amount_cents, self.due_cents)


class PayoutMethodUnavailable(BillingError):
    """``stripe_connect`` asked but Stripe Connect is off or the host has no connected account (422)."""

    code = "payout_method_unavailable"


@dataclass(frozen=True)
class PayoutResult:
    id: int
    host_customer_id: int
    amount_cents: int
    method: str
    reference: str
    due_after_cents: int
    created_at: datetime
    replayed: bool


async def due_cents(conn: AsyncConnection, host_customer_id: int) -> int:
    """The host's due balance: Σ of its ``host:<id>`` legs (may be negative)."""
    return int((await conn.execute(sa.select(sa.func.coalesce(sa.func.sum(EARN.c.amount_cents), 0)).where(
        EARN.c.account == host_account(host_customer_id)))).scalar_one())


async def is_host(conn: AsyncConnection, customer_id: int) -> bool:
    """The customer hosts a telescope now, or earned on one before."""
    return bool((await conn.execute(sa.select(
        sa.exists().where(TELESCOPE.c.host_customer_id == customer_id)
        | sa.exists().where(EARN.c.host_customer_id == customer_id)))).scalar())


async def record_payout(conn: AsyncConnection, host_customer_id: int, amount_cents: int, method: str, reference: str,
                        key: str, actor: str, stripe_transfer: StripeTransfer | None = None) -> PayoutResult:
    """Pay ``amount_cents`` (> 0, ≤ due) to the host, in ``conn``'s transaction (the caller commits).

    ``method`` ``external``: ``reference`` is the bank transfer id; ``stripe_connect``: the transfer
    is made by ``stripe_transfer`` (None = Stripe Connect is off) to the host's
    ``stripe_connect_account_id`` with ``key`` as Stripe's idempotency key, and its id is the
    reference. Raises InvalidAmount, NotAHost, PayoutExceedsDue (with ``due_cents``),
    PayoutMethodUnavailable, IdempotencyConflict (``key`` used for another payout)."""
    if amount_cents <= 0:
        raise InvalidAmount(f"a payout must be > 0 cents, got {amount_cents}")
    if method not in METHODS:
        raise InvalidAmount(f"method must be one of {METHODS}, got {method!r}")
    if not key:
        raise InvalidAmount("an idempotency key is required")
    host = (await conn.execute(sa.select(CUSTOMER.c.id, CUSTOMER.c.stripe_connect_account_id)
                               .where(CUSTOMER.c.id == host_customer_id).with_for_update())).first()
    prior = (await conn.execute(sa.select(PAYOUT).where(PAYOUT.c.idempotency_key == key))).first()
    if prior is not None:
        if (prior.host_customer_id, prior.amount_cents, prior.method) != (host_customer_id, amount_cents, method):
            raise IdempotencyConflict(key, f"first used for a payout of {prior.amount_cents} cents "
                                           f"({prior.method}) to host {prior.host_customer_id}")
        return PayoutResult(prior.id, prior.host_customer_id, prior.amount_cents, prior.method, prior.reference,
                            await due_cents(conn, host_customer_id), prior.created_at, replayed=True)
    if host is None or not await is_host(conn, host_customer_id):
        raise NotAHost(f"customer {host_customer_id} hosts no telescope")
    due = await due_cents(conn, host_customer_id)
    if amount_cents > due:
        raise PayoutExceedsDue(host_customer_id, amount_cents, due)
    if method == "stripe_connect":
        if stripe_transfer is None or not host.stripe_connect_account_id:
            raise PayoutMethodUnavailable("Stripe Connect payouts are off or the host has no connected account")
        reference = await stripe_transfer(host.stripe_connect_account_id, amount_cents, key)
    elif not reference:
        raise InvalidAmount("an external payout needs its reference (the bank transfer id)")
    try:  # the key is taken by a concurrent payout to another host (same host: serialized by the lock)
        async with conn.begin_nested():
            row = (await conn.execute(PAYOUT.insert().values(
                host_customer_id=host_customer_id, amount_cents=amount_cents, method=method, reference=reference[:255],
                idempotency_key=key, actor=actor[:255], created_at=sa.func.now()).returning(*PAYOUT.c))).one()
    except IntegrityError:
        raise IdempotencyConflict(key, "first used by a concurrent payout") from None
    await post_transfer(conn, f"payout:{row.id}", "payout", host_customer_id, -amount_cents, payout_id=row.id,
                    counter=PAYOUT_ACCOUNT, reason=f"{method} {reference}")
    log.info("host.paid_out", host=host_customer_id, cents=amount_cents, method=method, reference=reference)
    return PayoutResult(row.id, host_customer_id, amount_cents, method, row.reference, due - amount_cents,
                        row.created_at, replayed=False)
