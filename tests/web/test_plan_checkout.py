"""Subscribing to a plan from the web app through Stripe Checkout (``web.payment_flow=checkout``),
up to the Stripe call and back through the signed webhook:

* the page creates a Checkout Session in ``subscription`` mode for the plan's Stripe Plan id, for a
  Stripe customer made first, with our metadata and an idempotency key (Stripe's side: the
  recording server of ``tests/web/stripe_checkout_server.py``);
* the events Stripe sends once the customer paid — ``checkout.session.completed``,
  ``customer.subscription.created|updated``, ``invoice.paid`` / ``invoice.payment_succeeded`` —
  delivered twice and out of order, end in one subscription and one grant keyed by the invoice,
  through the real subscription workflow and worker, as the test-card path does.

The test-card path of the same page: ``tests/web/test_journey.py``; change plan and cancel of a
subscription made outside the subscribe update: ``tests/payments/test_checkout_subscription.py``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import select

from billing.plans import PLANS
from models.db import Customer, LedgerEntry, StripeEvent, Subscription
from tests.payments import stripe_events
from tests.payments.conftest import eventually, sign
from tests.web.conftest import new_email
from tests.web.stripe_checkout_server import CHECKOUT_URL, checkout_app, fake_stripe  # noqa: F401 (fixtures)

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _csrf(client: httpx.AsyncClient, path: str) -> str:
    r = await client.get(path)
    assert r.status_code == 200, r.text
    return CSRF.search(r.text).group(1)


async def _sign_up(client: httpx.AsyncClient) -> str:
    email = new_email()
    token = await _csrf(client, "/app/sign-up")
    r = await client.post("/app/sign-up", data={"csrf_token": token, "email": email, "password": "a long password"})
    assert r.status_code == 303
    return email


async def _subscribe(client: httpx.AsyncClient, plan: str) -> httpx.Response:
    token = await _csrf(client, "/app/plans")
    return await client.post("/app/plans/subscribe", data={"csrf_token": token, "plan": plan})


async def _deliver(client: httpx.AsyncClient, event: dict[str, Any]) -> None:
    payload = json.dumps(event).encode()
    r = await client.post("/api/stripe/webhook", content=payload,
                          headers={"Stripe-Signature": sign(payload), "Content-Type": "application/json"})
    assert r.status_code == 200, r.text


async def test_subscribe_redirects_to_checkout_and_the_webhook_grants_the_plan_once(checkout_app, fake_stripe,
                                                                                    sessionmaker):
    settings, client = checkout_app
    email = await _sign_up(client)
    page = await client.get("/app/plans")
    assert 'name="card_number"' not in page.text and "Subscribe to Nebula" in page.text

    r = await _subscribe(client, "nebula")
    assert r.status_code == 303 and r.headers["location"] == CHECKOUT_URL
    async with sessionmaker() as s:
        customer = (await s.exec(select(Customer).where(Customer.email == email))).one()
    cid, cus = customer.id, customer.stripe_customer_id
    [made] = [r for r in fake_stripe.requests if r["path"] == "/v1/customers"]
    assert made["idempotency_key"] == f"stellar:customer:{cid}" and made["form"]["email"] == email
    assert made["form"]["metadata[stellar_customer_id]"] == str(cid)
    [session] = fake_stripe.sessions
    form = session["form"]
    assert cus and form["customer"] == cus and "customer_email" not in form
    assert session["idempotency_key"] == f"stellar:checkout:subscription:{cid}:nebula:0"
    assert form["mode"] == "subscription"
    assert form["line_items[0][price]"] == "stellar_nebula_monthly" and form["line_items[0][quantity]"] == "1"
    assert form["metadata[stellar_customer_id]"] == str(cid) == form["client_reference_id"]
    assert form["subscription_data[metadata][stellar_customer_id]"] == str(cid)
    assert form["subscription_data[metadata][stellar_plan]"] == form["metadata[stellar_plan]"] == "nebula"
    assert form["success_url"] == "http://stellar.test/app/plans?checkout=done"
    assert form["cancel_url"] == "http://stellar.test/app/plans?checkout=cancelled"

    # A second click before paying: the same key (Stripe answers the same session), no second customer.
    assert (await _subscribe(client, "nebula")).status_code == 303
    assert [s["idempotency_key"] for s in fake_stripe.sessions] == [session["idempotency_key"]] * 2
    assert len([r for r in fake_stripe.requests if r["path"] == "/v1/customers"]) == 1
    waiting = await client.get("/app/plans?checkout=done")
    assert 'data-state="waiting"' in waiting.text

    # Stripe's page took the card: its events, each delivered twice, the paid invoice first.
    sub, inv = f"sub_co_{uuid.uuid4().hex[:10]}", f"in_co_{uuid.uuid4().hex[:10]}"
    now = int(time.time())
    period = (now, now + 31 * 86400)
    ev = stripe_events.event
    subscription = stripe_events.subscription(sub, cus, "nebula", period, status="active", customer_id=cid)
    invoice = stripe_events.invoice(inv, cus, sub, [stripe_events.line("nebula", PLANS["nebula"].price_cents, *period)],
                                    status="paid", reason="subscription_create", created=now, customer_id=cid)
    completed = {"id": f"cs_test_{uuid.uuid4().hex[:8]}", "object": "checkout.session", "mode": "subscription",
                 "status": "complete", "payment_status": "paid", "customer": cus, "subscription": sub,
                 "invoice": inv, "amount_total": PLANS["nebula"].price_cents, "currency": "eur",
                 "client_reference_id": str(cid), "metadata": {"stellar_customer_id": str(cid), "stellar_plan": "nebula"}}
    events = [ev("invoice.paid", invoice, now + 3), ev("checkout.session.completed", completed, now + 4),
              ev("customer.subscription.created", {**subscription, "status": "incomplete"}, now),
              ev("invoice.payment_succeeded", invoice, now + 3),
              ev("customer.subscription.updated", subscription, now + 2)]
    for e in events + events[::-1]:
        await _deliver(client, e)

    async def grants() -> list:
        async with sessionmaker() as s:
            return (await s.exec(select(LedgerEntry).where(LedgerEntry.customer_id == cid,
                                                                 LedgerEntry.kind == "grant"))).all()

    async def settled():
        async with sessionmaker() as s:
            row = (await s.exec(select(Subscription).where(Subscription.customer_id == cid))).one_or_none()
            seen = (await s.exec(select(sa.func.count()).select_from(StripeEvent).where(
                StripeEvent.id.in_([e["id"] for e in events if e["type"] != "checkout.session.completed"])))).one()
        return row if row is not None and row.status == "active" and seen == 4 else None

    row = await eventually(settled, timeout=60, what="the Checkout subscription applied")
    assert (row.plan, row.stripe_subscription_id, row.cancel_at_period_end) == ("nebula", sub, False)
    assert (int(row.current_period_start.timestamp()), int(row.current_period_end.timestamp())) == period
    [grant] = await grants()
    assert (grant.amount, grant.bucket, grant.idempotency_key) == (PLANS["nebula"].monthly_credits, "subscription",
                                                                   f"invoice:{inv}")

    back = await client.get("/app/plans?checkout=done")
    assert 'data-state="active"' in back.text and "<strong>Nebula</strong> (active)" in back.text
    credits = await client.get("/app/credits")
    assert re.search(rf'data-testid="bucket-subscription">{PLANS["nebula"].monthly_credits}<', credits.text)

    # Subscribed now: another Checkout is refused before any call to Stripe.
    asked = len(fake_stripe.requests)
    again = await _subscribe(client, "quasar")
    assert again.status_code == 409 and "already subscribed to nebula" in again.text
    assert len(fake_stripe.requests) == asked


async def test_checkout_of_an_unknown_plan_or_without_csrf_is_refused_before_stripe(checkout_app, fake_stripe):
    settings, client = checkout_app
    await _sign_up(client)
    r = await _subscribe(client, "galaxy")
    assert r.status_code == 422 and "unknown plan" in r.text
    r = await client.post("/app/plans/subscribe", data={"plan": "nebula"})
    assert r.status_code == 403
    assert fake_stripe.requests == []
    cancelled = await client.get("/app/plans?checkout=cancelled")
    assert 'data-state="cancelled"' in cancelled.text
