"""Staff powers are bounded: never on one's own account, always with an Idempotency-Key, large
adjustments only by admins; every adjustment listed with actor and reason."""

from __future__ import annotations

import uuid

from tests.api.conftest import auth


def _with_key(api_key: str, key: str | None = None) -> dict[str, str]:
    return {**auth(api_key), "Idempotency-Key": key or str(uuid.uuid4())}


async def test_support_cannot_adjust_its_own_account(api):
    staff = await api.customer(role="support", credits=2)
    r = await api.client.post(f"/api/support/customers/{staff.customer_id}/credits",
                              json={"amount": 50, "reason": "bonus"}, headers=_with_key(staff.api_key))
    assert r.status_code == 403 and r.json()["error"]["code"] == "self_adjustment"
    admin = await api.customer(role="admin")
    r = await api.client.post(f"/api/support/customers/{admin.customer_id}/credits",
                              json={"amount": 5, "reason": "bonus"}, headers=_with_key(admin.api_key))
    assert r.status_code == 403 and r.json()["error"]["code"] == "self_adjustment"
    assert (await api.ledger.balances(staff.customer_id)).available == 2
    assert (await api.ledger.balances(admin.customer_id)).available == 0


async def test_an_adjustment_without_idempotency_key_is_refused(api):
    c = await api.customer()
    staff = await api.customer(role="support")
    r = await api.client.post(f"/api/support/customers/{c.customer_id}/credits",
                              json={"amount": 5, "reason": "clouds"}, headers=auth(staff.api_key))
    assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_key_required"
    assert "header.idempotency-key" in r.json()["error"]["fields"]
    assert (await api.ledger.balances(c.customer_id)).available == 0


async def test_above_the_limit_needs_admin(make_api):
    async with make_api(api={"support_adjust_limit": 20}) as h:
        c = await h.customer(credits=100)
        support, admin = await h.customer(role="support"), await h.customer(role="admin")
        url = f"/api/support/customers/{c.customer_id}/credits"
        for amount in (21, -21):
            r = await h.client.post(url, json={"amount": amount, "reason": "big"}, headers=_with_key(support.api_key))
            assert r.status_code == 403 and r.json()["error"]["code"] == "admin_required", amount
        r = await h.client.post(url, json={"amount": 20, "reason": "at the limit"}, headers=_with_key(support.api_key))
        assert r.status_code == 200
        r = await h.client.post(url, json={"amount": -60, "reason": "refunded twice"},
                                headers=_with_key(admin.api_key))
        assert r.status_code == 200 and r.json()["balance_after"] == 60


async def test_replaying_the_key_applies_once_and_the_listing_shows_actor_and_reason(api):
    c = await api.customer(credits=1)
    staff = await api.customer(role="support")
    url = f"/api/support/customers/{c.customer_id}/credits"
    headers = _with_key(staff.api_key, "ticket-7781")
    answers = [await api.client.post(url, json={"amount": 9, "reason": "dome fault night"}, headers=headers)
               for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["replayed"] for a in answers] == [False, True, True]
    assert len({a.json()["entry_id"] for a in answers}) == 1
    assert (await api.ledger.balances(c.customer_id)).available == 10
    # The same key for a different adjustment is refused, not applied.
    r = await api.client.post(url, json={"amount": 90, "reason": "dome fault night"}, headers=headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_conflict"
    page = (await api.client.get("/api/support/adjustments", params={"customer_id": c.customer_id},
                                 headers=auth(staff.api_key))).json()
    assert page["total"] == 1
    item = page["items"][0]
    assert (item["amount"], item["reason"], item["customer_id"]) == (9, "dome fault night", c.customer_id)
    assert item["actor"].startswith("support:") and item["entry_id"] == answers[0].json()["entry_id"]
    r = await api.client.get("/api/support/adjustments", headers=auth(c.api_key))
    assert r.status_code == 403
