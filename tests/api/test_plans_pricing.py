"""``GET /api/subscriptions/plans`` and ``POST /api/pricing/estimate``: the shapes and numbers of docs/pricing.md."""

from __future__ import annotations

from tests.api.conftest import auth

SEED_FEATURE_KEYS = {"priority_max", "moon_down", "hfd_guarantee", "repeat", "sets", "mosaics", "dashboard"}


async def test_plans_are_the_seed_catalogue(api):
    r = await api.client.get("/api/subscriptions/plans")
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["plans"]
    plans = {p["id"]: p for p in body["plans"]}
    assert [p["id"] for p in body["plans"]] == ["stardust", "nebula", "quasar"]
    assert (plans["stardust"]["name"], plans["stardust"]["price"], plans["stardust"]["credits"]) == ("Stardust", 2900, 20)
    assert (plans["nebula"]["price"], plans["nebula"]["credits"]) == (5900, 60)
    assert (plans["quasar"]["price"], plans["quasar"]["credits"]) == (11900, 150)
    for p in body["plans"]:
        assert set(p) == {"id", "name", "price", "credits", "features"}
        assert set(p["features"]) == SEED_FEATURE_KEYS
    # Stardust's features (docs/pricing.md §1), exactly.
    assert plans["stardust"]["features"] == {"priority_max": 1, "moon_down": False, "hfd_guarantee": False,
                                             "repeat": False, "sets": False, "mosaics": False,
                                             "dashboard": False}
    assert plans["quasar"]["features"]["priority_max"] == 4 and plans["quasar"]["features"]["sets"] is True


async def test_estimate_matches_the_seed_example(api):
    c = await api.customer(plan="nebula", credits=60, bucket="subscription")
    body = {"subscription_plan": "nebula", "target": {"priority": 2, "c_moon_down": True, "c_hfd_mean_limit": 0,
            "shots": [{"filter": "Ha", "exposure": 300, "quantity": 20},
                      {"filter": "OIII", "exposure": 300, "quantity": 20}]}}
    r = await api.client.post("/api/pricing/estimate", json=body, headers=auth(c.api_key))
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "estimation": {
        "base_cost": 3.67, "multipliers": {"priority": 1.2, "moon_down": 2.0, "hfd": 1.0, "total": 2.4},
        "final_cost": 9, "user_balance": 60, "remaining_after": 51, "can_afford": True}}


async def test_estimate_defaults_to_the_callers_plan_and_balance(api):
    stardust = await api.customer(credits=1)
    # 10 × 300 s + 30 s overhead each = 3300 s = 11/12 h: 1 credit at priority 0, exactly 1.1 → 2 at priority 2.
    target = {"priority": 0, "shots": [{"filter": "L", "exposure": 300, "quantity": 10}]}
    r = await api.client.post("/api/pricing/estimate", json={"target": target}, headers=auth(stardust.api_key))
    assert r.status_code == 200
    est = r.json()["estimation"]
    assert (est["final_cost"], est["user_balance"], est["remaining_after"], est["can_afford"]) == (1, 1, 0, True)
    # Priority 2 is beyond Stardust (no plan = Stardust rules): a plan violation with the reason.
    target["priority"] = 2
    r = await api.client.post("/api/pricing/estimate", json={"target": target}, headers=auth(stardust.api_key))
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "plan_violation"
    assert "Nebula" in r.json()["error"]["fields"]["priority"]
    # ... while asking for Nebula's pricing explicitly works.
    r = await api.client.post("/api/pricing/estimate", json={"subscription_plan": "nebula", "target": target},
                              headers=auth(stardust.api_key))
    assert r.status_code == 200 and r.json()["estimation"]["multipliers"]["priority"] == 1.2
    assert r.json()["estimation"]["final_cost"] == 2 and r.json()["estimation"]["can_afford"] is False
    assert r.json()["estimation"]["remaining_after"] == -1


async def test_estimate_refuses_unknown_plan_and_filter(api):
    c = await api.customer()
    target = {"shots": [{"filter": "L", "exposure": 60, "quantity": 1}]}
    r = await api.client.post("/api/pricing/estimate", json={"subscription_plan": "galaxy", "target": target},
                              headers=auth(c.api_key))
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_plan"
    assert "subscription_plan" in r.json()["error"]["fields"]
    target["shots"][0]["filter"] = "Xray"
    r = await api.client.post("/api/pricing/estimate", json={"target": target}, headers=auth(c.api_key))
    assert r.status_code == 422 and "target.shots.0.filter" in r.json()["error"]["fields"]
