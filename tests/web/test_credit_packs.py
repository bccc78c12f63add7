"""Buying a credit pack from the web app, both payment flows up to Stripe:

* ``checkout`` (production): the page redirects to the Checkout Session's URL. Stripe's side is a
  small real HTTP server that records ``POST /v1/checkout/sessions`` (localstripe has no Checkout;
  ``tests/web/stripe_checkout_server.py``); the signed ``checkout.session.completed`` webhook then
  grants the pack once.
* ``card`` (embedded stack): Stripe's test card on our page, localstripe, the real worker.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import httpx
import sqlalchemy as sa
from sqlmodel import select

from models.db import LedgerEntry, Payment
from tests.payments.conftest import eventually, sign
from tests.web.conftest import WebApp, new_email, screenshot
from tests.web.stripe_checkout_server import CHECKOUT_URL, checkout_app, fake_stripe  # noqa: F401 (fixtures)
from tests.web.pages import sign_up

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _csrf(client: httpx.AsyncClient, path: str) -> str:
    r = await client.get(path)
    assert r.status_code == 200, r.text
    return CSRF.search(r.text).group(1)


async def _webhook(client: httpx.AsyncClient, etype: str, obj: dict) -> httpx.Response:
    payload = json.dumps({"id": f"evt_web_{uuid.uuid4().hex[:16]}", "object": "event", "type": etype,
                          "created": int(time.time()), "livemode": False, "data": {"object": obj}}).encode()
    return await client.post("/api/stripe/webhook", content=payload,
                             headers={"Stripe-Signature": sign(payload), "Content-Type": "application/json"})


async def test_checkout_redirects_to_stripe_and_its_webhook_grants_the_pack_once(checkout_app, fake_stripe,
                                                                                 sessionmaker):
    settings, client = checkout_app
    email = new_email()
    token = await _csrf(client, "/app/sign-up")
    r = await client.post("/app/sign-up", data={"csrf_token": token, "email": email, "password": "a long password"})
    assert r.status_code == 303

    token = await _csrf(client, "/app/credit-packs")
    r = await client.post("/app/credit-packs/50/buy", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == CHECKOUT_URL

    [req] = fake_stripe.requests
    form = req["form"]
    async with sessionmaker() as s:
        payment = (await s.exec(select(Payment).where(Payment.id == int(form["metadata[stellar_payment_id]"])))).one()
    assert req["path"] == "/v1/checkout/sessions" and req["idempotency_key"] == f"stellar:checkout:payment:{payment.id}"
    assert form["mode"] == "payment" and form["line_items[0][quantity]"] == "1"
    assert form["line_items[0][price_data][currency]"] == "eur"
    assert form["line_items[0][price_data][unit_amount]"] == "6750" == str(payment.amount_cents)
    assert form["line_items[0][price_data][product_data][name]"] == "Stellar — 55 credits"
    assert form["metadata[stellar_customer_id]"] == str(payment.customer_id) == form["client_reference_id"]
    assert form["payment_intent_data[metadata][stellar_payment_id]"] == str(payment.id)
    assert form["customer_email"] == email
    assert form["success_url"] == f"http://stellar.test/app/credit-packs?payment={payment.id}"
    assert payment.status == "pending" and payment.pack_id == "50"

    # Stripe's page took the money: checkout.session.completed, signed.
    pi = f"pi_test_{uuid.uuid4().hex[:12]}"
    session = {"id": "cs_test_1", "object": "checkout.session", "mode": "payment", "payment_status": "paid",
               "status": "complete", "amount_total": 6750, "currency": "eur", "customer": None,
               "payment_intent": pi, "metadata": {"stellar_payment_id": str(payment.id),
                                                  "stellar_customer_id": str(payment.customer_id)}}
    assert (await _webhook(client, "checkout.session.completed", session)).status_code == 200

    async def grants() -> list:
        async with sessionmaker() as s:
            return (await s.exec(select(LedgerEntry).where(
                LedgerEntry.idempotency_key == f"payment:{payment.id}"))).all()

    [grant] = await eventually(grants, what="the pack's grant")
    assert grant.amount == 55 and grant.bucket == "pack" and grant.customer_id == payment.customer_id
    # The same event again, and the PaymentIntent's own event: nothing more.
    assert (await _webhook(client, "checkout.session.completed", session)).status_code == 200
    assert (await _webhook(client, "payment_intent.succeeded", {
        "id": pi, "object": "payment_intent", "amount": 6750, "amount_received": 6750, "currency": "eur",
        "status": "succeeded", "customer": None, "metadata": session["metadata"]})).status_code == 200
    assert len(await grants()) == 1
    async with sessionmaker() as s:
        done = (await s.exec(select(Payment).where(Payment.id == payment.id))).one()
    assert done.status == "completed" and done.stripe_payment_intent_id == pi

    back = await client.get(f"/app/credit-packs?payment={payment.id}")
    assert 'data-status="completed"' in back.text and "55 credits added" in back.text
    credits = await client.get("/app/credits")
    assert re.search(r'data-testid="bucket-pack">55<', credits.text)


async def test_an_unpaid_checkout_session_grants_nothing(checkout_app, fake_stripe, sessionmaker):
    settings, client = checkout_app
    token = await _csrf(client, "/app/sign-up")
    await client.post("/app/sign-up", data={"csrf_token": token, "email": new_email(), "password": "a long password"})
    token = await _csrf(client, "/app/credit-packs")
    assert (await client.post("/app/credit-packs/10/buy", data={"csrf_token": token})).status_code == 303
    pid = fake_stripe.requests[-1]["form"]["metadata[stellar_payment_id]"]
    # A delayed payment method: completed, but not paid yet.
    r = await _webhook(client, "checkout.session.completed", {
        "id": "cs_test_2", "object": "checkout.session", "mode": "payment", "payment_status": "unpaid",
        "amount_total": 1500, "currency": "eur", "payment_intent": "pi_test_unpaid",
        "metadata": {"stellar_payment_id": pid}})
    assert r.status_code == 200
    async with sessionmaker() as s:
        grants = (await s.exec(select(LedgerEntry).where(LedgerEntry.idempotency_key == f"payment:{pid}"))).all()
        status = (await s.exec(select(Payment.status).where(Payment.id == int(pid)))).one()
    assert grants == [] and status == "pending"


async def test_buying_a_pack_without_the_csrf_token_is_refused(checkout_app, fake_stripe):
    settings, client = checkout_app
    token = await _csrf(client, "/app/sign-up")
    await client.post("/app/sign-up", data={"csrf_token": token, "email": new_email(), "password": "a long password"})
    r = await client.post("/app/credit-packs/10/buy", data={})
    assert r.status_code == 403 and fake_stripe.requests == []


async def test_card_flow_buys_a_pack_with_the_test_card_in_the_embedded_stack(web_stack: WebApp, page):
    await sign_up(page, web_stack.url, new_email())
    await page.goto(f"{web_stack.url}/app/credit-packs")
    await screenshot(page, "credit-packs")
    pack = page.locator('[data-pack="10"]')
    await pack.get_by_label("Test card number").fill("4242 4242 4242 4242")
    await pack.get_by_role("button", name="Buy 10 credits").click()
    await page.wait_for_url(re.compile(r".*/app/credit-packs\?payment=\d+$"))

    async def completed():
        await page.reload()
        return await page.get_by_test_id("payment-status").get_attribute("data-status") == "completed" or None

    await eventually(completed, timeout=60, what="the pack payment completed")
    await page.goto(f"{web_stack.url}/app/credits")
    assert await page.get_by_test_id("bucket-pack").inner_text() == "10"
    assert await page.locator('tr[data-kind="grant"]').count() == 1
    await screenshot(page, "credits-after-pack")
