"""A host's earnings as figures: per telescope, per month, per order (with the lots that made each
figure), customers under their pseudonymous ids, payouts, and the monthly statement as CSV. Used
by ``/api/host/earnings``, its CSV and the web page (docs/host-earnings.md §4).

Months are calendar months in UTC, ``YYYY-MM``, of each entry's time.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from fractions import Fraction

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from api.errors import HOST_ONLY, UNKNOWN_TELESCOPE, Forbidden, NotFound
from api.schemas.host_earnings import (HostCustomerOut, HostEarningsOut, HostGrantOut, HostMonthOut, HostOrderOut,
                                       HostPayoutOut, HostTelescopeOut, StatementLine)
from billing.host_earnings import host_account
from models.db import (CaptureAllocation, CreditGrant, CustomerTelescopeTotal, HostCustomerAlias, HostEarningEntry,
                       HostPayout, Telescope)

EARN, LOT, ALLOC = HostEarningEntry.__table__, CreditGrant.__table__, CaptureAllocation.__table__
TELESCOPE, TOTAL, ALIAS, PAYOUT = Telescope.__table__, CustomerTelescopeTotal.__table__, HostCustomerAlias.__table__, \
    HostPayout.__table__
CSV_COLUMNS = ("date", "kind", "telescope", "order_id", "customer", "credits", "share_percent", "value_cents",
               "amount_cents", "reference")


def _month(ts) -> str:
    return ts.strftime("%Y-%m")


def _exact(value: Fraction) -> str:
    """An exact cent amount as text: ``1160`` or ``6750/11``."""
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


async def _host_telescopes(conn: AsyncConnection, host_id: int) -> dict[int, object]:
    """Telescopes the host hosts now or earned on (a telescope handed to another host keeps its past)."""
    earned_on = sa.select(EARN.c.telescope_id).where(EARN.c.account == host_account(host_id),
                                                      EARN.c.telescope_id.is_not(None))
    rows = (await conn.execute(sa.select(TELESCOPE).where(
        (TELESCOPE.c.host_customer_id == host_id) | TELESCOPE.c.id.in_(earned_on)).order_by(TELESCOPE.c.slug))).all()
    return {r.id: r for r in rows}


async def host_earnings(conn: AsyncConnection, host_id: int, telescope: str | None = None) -> HostEarningsOut:
    """The figures of host ``host_id`` (all its telescopes, or the one slug ``telescope``).
    Raises Forbidden (``host_only``) when the customer hosts nothing, NotFound when ``telescope``
    is not one of its telescopes (unknown or another host's: the same answer)."""
    scopes = await _host_telescopes(conn, host_id)
    if not scopes:
        raise Forbidden("host earnings are for telescope hosts", code=HOST_ONLY)
    if telescope is not None:
        scopes = {k: t for k, t in scopes.items() if t.slug == telescope}
        if not scopes:
            raise NotFound(f"no telescope {telescope!r} among yours", code=UNKNOWN_TELESCOPE)
    account = host_account(host_id)
    entries = (await conn.execute(sa.select(EARN).where(
        EARN.c.account == account, EARN.c.kind.in_(("earning", "reversal")), EARN.c.telescope_id.in_(scopes))
        .order_by(EARN.c.id))).all()
    order_ids = sorted({e.order_id for e in entries})
    allocs = (await conn.execute(
        sa.select(ALLOC.c.order_id, ALLOC.c.credits, LOT.c.id, LOT.c.source, LOT.c.credits.label("grant_credits"),
                  LOT.c.value_cents, LOT.c.reversed_cents)
        .join(LOT, LOT.c.id == ALLOC.c.grant_id).where(ALLOC.c.order_id.in_(order_ids)).order_by(ALLOC.c.id))).all()
    aliases = dict((await conn.execute(sa.select(ALIAS.c.customer_id, ALIAS.c.alias).where(
        ALIAS.c.host_customer_id == host_id))).all())
    grants: dict[int, list[HostGrantOut]] = defaultdict(list)
    for a in allocs:
        value = Fraction(a.credits * (a.value_cents - a.reversed_cents), a.grant_credits)
        grants[a.order_id].append(HostGrantOut(grant_id=a.id, source=a.source, credits=a.credits,
                                               grant_credits=a.grant_credits, grant_value_cents=a.value_cents,
                                               grant_reversed_cents=a.reversed_cents, value_cents=_exact(value)))
    orders: dict[int, HostOrderOut] = {}
    months: dict[tuple[int, str], HostMonthOut] = {}
    for e in entries:
        o = orders.get(e.order_id)
        if o is None:
            credits = sum(g.credits for g in grants[e.order_id])
            value = sum((Fraction(g.value_cents) for g in grants[e.order_id]), Fraction(0))
            o = orders[e.order_id] = HostOrderOut(
                order_id=e.order_id, telescope=scopes[e.telescope_id].slug, month=_month(e.created_at),
                customer=aliases.get(e.customer_id, ""), credits=credits, share_percent=e.share_percent or 0,
                value_cents=_exact(value), earned_cents=0, reversed_cents=0, net_cents=0, grants=grants[e.order_id])
        m = months.setdefault((e.telescope_id, _month(e.created_at)), HostMonthOut(month=_month(e.created_at)))
        if e.kind == "earning":
            o.earned_cents += e.amount_cents
            m.earned_cents += e.amount_cents
            m.credits += o.credits
            m.orders += 1
        else:
            o.reversed_cents += e.amount_cents
            m.reversed_cents += e.amount_cents
        o.net_cents += e.amount_cents
        m.net_cents += e.amount_cents
    totals = (await conn.execute(sa.select(TOTAL).where(TOTAL.c.telescope_id.in_(scopes))
                                 .order_by(TOTAL.c.telescope_id, TOTAL.c.customer_id))).all()
    customers = [HostCustomerOut(customer=aliases[t.customer_id], telescope=scopes[t.telescope_id].slug,
                                 first_observation_at=t.first_observation_at, last_observation_at=t.last_observation_at,
                                 credits_captured=t.credits_captured, orders=t.orders)
                 for t in totals if t.customer_id in aliases]
    payouts = (await conn.execute(sa.select(PAYOUT).where(PAYOUT.c.host_customer_id == host_id)
                                  .order_by(PAYOUT.c.id))).all()
    due = int((await conn.execute(sa.select(sa.func.coalesce(sa.func.sum(EARN.c.amount_cents), 0)).where(
        EARN.c.account == account))).scalar_one())
    tel_out = []
    for tid, t in scopes.items():
        mine = [o for o in orders.values() if o.telescope == t.slug]
        tel_out.append(HostTelescopeOut(
            slug=t.slug, name=t.name, share_percent=t.host_share_percent if t.host_customer_id == host_id else 0,
            net_cents=sum(o.net_cents for o in mine),
            months=sorted((m for (k, _), m in months.items() if k == tid), key=lambda m: m.month),
            orders=sorted(mine, key=lambda o: o.order_id)))
    return HostEarningsOut(
        host_customer_id=host_id, due_cents=due,
        earned_cents=sum(o.net_cents for o in orders.values()),
        paid_cents=sum(p.amount_cents for p in payouts), telescopes=tel_out, customers=customers,
        payouts=[HostPayoutOut(id=p.id, amount_cents=p.amount_cents, method=p.method, reference=p.reference,
                               created_at=p.created_at) for p in payouts] if telescope is None else [])


async def statement_lines(conn: AsyncConnection, host_id: int, month: str) -> list[StatementLine]:
    """The month's lines (``YYYY-MM``, UTC): one per host entry (earning, reversal, payout)."""
    report = await host_earnings(conn, host_id)
    by_order = {o.order_id: o for t in report.telescopes for o in t.orders}
    rows = (await conn.execute(sa.select(EARN).where(
        EARN.c.account == host_account(host_id),
        sa.func.to_char(sa.func.timezone("UTC", EARN.c.created_at), "YYYY-MM") == month).order_by(EARN.c.id))).all()
    payouts = {p.id: p for p in report.payouts}
    out = []
    for e in rows:
        o = by_order.get(e.order_id) if e.order_id is not None else None
        p = payouts.get(e.payout_id) if e.payout_id is not None else None
        out.append(StatementLine(
            date=e.created_at.strftime("%Y-%m-%d"), kind=e.kind, telescope=o.telescope if o else "",
            order_id=e.order_id, customer=o.customer if o else "", credits=o.credits if o and e.kind == "earning" else 0,
            share_percent=e.share_percent, value_cents=o.value_cents if o and e.kind == "earning" else "",
            amount_cents=e.amount_cents, reference=f"{p.method}:{p.reference}" if p else ""))
    return out


def statement_csv(lines: list[StatementLine]) -> str:
    """The statement as CSV (header :data:`CSV_COLUMNS`, then one row per line)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for ln in lines:
        w.writerow([ln.date, ln.kind, ln.telescope, "" if ln.order_id is None else ln.order_id, ln.customer,
                    ln.credits, "" if ln.share_percent is None else ln.share_percent, ln.value_cents,
                    ln.amount_cents, ln.reference])
    return buf.getvalue()
