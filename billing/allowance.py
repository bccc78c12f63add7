"""Monthly credits granted for one paid subscription invoice (granted once, keyed by invoice id).

Rule: every line of one of our plans counts that plan's monthly credits, positively when the
line charges (amount > 0), negatively when it credits unused time (amount < 0); the grant is
that sum, never below 0. It is a pure function of the invoice, so a duplicated, late or
reordered event grants the same amount, and the ledger's idempotency key (``invoice:<id>``)
makes it happen once.

What it gives (docs/pricing.md §1, §7: Stardust 20, Nebula 60, Quasar 150 a month):

* first invoice and each renewal (one line, the plan): the plan's credits — 60 for Nebula;
* upgrade now, Nebula → Quasar, prorated (Stripe: "Unused time on Nebula" −, "Remaining time on
  Quasar" +): 150 − 60 = 90, so the period holds Quasar's 150 in total;
* downgrade at period end: nothing now; the next renewal's line is the lower plan.

Credits are not prorated by time: a period's allowance is the plan's full allowance (an upgrade
on the last day still tops up to the new plan's amount) — simpler to explain, and the customer
pays the prorated difference in money.
"""

from __future__ import annotations

from billing.plans import PLANS
from models.payments import InvoiceLine


def invoice_allowance(lines: list[InvoiceLine]) -> int:
    """Credits to grant for a paid invoice with ``lines`` (≥ 0)."""
    total = 0
    for line in lines:
        if line.plan is None or line.plan not in PLANS or line.amount == 0:
            continue
        credits = PLANS[line.plan].monthly_credits
        total += credits if line.amount > 0 else -credits
    return max(0, total)


def invoice_plan(lines: list[InvoiceLine]) -> str | None:
    """The plan an invoice pays for: the charged line of ours with the latest period end (ties:
    the larger allowance, i.e. the upgrade's new plan). None when no line charges one of our plans."""
    charged = [ln for ln in lines if ln.plan in PLANS and ln.amount > 0]
    if not charged:
        return None
    best = max(charged, key=lambda ln: (ln.period_end_ts or 0, PLANS[ln.plan].monthly_credits))  # type: ignore[index]
    return best.plan
