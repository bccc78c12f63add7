"""Inputs that used to answer 500: each is now a 4xx with the one error body, and nothing is written."""

from __future__ import annotations

import json
import uuid

from sqlmodel import func, select

from api.services.customers import create_customer
from models.db import Order
from tests.api.conftest import auth

ORDER = {"target_name": "M42", "ra_j2000": 5.588, "dec_j2000": -5.39,
         "shots": [{"filter": "L", "exposure": 60, "quantity": 10}]}


def assert_error_body(r, status: int, field: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    if field:
        assert field in body["error"]["fields"], body
    return body["error"]


async def test_an_order_window_in_year_9999_is_422(api):
    c = await api.customer(credits=1000)
    for window in ({"date_start": "9999-12-30T00:00:00Z", "date_end": "9999-12-31T23:59:59Z"},
                   {"date_end": "9999-12-31T23:59:59Z"}, {"date_start": "9999-06-01T00:00:00+14:00"}):
        r = await api.client.post("/api/orders", json={**ORDER, **window}, headers=auth(c.api_key))
        err = assert_error_body(r, 422)
        assert set(err["fields"]) & {"date_start", "date_end"}, err
    async with api.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(Order).where(Order.customer_id == c.customer_id)) == 0


async def test_nul_and_control_characters_in_text_fields_are_422(api):
    c = await api.customer(credits=1000)
    staff = await api.customer(role="support")
    admin = await api.customer(role="admin")
    order = await api.insert_order(c.customer_id, status="running")
    cases = [
        ("/api/orders", c, {**ORDER, "target_name": "M42\x00"}, "target_name"),
        ("/api/orders", c, {**ORDER, "shots": [{"filter": "L\x00", "exposure": 60, "quantity": 1}]}, "shots.0.filter"),
        (f"/api/orders/{order.id}/abort", c, {"reason": "clouds\x00"}, "reason"),
        (f"/api/support/orders/{order.id}/abort", staff, {"reason": "dome\x1b[31m"}, "reason"),
        (f"/api/support/customers/{c.customer_id}/credits", staff, {"amount": 5, "reason": "x\x00"}, "reason"),
        ("/api/admin/customers", admin, {"email": "a\x00@example.com"}, "email"),
        ("/api/admin/customers", admin, {"email": "b@example.com", "name": "\ud800"}, "name"),
        ("/api/pricing/estimate", c, {"subscription_plan": "nebula\x00",
                                      "target": {"shots": [{"filter": "L", "exposure": 1, "quantity": 1}]}},
         "subscription_plan"),
        ("/api/subscriptions/change", c, {"plan": "quasar\x00"}, "plan"),
    ]
    for path, who, body, field in cases:
        headers = {**auth(who.api_key), "Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"}
        # json.dumps escapes a lone surrogate as \ud800, as a client would send it.
        assert_error_body(await api.client.post(path, content=json.dumps(body), headers=headers), 422, field)
    assert (await api.ledger.balances(c.customer_id)).available == 1000


async def test_a_320_character_email_as_abort_actor_is_not_a_500(api):
    c = await api.customer()
    email = f"staff-{uuid.uuid4().hex[:8]}@{'d' * 240}.example.com"
    assert 250 <= len(email) <= 320
    staff = await create_customer(api.sessionmaker, email=email, role="support")
    order = await api.insert_order(c.customer_id, status="running", workflow_id=f"order-missing-{uuid.uuid4()}")
    r = await api.client.post(f"/api/support/orders/{order.id}/abort", json={"reason": "dome fault"},
                              headers=auth(staff.api_key))
    # No workflow runs for this row: the answer is a refusal, not a crash on the actor's length.
    assert_error_body(r, 409)
    r = await api.client.post(f"/api/support/customers/{c.customer_id}/credits", json={"amount": 3, "reason": "x"},
                              headers={**auth(staff.api_key), "Idempotency-Key": "long-actor"})
    assert r.status_code == 200, r.text
    line = (await api.ledger.list_entries(c.customer_id, limit=1, offset=0))[0]
    assert len(line.actor) <= 255 and line.actor.startswith(f"support:#{staff.customer_id}:")
