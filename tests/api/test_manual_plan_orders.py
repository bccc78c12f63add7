"""A manual plan past its period end: its rules and its subscription credits are gone when the
customer next orders (billing/manual_plans.py), like a Stripe subscription that ended."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from billing.ledger_check import check_invariants
from models.db import Subscription
from tests.api.conftest import auth

ORDER_BODY = {"target_name": "M42", "shots": [{"filter": "L", "exposure": 60, "quantity": 10}]}
SUB = Subscription.__table__


async def test_a_lapsed_manual_plan_cannot_spend_its_credits(api):
    c = await api.customer(plan="quasar", credits=100, bucket="subscription")
    async with api.engine.begin() as conn:
        await conn.execute(SUB.update().where(SUB.c.customer_id == c.customer_id).values(
            current_period_end=datetime.now(timezone.utc) - timedelta(seconds=1)))
    r = await api.client.post("/api/orders", json=ORDER_BODY, headers=auth(c.api_key))
    assert r.status_code == 402, r.text
    assert r.json()["error"]["code"] == "insufficient_credits"
    credits = (await api.client.get("/api/credits", headers=auth(c.api_key))).json()
    assert (credits["plan"], credits["subscription_status"], credits["buckets"]["subscription"]) == (
        "stardust", "cancelled", 0)
    assert await check_invariants(api.engine, c.customer_id) == []
