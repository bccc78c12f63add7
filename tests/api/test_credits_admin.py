"""Credits, support adjustments, admin customer creation, and the ``stellar customers`` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests.api.conftest import auth

ROOT = Path(__file__).resolve().parents[2]


async def test_credits_show_buckets_and_held(api):
    c = await api.customer(plan="nebula", credits=60, bucket="subscription")
    await api.ledger.grant(c.customer_id, 15, "pack", idempotency_key=f"t:{uuid.uuid4()}", reference_type="payment",
                           reference_id="p1")
    order = await api.insert_order(c.customer_id)
    await api.ledger.hold(c.customer_id, order.id, 10)
    r = await api.client.get("/api/credits", headers=auth(c.api_key))
    assert r.status_code == 200
    assert r.json() == {"available": 65, "held": 10, "buckets": {"subscription": 50, "pack": 15, "debt": 0},
                        "plan": "nebula", "subscription_status": "active"}


async def test_transactions_are_paginated_newest_first(api):
    c = await api.customer()
    for i in range(5):
        await api.ledger.grant(c.customer_id, i + 1, "pack", idempotency_key=f"t:{uuid.uuid4()}",
                               reference_type="payment", reference_id=f"pay-{i}")
    r = await api.client.get("/api/credits/transactions", params={"limit": 2}, headers=auth(c.api_key))
    page = r.json()
    assert r.status_code == 200 and page["total"] == 5 and page["limit"] == 2
    assert [t["amount"] for t in page["items"]] == [5, 4]
    first = page["items"][0]
    assert first["kind"] == "grant" and first["balance_after"] == 15
    assert first["reference"] == {"type": "payment", "id": "pay-4"}
    r = await api.client.get("/api/credits/transactions", params={"limit": 2, "offset": 4}, headers=auth(c.api_key))
    assert [t["amount"] for t in r.json()["items"]] == [1]
    other = await api.customer()
    r = await api.client.get("/api/credits/transactions", headers=auth(other.api_key))
    assert r.json()["items"] == [] and r.json()["total"] == 0


async def test_support_adjustment_is_ledger_logged_with_reason_and_idempotent(api):
    c = await api.customer(credits=3)
    staff = await api.customer(role="support")
    url = f"/api/support/customers/{c.customer_id}/credits"
    headers = {**auth(staff.api_key), "Idempotency-Key": "ticket-123"}

    def key(k: str) -> dict[str, str]:
        return {**auth(staff.api_key), "Idempotency-Key": k}
    r = await api.client.post(url, json={"amount": 7, "reason": "frames lost to clouds"}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["balance_after"] == 10 and r.json()["replayed"] is False
    again = await api.client.post(url, json={"amount": 7, "reason": "frames lost to clouds"}, headers=headers)
    assert again.json()["replayed"] is True and again.json()["entry_id"] == r.json()["entry_id"]
    lines = (await api.client.get("/api/credits/transactions", headers=auth(c.api_key))).json()["items"]
    assert lines[0]["kind"] == "adjustment" and lines[0]["amount"] == 7
    assert lines[0]["reason"] == "frames lost to clouds"
    assert (await api.client.get("/api/credits", headers=auth(c.api_key))).json()["available"] == 10
    # Taking away more than the bucket holds is refused and changes nothing.
    r = await api.client.post(url, json={"amount": -50, "reason": "mistake"}, headers=key("t-2"))
    assert r.status_code == 402 and r.json()["error"]["code"] == "insufficient_credits"
    # A reason is required, zero is refused, unknown customers are 404.
    r = await api.client.post(url, json={"amount": 5}, headers=key("t-3"))
    assert r.status_code == 422 and "reason" in r.json()["error"]["fields"]
    r = await api.client.post(url, json={"amount": 0, "reason": "x"}, headers=key("t-4"))
    assert r.status_code == 422 and "amount" in r.json()["error"]["fields"]
    r = await api.client.post("/api/support/customers/2000000000/credits", json={"amount": 1, "reason": "x"},
                              headers=key("t-5"))
    assert r.status_code == 404


async def test_admin_creates_customers_and_the_key_works_once_shown(api):
    admin = await api.customer(role="admin")
    email = f"ada-{uuid.uuid4().hex[:8]}@Example.com"
    r = await api.client.post("/api/admin/customers", json={"email": email, "name": "Ada", "plan": "quasar"},
                              headers=auth(admin.api_key))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["email"] == email.lower() and created["plan"] == "quasar" and created["role"] == "customer"
    credits = await api.client.get("/api/credits", headers=auth(created["api_key"]))
    assert credits.status_code == 200 and credits.json()["plan"] == "quasar"
    dup = await api.client.post("/api/admin/customers", json={"email": email}, headers=auth(admin.api_key))
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "email_taken"
    bad = await api.client.post("/api/admin/customers", json={"email": "not-an-email", "plan": "galaxy"},
                                headers=auth(admin.api_key))
    assert bad.status_code == 422 and {"email", "plan"} <= set(bad.json()["error"]["fields"])
    staff = await api.client.post("/api/admin/customers", json={"email": f"s-{uuid.uuid4().hex[:6]}@example.com",
                                  "role": "support"}, headers=auth(admin.api_key))
    key = staff.json()["api_key"]
    assert (await api.client.get("/api/support/orders", headers=auth(key))).status_code == 200


def test_cli_creates_a_customer_and_prints_the_key_once(database_url, tmp_path):
    env = {**os.environ, "STELLAR_DATABASE__URL": database_url, "STELLAR_LOG_JSON": "true"}
    email = f"cli-{uuid.uuid4().hex[:8]}@example.com"
    run = subprocess.run([sys.executable, "-m", "stellar_cli", "customers", "create", "--email", email,
                          "--plan", "nebula", "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["email"] == email and out["plan"] == "nebula" and out["api_key"].startswith("sk_")
    again = subprocess.run([sys.executable, "-m", "stellar_cli", "customers", "create", "--email", email],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "already exists" in again.stderr
