"""Without a payments worker, commands answer 503 ``workflow_unresponsive`` instead of hanging."""

from __future__ import annotations

import uuid

import httpx

from api.app import create_app
from api.services import payments as service
from api.services.customers import create_customer
from tests.payments.conftest import auth, payment_settings


async def test_commands_answer_503_when_no_worker_runs(monkeypatch, database_url, engine, sessionmaker,
                                                        temporal_env, localstripe):
    monkeypatch.setattr(service, "COMMAND_TIMEOUT_S", 1.0)
    monkeypatch.setattr(service, "PURCHASE_TIMEOUT_S", 1.0)
    queue = f"tq-nobody-{uuid.uuid4()}"  # no worker polls it
    settings = payment_settings(database_url, temporal_env.client.service_client.config.target_host, queue,
                                localstripe.url)
    app = create_app(settings, engine=engine, sessionmaker=sessionmaker, temporal_client=temporal_env.client)
    c = await create_customer(sessionmaker, email=f"nobody-{uuid.uuid4().hex[:8]}@example.com")
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            r = await http.post("/api/subscriptions/subscribe", headers=auth(c.api_key),
                                json={"plan": "nebula", "payment_method_id": "pm_card_visa"})
            assert r.status_code == 503 and r.json()["error"]["code"] == "workflow_unresponsive", r.text
            r = await http.post("/api/credit-packs/10/purchase", headers=auth(c.api_key))
            assert r.status_code == 503 and r.json()["error"]["code"] == "workflow_unresponsive", r.text
            payments = (await http.get("/api/payments", headers=auth(c.api_key))).json()["payments"]
            assert [p["status"] for p in payments] == ["pending"]  # its workflow settles it once a worker runs
    for wid in (f"subscription-{c.customer_id}", f"payment-{payments[0]['id']}"):
        await temporal_env.client.get_workflow_handle(wid).terminate("test cleanup")
