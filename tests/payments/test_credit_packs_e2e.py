"""Credit packs end to end: catalogue, purchase (PaymentIntent in localstripe), payment by the
customer's browser or server-side, signed ``payment_intent.*`` webhooks, exactly-once credits,
``GET /api/payments``; the 24 h time to live on the time-skipping Temporal server."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from temporalio.worker import Worker

from worker import PAYMENT_WORKFLOWS, payment_activities
from billing.stripe_client import make_stripe_client
from models.db import Payment
from models.payment_workflows import PackPaymentInput, PackPaymentResult
from tests.payments.conftest import CARD_CHARGE_DECLINED, PaymentHarness, eventually


async def _payment(pay: PaymentHarness, key: str, payment_id: int) -> dict:
    r = await pay.get("/api/payments", key)
    assert r.status_code == 200, r.text
    return next(p for p in r.json()["payments"] if p["id"] == payment_id)


async def _settled(pay: PaymentHarness, key: str, payment_id: int, status: str) -> dict:
    async def check():
        p = await _payment(pay, key, payment_id)
        return p if p["status"] == status else None
    return await eventually(check, what=f"payment {payment_id} {status}")


async def test_catalogue_lists_the_seed_packs_with_their_bonus(pay: PaymentHarness):
    r = await pay.http.get("/api/credit-packs")
    assert r.status_code == 200
    packs = r.json()["packs"]
    assert [(p["id"], p["credits"], p["bonus"], p["total_credits"]) for p in packs] == [
        ("10", 10, 0, 10), ("50", 50, 5, 55), ("100", 100, 15, 115), ("200", 200, 40, 240)]
    assert all(p["currency"] == "eur" and p["price_cents"] > 0 for p in packs)
    prices_per_credit = [p["price_cents"] / p["total_credits"] for p in packs]
    assert prices_per_credit == sorted(prices_per_credit, reverse=True)  # bigger packs are cheaper per credit


async def test_browser_payment_credits_the_pack_once(pay: PaymentHarness):
    c = await pay.customer()
    r = await pay.post("/api/credit-packs/50/purchase", c.api_key)
    assert r.status_code == 201, r.text
    out = r.json()
    payment, secret = out["payment"], out["client_secret"]
    assert payment["status"] == "pending" and payment["amount_cents"] == 6750 and payment["total_credits"] == 55
    pi_id = payment["stripe_payment_intent_id"]
    assert secret.startswith(pi_id + "_secret_") and out["payment_intent_status"] == "requires_payment_method"
    pi = await pay.stripe.v1.payment_intents.retrieve_async(pi_id)
    assert (pi.amount, pi.currency, pi.metadata["stellar_payment_id"]) == (6750, "eur", str(payment["id"]))

    # What Stripe.js does in the customer's browser with the client secret: confirm with a card.
    await pay.stripe.v1.payment_intents.update_async(pi_id, {"payment_method": await pay.card()})
    confirmed = await pay.stripe.v1.payment_intents.confirm_async(pi_id)
    assert confirmed.status == "succeeded"

    done = await _settled(pay, c.api_key, payment["id"], "completed")
    assert done["completed_at"] is not None
    grants = await pay.grants(c.customer_id, "payment")
    assert [(g.amount, g.bucket, g.idempotency_key) for g in grants] == [(55, "pack", f"payment:{payment['id']}")]

    # Stripe delivers the same event again (and late): same outcome.
    events = await pay.stripe.v1.events.list_async({"type": "payment_intent.succeeded", "limit": 100})
    event = next(e for e in events.data if e.data.object["id"] == pi_id)
    for _ in range(3):
        again = await pay.deliver(event.to_dict())
        assert again.status_code == 200, again.text
    assert len(await pay.grants(c.customer_id, "payment")) == 1
    assert (await pay.ledger.balances(c.customer_id)).pack == 55
    await pay.invariants_hold(c.customer_id)


async def test_saved_card_payment_answers_with_the_settled_purchase(pay: PaymentHarness):
    c = await pay.customer()
    r = await pay.post("/api/credit-packs/10/purchase", c.api_key, {"payment_method_id": await pay.card()})
    assert r.status_code == 201, r.text
    assert r.json()["payment"]["status"] == "completed"
    assert (await pay.ledger.balances(c.customer_id)).pack == 10
    assert [p["status"] for p in (await pay.get("/api/payments", c.api_key)).json()["payments"]] == ["completed"]


async def test_declined_card_fails_the_purchase_and_cancels_the_intent(pay: PaymentHarness):
    c = await pay.customer()
    r = await pay.post("/api/credit-packs/100/purchase", c.api_key,
                       {"payment_method_id": await pay.card(CARD_CHARGE_DECLINED)})
    assert r.status_code == 201, r.text
    payment = r.json()["payment"]
    assert payment["status"] == "failed"
    pi = await pay.stripe.v1.payment_intents.retrieve_async(payment["stripe_payment_intent_id"])
    assert pi.status == "canceled"
    assert await pay.entries(c.customer_id) == []


async def test_unknown_pack_is_404_and_creates_nothing(pay: PaymentHarness):
    c = await pay.customer()
    r = await pay.post("/api/credit-packs/7/purchase", c.api_key)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_pack"
    assert (await pay.get("/api/payments", c.api_key)).json()["payments"] == []
    assert (await pay.http.post("/api/credit-packs/10/purchase")).status_code == 401


async def test_unpaid_purchase_is_cancelled_after_24_hours(database_url, engine, sessionmaker, time_skipping_env,
                                                           localstripe, make_pay):
    """The time to live is a durable timer: on the time-skipping server 24 h pass at once."""
    async with make_pay() as pay:  # for its settings, customer helper and Stripe client
        c = await pay.customer()
    async with engine.begin() as conn:
        payment_id = (await conn.execute(Payment.__table__.insert().values(
            customer_id=c.customer_id, pack_id="10", credits=10, bonus_credits=0, amount_cents=1500,
            currency="eur", status="pending", created_at=sa.func.now()).returning(Payment.__table__.c.id))).scalar_one()
    queue = f"tq-{uuid.uuid4()}"
    client = time_skipping_env.client
    async with Worker(client, task_queue=queue, workflows=PAYMENT_WORKFLOWS,
                      activities=payment_activities(pay.settings, engine, make_stripe_client(pay.settings.stripe))):
        handle = await client.start_workflow(
            "PackPaymentWorkflow", PackPaymentInput(
                payment_id=payment_id, customer_id=c.customer_id, pack_id="10", amount_cents=1500, currency="eur",
                total_credits=10, ttl_seconds=24 * 3600), id=f"payment-{payment_id}", task_queue=queue,
            result_type=PackPaymentResult)
        result = await handle.result()
    assert result.status == "cancelled"
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(Payment.__table__).where(Payment.__table__.c.id == payment_id))).one()
    assert row.status == "cancelled"
    pi = await pay.stripe.v1.payment_intents.retrieve_async(row.stripe_payment_intent_id)
    assert pi.status == "canceled"  # it can no longer be paid
    assert await pay.entries(c.customer_id) == []
