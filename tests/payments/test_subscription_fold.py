"""Pure rules, no servers: the credits of a paid invoice, and the subscription state folded from
Stripe facts being the same whatever order (and however many times) they arrive."""

from __future__ import annotations

import random

import pytest

from billing.allowance import invoice_allowance, invoice_plan
from billing.plans import PLANS, plan_table
from billing.webhooks import event_to_fact
from models.payment_workflows import PlanTable, PlanTerms, SubscriptionState
from models.payments import InvoiceLine
from tests.payments import stripe_events
from tests.payments.stripe_events import month, subscription_year
from billing.subscription_fold import expire_flag, fold


def L(plan, amount, end=100, proration=False):
    return InvoiceLine(plan=plan, amount=amount, proration=proration, period_start_ts=0, period_end_ts=end)


@pytest.mark.parametrize("lines, credits, plan", [
    ([L("nebula", 5900)], 60, "nebula"),                                                   # first invoice / renewal
    ([L("nebula", -2950, proration=True), L("quasar", 5950, proration=True)], 45, "quasar"),  # Stripe, mid-period
    ([L("quasar", 11900), L("nebula", -5900, proration=True)], 90, "quasar"),              # localstripe upgrade
    ([L("stardust", 2900, end=200)], 20, "stardust"),                                      # renewal after downgrade
    ([L(None, 1500)], 0, None),                                                            # not one of our plans
    ([L("quasar", -11900, proration=True)], 0, None),                                      # a credit only: never < 0
    ([L("nebula", 0)], 0, None),                                                           # a free line grants nothing
])
def test_invoice_allowance_follows_its_lines(lines, credits, plan):
    assert invoice_allowance(lines) == credits
    assert invoice_plan(lines) == plan


def _facts(**kw):
    events = subscription_year("cus_fold", 7, "sub_fold0001", **kw)
    return [f for f in (event_to_fact(e) for e in events) if f is not None]


def _fold_all(facts):
    s = SubscriptionState(customer_id=7)
    expiries = 0
    for f in facts:
        expiries += expire_flag(s, f)
        fold(s, f)
    return s, expiries


def _view(s: SubscriptionState):
    return (s.status(), s.plan, s.period_start_ts, s.period_end_ts, s.cancel_at_period_end, s.pending_plan,
            sorted(s.paid_invoices), sorted(s.failed_invoices), s.ended, s.stripe_subscription_id)


@pytest.mark.parametrize("kw", [
    {},
    {"end": True},
    {"upgrade_month": 3, "downgrade_month": 8, "end": True},
    {"failed_month": 11, "cancel_in_month": None},
])
def test_any_order_and_any_repetition_folds_to_the_same_state(kw):
    facts = _facts(**kw)
    reference, _ = _fold_all(facts)
    rng = random.Random(2024)
    for _ in range(40):
        storm = facts * 3
        rng.shuffle(storm)
        state, expiries = _fold_all(storm)
        assert _view(state) == _view(reference)
        if kw.get("end"):
            assert expiries >= 1  # the subscription bucket is expired at least once after its last grant


def test_the_year_folds_to_the_last_period_and_plan():
    s, _ = _fold_all(_facts(upgrade_month=3, downgrade_month=8))
    assert (s.status(), s.plan, s.period_start_ts, s.period_end_ts) == ("active", "stardust", *month(11))
    assert s.cancel_at_period_end is True  # requested in month 11

    failed, _ = _fold_all(_facts(failed_month=11, cancel_in_month=None)[:-2])  # the retry's success not yet in
    assert failed.status() == "past_due"

    ended, _ = _fold_all(_facts(end=True))
    assert ended.status() == "cancelled"


def test_the_fold_decides_with_the_plan_table_it_is_given_not_the_deployed_one():
    # A run started under an older table (Nebula 40 credits, no Quasar) must replay as it ran,
    # whatever billing.plans.PLANS says today.
    old = PlanTable(plans=[PlanTerms(id="stardust", name="Stardust", price_cents=2900, monthly_credits=20),
                           PlanTerms(id="nebula", name="Nebula", price_cents=5900, monthly_credits=40)]).by_id()
    assert invoice_allowance([L("nebula", 5900)], old) == 40
    assert invoice_allowance([L("quasar", 11900)], old) == 0 and invoice_plan([L("quasar", 11900)], old) is None
    facts = _facts(upgrade_month=3)
    s, today = SubscriptionState(customer_id=7), SubscriptionState(customer_id=7)
    for f in facts:
        fold(s, f, old)
        fold(today, f)
    assert (s.plan, today.plan) == ("nebula", "quasar")  # Quasar is not a plan of the old table
    assert plan_table().by_id()["nebula"].monthly_credits == PLANS["nebula"].monthly_credits


def test_a_subscription_made_by_checkout_after_the_last_one_ended_becomes_current_in_any_order():
    # The subscribe update resets the state for the subscription it creates; one made on Stripe's
    # Checkout page arrives only as facts, and must end in the same state whatever their order.
    ended = _facts(end=True)
    start, end = month(13)
    new = [f for f in (event_to_fact(e) for e in [
        stripe_events.event("customer.subscription.created", stripe_events.subscription(
            "sub_fold0002", "cus_fold", "quasar", (start, end), status="active", customer_id=7), start),
        stripe_events.event("invoice.paid", stripe_events.invoice(
            "in_fold_new", "cus_fold", "sub_fold0002", [stripe_events.line("quasar", 11900, start, end)],
            status="paid", reason="subscription_create", created=start, customer_id=7), start + 5),
        stripe_events.event("customer.subscription.updated", stripe_events.subscription(
            "sub_fold0002", "cus_fold", "quasar", (start, end), status="active", customer_id=7), start + 6),
    ]) if f is not None]
    before, _ = _fold_all(ended)
    assert before.status() == "cancelled"
    reference, _ = _fold_all(ended + new)
    assert (reference.status(), reference.plan, reference.stripe_subscription_id) == ("active", "quasar", "sub_fold0002")
    assert reference.paid_invoices == ["in_fold_new"] and (reference.period_start_ts, reference.period_end_ts) == (start, end)
    assert "sub_fold0001" in reference.ended_subscriptions and not reference.cancel_at_period_end
    rng = random.Random(15)
    for _ in range(40):
        late_old = rng.sample(ended, 5)  # the old subscription's facts again, mixed in
        storm = new * 2 + late_old
        rng.shuffle(storm)
        state, _ = _fold_all(ended)
        for f in storm:
            # Never expire because of the new subscription's facts (the old one's may: a late paid invoice).
            assert not (expire_flag(state, f) and f.stripe_subscription_id == "sub_fold0002")
            fold(state, f)
        assert _view(state) == _view(reference)
