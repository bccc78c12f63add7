"""Host earnings: a telescope's host earns its share of the money value of what it delivered.

Rules (docs/host-earnings.md §2–§3):

* at every capture on a telescope with a host, in the capture's transaction, the host is credited
  ``share% × Σ value of the captured credits`` (their lots: ``billing.grant_lots``), with the share
  in force at capture time, recorded on the entry;
* **rounding**: an order's host entries always sum to ``floor(exact share of the order's net
  value)``. The capture credits that floor; a later reversal credits the new floor minus what the
  order already holds, so no cent is created or lost across an order's entries, and the sub-cent
  remainder stays with Stellar;
* releases earn nothing (a released credit is never captured);
* a refund or lost dispute of a grant lowers its lot's value (``reversed_cents``): every order that
  captured credits of it is re-credited to its new floor (a ``reversal``, negative; a dispute won
  gives it back). A host balance may go negative and carries over;
* double entry: every transfer is two ``host_earning_entry`` legs summing to 0, ``host:<id>`` and
  ``stellar:host_share``; a payout is ``host:<id>`` − and ``stellar:payouts`` + (billing/host_payouts.py).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from fractions import Fraction
from math import floor

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from billing.grant_lots import Allocation, adopt_unrecorded_grants, allocate_capture, allocations_of
from models.db import (CaptureAllocation, CreditGrant, CustomerTelescopeTotal, HostCustomerAlias, HostEarningEntry,
                       Order, OrderEvent, Telescope)

log = structlog.get_logger(__name__)

EARN = HostEarningEntry.__table__
ORDER = Order.__table__
TELESCOPE = Telescope.__table__
TOTAL = CustomerTelescopeTotal.__table__
ALIAS = HostCustomerAlias.__table__
EVENT = OrderEvent.__table__
LOT = CreditGrant.__table__
ALLOC = CaptureAllocation.__table__
SHARE_ACCOUNT = "stellar:host_share"
#: ``order_event.kind`` of a host credit (the event's ``type`` is ``HostEarningsCredited``).
EVENT_KIND = "host_earnings"


def host_account(host_customer_id: int) -> str:
    return f"host:{host_customer_id}"


def host_share_exact(allocations: list[Allocation], share_percent: int) -> Fraction:
    """The host's exact share, in cents, of the captured credits' value (before rounding)."""
    return sum((a.value for a in allocations), Fraction(0)) * share_percent / 100


def host_share_cents(allocations: list[Allocation], share_percent: int) -> int:
    """``floor`` of :func:`host_share_exact`: what an order's host entries sum to (module docstring)."""
    return floor(host_share_exact(allocations, share_percent))


@dataclass(frozen=True)
class HostCredit:
    """What one capture credited: ``amount_cents`` to ``host_customer_id`` at ``share_percent``."""

    order_id: int
    telescope_id: int
    host_customer_id: int
    share_percent: int
    credits: int
    value: Fraction
    amount_cents: int


async def post_transfer(conn: AsyncConnection, key: str, kind: str, host: int, cents: int, *, order_id: int | None = None,
                    telescope_id: int | None = None, customer_id: int | None = None, share: int | None = None,
                    payout_id: int | None = None, counter: str = SHARE_ACCOUNT, reason: str = "") -> bool:
    """Two legs under ``key``: ``host:<host>`` +cents, ``counter`` −cents. False if ``key`` exists."""
    common = dict(transfer_key=key, host_customer_id=host, kind=kind, order_id=order_id, telescope_id=telescope_id,
                  customer_id=customer_id, share_percent=share, payout_id=payout_id, reason=reason[:500],
                  created_at=sa.func.now())
    res = await conn.execute(pg_insert(EARN).values([
        dict(common, idempotency_key=f"{key}:host", account=host_account(host), amount_cents=cents),
        dict(common, idempotency_key=f"{key}:counter", account=counter, amount_cents=-cents),
    ]).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(EARN.c.id))
    return len(res.all()) == 2


async def alias_for(conn: AsyncConnection, host_customer_id: int, customer_id: int) -> str:
    """The stable pseudonymous id (``c_`` + 12 hex) under which ``host_customer_id`` sees ``customer_id``."""
    await conn.execute(pg_insert(ALIAS).values(
        host_customer_id=host_customer_id, customer_id=customer_id, alias=f"c_{secrets.token_hex(6)}",
    ).on_conflict_do_nothing(index_elements=["host_customer_id", "customer_id"]))
    return (await conn.execute(sa.select(ALIAS.c.alias).where(
        ALIAS.c.host_customer_id == host_customer_id, ALIAS.c.customer_id == customer_id))).scalar_one()


async def _add_totals(conn: AsyncConnection, customer_id: int, telescope_id: int, credits: int) -> None:
    ins = pg_insert(TOTAL).values(customer_id=customer_id, telescope_id=telescope_id, first_observation_at=sa.func.now(),
                                  last_observation_at=sa.func.now(), credits_captured=credits, orders=1)
    await conn.execute(ins.on_conflict_do_update(
        index_elements=["customer_id", "telescope_id"],
        set_={"last_observation_at": sa.func.now(), "credits_captured": TOTAL.c.credits_captured + credits,
              "orders": TOTAL.c.orders + 1}))


async def credit_host_for_capture(conn: AsyncConnection, order_id: int, customer_id: int,
                                  captured: dict[str, int]) -> HostCredit | None:
    """The capture side of host earnings, in the capture's transaction (``Ledger.capture``): add the
    captured credits to the customer↔telescope totals and, on a telescope with a host, allocate them
    to their lots and credit the host its share (entry ``earning``, a ``HostEarningsCredited`` order event).
    ``captured``: credits per bucket. Returns None when nothing was captured or the telescope has no
    host. Exactly once per order (the ledger resolves a hold once; the transfer key is the order's)."""
    credits = sum(captured.values())
    if credits <= 0:
        return None
    # Ledger order ids are bigint; an id beyond int4 is no order of the table (the ledger's own tests).
    t = (await conn.execute(
        sa.select(ORDER.c.telescope_id, TELESCOPE.c.host_customer_id, TELESCOPE.c.host_share_percent, TELESCOPE.c.slug)
        .join(TELESCOPE, TELESCOPE.c.id == ORDER.c.telescope_id)
        .where(ORDER.c.id == sa.literal(order_id, sa.BigInteger)))).first()
    if t is None:
        return None
    telescope_id = t.telescope_id
    await _add_totals(conn, customer_id, telescope_id, credits)
    if t.host_customer_id is None:
        # No host, nothing earned: the lots are not allocated here. The credits this capture spent
        # are written off oldest first at the next hosted capture (grant_lots.allocate_capture),
        # the same lots this allocation would have consumed.
        return None
    allocations = await allocate_capture(conn, customer_id, order_id, captured)
    await alias_for(conn, t.host_customer_id, customer_id)
    exact = host_share_exact(allocations, t.host_share_percent)
    cents = floor(exact)
    value = sum((a.value for a in allocations), Fraction(0))
    grants = ", ".join(f"{a.credits} of {a.grant_key} ({a.value_cents - a.reversed_cents}¢/{a.grant_credits})"
                       for a in allocations)
    await post_transfer(conn, f"order:{order_id}:host_earning", "earning", t.host_customer_id, cents, order_id=order_id,
                    telescope_id=telescope_id, customer_id=customer_id, share=t.host_share_percent,
                    reason=f"{t.host_share_percent}% of {credits} credits worth {value} cents: {grants}")
    # The order's event stream is the buyer's: it says the host was credited, not the host's terms.
    await conn.execute(EVENT.insert().values(order_id=order_id, kind=EVENT_KIND, email_status="none", payload={
        "type": "HostEarningsCredited", "telescope": t.slug, "credits": credits,
        "transfer": f"order:{order_id}:host_earning"}, created_at=sa.func.now()))
    log.info("host.credited", order_id=order_id, host=t.host_customer_id, telescope=t.slug, credits=credits,
             share=t.host_share_percent, cents=cents)
    return HostCredit(order_id, telescope_id, t.host_customer_id, t.host_share_percent, credits, value, cents)


async def _order_net(conn: AsyncConnection, order_id: int) -> int:
    return int((await conn.execute(sa.select(sa.func.coalesce(sa.func.sum(EARN.c.amount_cents), 0)).where(
        EARN.c.order_id == order_id, EARN.c.account.like("host:%"), EARN.c.kind.in_(("earning", "reversal")))
    )).scalar_one())


async def regrade_orders_of_grant(conn: AsyncConnection, grant_id: int, key: str, why: str) -> int:
    """After a lot's value changed (refund, dispute): bring every host-credited order that captured
    credits of it to its new floor (``reversal`` entries keyed ``<key>:order:<id>``). Returns the
    signed cents moved to hosts."""
    moved = 0
    orders = (await conn.execute(sa.select(ALLOC.c.order_id).distinct().where(ALLOC.c.grant_id == grant_id)
                                 .order_by(ALLOC.c.order_id))).scalars().all()
    for order_id in orders:
        first = (await conn.execute(sa.select(EARN).where(
            EARN.c.transfer_key == f"order:{order_id}:host_earning", EARN.c.account.like("host:%")))).first()
        if first is None:
            continue  # not on a hosted telescope: no host share to reverse
        target = host_share_cents(await allocations_of(conn, order_id), first.share_percent)
        delta = target - await _order_net(conn, order_id)
        if delta and await post_transfer(conn, f"{key}:order:{order_id}", "reversal", first.host_customer_id, delta,
                                     order_id=order_id, telescope_id=first.telescope_id,
                                     customer_id=first.customer_id, share=first.share_percent, reason=why):
            moved += delta
            log.info("host.reversed", order_id=order_id, host=first.host_customer_id, cents=delta, key=key)
    return moved


async def on_grant_reversed(conn: AsyncConnection, customer_id: int, grant_key: str, value_reversed_of: tuple[int, int],
                            credits_moved: int, key: str, why: str) -> int:
    """A reversal moved ``credits_moved`` credits of ``grant_key`` (> 0 clawed back, < 0 restored)
    and ``value_reversed_of`` = (charge cents reversed, charge cents) is the charge's state now:
    update the lot (its reversed value, its clawed-back credits as gone) and re-credit the orders
    that captured from it (:func:`regrade_orders_of_grant`). Call in the reversal's transaction.
    Returns the signed cents moved to hosts (negative: taken back)."""
    await adopt_unrecorded_grants(conn, customer_id)
    lot = (await conn.execute(sa.select(LOT).where(LOT.c.grant_key == grant_key).with_for_update())).first()
    if lot is None:
        return 0
    reversed_cents, charge_cents = value_reversed_of
    new_reversed = lot.value_cents * reversed_cents // charge_cents if charge_cents > 0 else 0
    left = lot.credits - lot.consumed - lot.gone
    gone = lot.gone + (min(credits_moved, left) if credits_moved > 0 else -min(-credits_moved, lot.gone))
    await conn.execute(LOT.update().where(LOT.c.id == lot.id).values(
        reversed_cents=min(lot.value_cents, new_reversed), gone=gone))
    return await regrade_orders_of_grant(conn, lot.id, key, why)
