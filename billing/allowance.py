"""Monthly credits granted for one paid subscription invoice (granted once, keyed by invoice id).

Rule (docs/payments.md, "Plan changes"): a line of one of our plans that is **not** a proration
counts that plan's monthly credits — positively when it charges, negatively when it credits; a
**proration** line counts the plan's credits in proportion to the money it moves,
``monthly_credits × amount ÷ price_cents`` (exact fractions, summed, then rounded down). The grant
is never below 0. It is a pure function of the invoice, so a duplicated, late or reordered event
grants the same amount, and the ledger's idempotency key (``invoice:<id>``) makes it happen once.

What it gives (docs/pricing.md §1, §7: Stardust 20 for €29, Nebula 60 for €59, Quasar 150 for €119 a month):

* first invoice and each renewal (one line, the plan): the plan's credits — 60 for Nebula;
* upgrade now, prorated (Stripe: "Unused time on Nebula" −, "Remaining time on Quasar" +): the
  credits the prorated amount actually paid buys — half a period left: 150 × ½ − 60 × ½ = 45;
  the day before renewal, about 4: an upgrade cannot buy a period's credits for a day's price;
* localstripe's upgrade invoice (the new plan's full line, the old plan's full price credited):
  150 − 60 = 90, the same rule (the amounts are whole periods there);
* downgrade at period end: nothing now; the next renewal's line is the lower plan, granted when paid.

So over any sequence of upgrades and downgrades, every euro paid buys at most the credits per euro
of the plan it was paid for, and never more than Quasar's 150 / €119.
"""

from __future__ import annotations

from fractions import Fraction
from math import floor
from typing import Mapping, Protocol

from billing.plans import PLANS
from models.payments import InvoiceLine


class PlanCredits(Protocol):
    """What the rule reads of a plan: ``billing.plans.Plan`` or ``models.payment_workflows.PlanTerms``."""

    monthly_credits: int
    price_cents: int


def invoice_allowance(lines: list[InvoiceLine], plans: Mapping[str, PlanCredits] = PLANS) -> int:
    """Credits to grant for a paid invoice with ``lines`` (≥ 0; rule in the module doc).
    ``plans``: plan id → credits and price; the workflow passes the table it was given."""
    total = Fraction(0)
    for line in lines:
        if line.plan is None or line.plan not in plans or line.amount == 0:
            continue
        plan = plans[line.plan]
        if line.proration:
            total += Fraction(plan.monthly_credits * line.amount, plan.price_cents)
        else:
            total += plan.monthly_credits if line.amount > 0 else -plan.monthly_credits
    return max(0, floor(total))


def invoice_plan(lines: list[InvoiceLine], plans: Mapping[str, PlanCredits] = PLANS) -> str | None:
    """The plan an invoice pays for: the charged line of ours with the latest period end (ties:
    the larger allowance, i.e. the upgrade's new plan). None when no line charges one of our plans."""
    charged = [ln for ln in lines if ln.plan in plans and ln.amount > 0]
    if not charged:
        return None
    best = max(charged, key=lambda ln: (ln.period_end_ts or 0, plans[ln.plan].monthly_credits))  # type: ignore[index]
    return best.plan
