"""Host earnings invariants, checked against the database (``stellar ledger check``, tests).

* every host transfer has two legs that sum to 0;
* every lot's ``consumed`` = Σ of its capture allocations; every allocated order's allocations sum
  to its hold's captured credits;
* every host-credited order: Σ of its host legs (earning + reversals) = ``floor(share × Σ value of
  its allocated credits)`` with the share recorded on its earning (docs/host-earnings.md §2);
* every payout has its transfer, for its amount; per host, Σ earnings + reversals − Σ payouts =
  the host account's balance (what is due).
"""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction
from math import floor

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from billing.ledger_check import Violation, _executor

_LEGS = """
SELECT transfer_key, count(*) AS legs, sum(amount_cents) AS total FROM host_earning_entry
GROUP BY transfer_key HAVING count(*) <> 2 OR sum(amount_cents) <> 0
"""
_LOTS = """
SELECT g.id, g.customer_id, g.grant_key, g.consumed, COALESCE(a.total, 0) AS allocated
FROM credit_grant g LEFT JOIN (SELECT grant_id, sum(credits) AS total FROM capture_allocation GROUP BY grant_id) a
  ON a.grant_id = g.id
WHERE g.consumed <> COALESCE(a.total, 0)
"""
_ORDERS = """
SELECT a.order_id, h.customer_id, h.captured, sum(a.credits) AS allocated
FROM capture_allocation a LEFT JOIN credit_hold h ON h.order_id = a.order_id
GROUP BY a.order_id, h.customer_id, h.captured HAVING h.captured IS DISTINCT FROM sum(a.credits)
"""
_CREDITED = """
SELECT e.order_id, e.customer_id, e.share_percent, e.host_customer_id,
       (SELECT sum(x.amount_cents) FROM host_earning_entry x WHERE x.order_id = e.order_id
          AND x.account LIKE 'host:%' AND x.kind IN ('earning', 'reversal')) AS net
FROM host_earning_entry e WHERE e.kind = 'earning' AND e.account LIKE 'host:%'
"""
_VALUES = """
SELECT a.order_id, a.credits, g.credits AS grant_credits, g.value_cents, g.reversed_cents
FROM capture_allocation a JOIN credit_grant g ON g.id = a.grant_id
WHERE a.order_id IN (SELECT order_id FROM host_earning_entry WHERE kind = 'earning')
"""
_PAYOUTS = """
SELECT p.id, p.host_customer_id, p.amount_cents,
       (SELECT sum(-x.amount_cents) FROM host_earning_entry x WHERE x.payout_id = p.id AND x.account LIKE 'host:%') AS leg
FROM host_payout p
"""
_HOSTS = """
SELECT host_customer_id,
       COALESCE(sum(amount_cents) FILTER (WHERE kind IN ('earning', 'reversal')), 0) AS earned,
       COALESCE(-sum(amount_cents) FILTER (WHERE kind = 'payout'), 0) AS paid,
       COALESCE(sum(amount_cents), 0) AS due
FROM host_earning_entry WHERE account = 'host:' || host_customer_id GROUP BY host_customer_id
"""


async def check_host_earnings(db: AsyncEngine | AsyncConnection) -> list[Violation]:
    """Every broken host-earnings invariant (module docstring). [] = consistent. Read-only."""
    out: list[Violation] = []
    async with _executor(db) as ex:
        legs = (await ex.execute(sa.text(_LEGS))).all()
        lots = (await ex.execute(sa.text(_LOTS))).all()
        orders = (await ex.execute(sa.text(_ORDERS))).all()
        credited = (await ex.execute(sa.text(_CREDITED))).all()
        values = (await ex.execute(sa.text(_VALUES))).all()
        payouts = (await ex.execute(sa.text(_PAYOUTS))).all()
        hosts = (await ex.execute(sa.text(_HOSTS))).all()
        paid_by_host = dict((await ex.execute(sa.text(
            "SELECT host_customer_id, sum(amount_cents) FROM host_payout GROUP BY host_customer_id"))).all())
    for r in legs:
        out.append(Violation("host_transfer", None, f"transfer {r.transfer_key}: {r.legs} leg(s) summing to {r.total}"))
    for r in lots:
        out.append(Violation("lot_consumed", r.customer_id,
                             f"lot {r.grant_key}: consumed {r.consumed} != Σ allocations {r.allocated}"))
    for r in orders:
        out.append(Violation("capture_allocation", r.customer_id,
                             f"order {r.order_id}: allocations {r.allocated} != captured {r.captured}"))
    value: dict[int, Fraction] = defaultdict(Fraction)
    for v in values:
        value[v.order_id] += Fraction(v.credits * (v.value_cents - v.reversed_cents), v.grant_credits)
    for c in credited:
        want = floor(value[c.order_id] * c.share_percent / 100)
        if (c.net or 0) != want:
            out.append(Violation("host_credit", c.customer_id,
                                 f"order {c.order_id}: host {c.host_customer_id} holds {c.net} cents, the rule gives "
                                 f"floor({c.share_percent}% × {value[c.order_id]}) = {want}"))
    for p in payouts:
        if (p.leg or 0) != p.amount_cents:
            out.append(Violation("host_payout", p.host_customer_id,
                                 f"payout {p.id} of {p.amount_cents} cents has transfer legs of {p.leg}"))
    for h in hosts:
        paid = int(paid_by_host.get(h.host_customer_id) or 0)
        if h.earned - paid != h.due or h.paid != paid:
            out.append(Violation("host_due", h.host_customer_id,
                                 f"earned {h.earned} − payouts {paid} (ledger says {h.paid}) != due {h.due}"))
    return out
