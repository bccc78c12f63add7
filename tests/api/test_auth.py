"""Authentication and the authorization matrix: customer A vs B vs support vs admin, no/wrong keys."""

from __future__ import annotations

import pytest

from tests.api.conftest import auth


async def test_missing_wrong_and_malformed_keys_are_401_with_the_error_body(api):
    a = await api.customer()
    cases = [
        {},
        {"Authorization": "Bearer sk_not_a_real_key"},
        {"Authorization": "Bearer " + a.api_key + "x"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": a.api_key},
    ]
    for headers in cases:
        r = await api.client.get("/api/credits", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["code"] in {"unauthorized", "invalid_api_key"}
    ok = await api.client.get("/api/credits", headers=auth(a.api_key))
    assert ok.status_code == 200


async def test_keys_are_stored_hashed_and_shown_once(api):
    from sqlmodel import select

    from models.db import ApiKey

    c = await api.customer()
    assert c.api_key.startswith("sk_") and len(c.api_key) > 40
    async with api.sessionmaker() as s:
        rows = (await s.exec(select(ApiKey).where(ApiKey.customer_id == c.customer_id))).all()
    assert len(rows) == 1
    assert rows[0].key_hash != c.api_key and len(rows[0].key_hash) == 64
    assert c.api_key not in rows[0].key_hash and rows[0].prefix == c.api_key[:10]


async def test_order_of_another_customer_is_404_everywhere(api):
    a, b = await api.customer(), await api.customer()
    order = await api.insert_order(a.customer_id)
    frame = await api.insert_frame(order.id, filter="L", exposure=60, accepted=True, jpg_path="x.jpg",
                                   fits_path="x.fit")
    paths = [f"/api/orders/{order.id}", f"/api/orders/{order.id}/images", f"/api/orders/{order.id}/events",
             f"/api/images/{frame.id}.jpg", f"/api/images/{frame.id}/fits"]
    for path in paths:
        r = await api.client.get(path, headers=auth(b.api_key))
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "not_found"
    r = await api.client.post(f"/api/orders/{order.id}/abort", headers=auth(b.api_key))
    assert r.status_code == 404
    r = await api.client.get(f"/api/orders/{order.id}", headers=auth(a.api_key))
    assert r.status_code == 200 and r.json()["id"] == order.id
    listing = (await api.client.get("/api/orders", headers=auth(b.api_key))).json()
    assert order.id not in [o["id"] for o in listing["items"]]


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"),
    [
        ("GET", "/api/support/orders", None, {"support", "admin"}),
        ("GET", "/api/support/orders/{order}", None, {"support", "admin"}),
        ("POST", "/api/support/customers/{customer}/credits", {"amount": 5, "reason": "goodwill"},
         {"support", "admin"}),
        ("POST", "/api/admin/customers", {"email": "{email}"}, {"admin"}),
    ],
)
async def test_staff_routes_by_role(api, method, path, body, allowed):
    a = await api.customer()
    order = await api.insert_order(a.customer_id)
    principals = {"customer": a, "support": await api.customer(role="support"),
                  "admin": await api.customer(role="admin")}
    for role, who in principals.items():
        import uuid

        url = path.format(order=order.id, customer=a.customer_id)
        payload = None if body is None else {k: (v.format(email=f"new-{uuid.uuid4().hex[:8]}@example.com")
                                                 if isinstance(v, str) else v) for k, v in body.items()}
        headers = {**auth(who.api_key), "Idempotency-Key": str(uuid.uuid4())}
        r = await api.client.request(method, url, json=payload, headers=headers)
        if role in allowed:
            assert r.status_code in (200, 201), (role, r.text)
        else:
            assert r.status_code == 403, (role, r.text)
            assert r.json()["error"]["code"] == "forbidden"
    r = await api.client.request(method, path.format(order=order.id, customer=a.customer_id), json=body)
    assert r.status_code == 401


async def test_support_sees_every_customers_orders_with_filters(api):
    a, b = await api.customer(), await api.customer()
    oa = await api.insert_order(a.customer_id, status="running")
    ob = await api.insert_order(b.customer_id, status="completed")
    staff = await api.customer(role="support")
    r = await api.client.get("/api/support/orders", params={"limit": 200}, headers=auth(staff.api_key))
    ids = {o["id"] for o in r.json()["items"]}
    assert {oa.id, ob.id} <= ids
    r = await api.client.get("/api/support/orders", params={"customer_id": b.customer_id},
                             headers=auth(staff.api_key))
    assert [o["id"] for o in r.json()["items"]] == [ob.id]
    r = await api.client.get("/api/support/orders", params={"customer_id": b.customer_id, "status": "running"},
                             headers=auth(staff.api_key))
    assert r.json()["items"] == [] and r.json()["total"] == 0


async def test_rotate_revokes_the_old_key(api):
    c = await api.customer(role="support")
    r = await api.client.post("/api/keys/rotate", headers=auth(c.api_key))
    assert r.status_code == 200
    new = r.json()
    assert new["api_key"].startswith("sk_") and new["api_key"] != c.api_key and new["role"] == "support"
    assert (await api.client.get("/api/credits", headers=auth(c.api_key))).status_code == 401
    assert (await api.client.get("/api/credits", headers=auth(new["api_key"]))).status_code == 200
    assert (await api.client.get("/api/support/orders", headers=auth(new["api_key"]))).status_code == 200


async def test_rate_limit_answers_429_with_retry_after(make_api):
    async with make_api(api={"rate_limit_per_minute": 3}) as h:
        h.app.state.resources.rate_limiter.clock = lambda: 1_800_000_030.0  # mid-window: no boundary mid-test
        a, b = await h.customer(), await h.customer()
        codes = [(await h.client.get("/api/credits", headers=auth(a.api_key))).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = await h.client.get("/api/credits", headers=auth(a.api_key))
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["code"] == "rate_limited"
        # The limit is per key: another customer is not affected.
        assert (await h.client.get("/api/credits", headers=auth(b.api_key))).status_code == 200
