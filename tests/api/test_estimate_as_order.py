"""``POST /api/pricing/estimate`` judges a body as ``POST /api/orders`` would (the shared
``api.services.orders.gate_order`` and ``order_need``): the same telescope, window and price for
the same body, and the same refusal, in the same order — the plan's rules before the sky."""

from __future__ import annotations

from datetime import datetime

from tests.api.conftest import auth

SHOTS = [{"filter": "L", "exposure": 120, "quantity": 5}]


def _window(body: dict) -> tuple[datetime, datetime]:
    w = body["next_window"]
    return datetime.fromisoformat(w["start"]), datetime.fromisoformat(w["end"])


async def test_an_estimate_and_the_order_of_the_same_body_name_the_same_telescope_window_and_price(api):
    c = await api.customer(plan="quasar", credits=200)
    # The seeded telescope by name: other tests may bring telescopes online in the shared database.
    body = {"target_name": "M42", "telescope": "main", "priority": 2, "c_alt_min": 25, "shots": SHOTS}
    est = await api.client.post("/api/pricing/estimate", json={"target": body}, headers=auth(c.api_key))
    assert est.status_code == 200, est.text
    placed = await api.client.post("/api/orders", json=body, headers=auth(c.api_key))
    assert placed.status_code == 201, placed.text
    shown = (await api.client.get(f"/api/orders/{placed.json()['id']}", headers=auth(c.api_key))).json()

    e = est.json()
    assert e["telescope"]["slug"] == placed.json()["telescope"] == "main"
    assert e["estimation"]["final_cost"] == placed.json()["cost"]
    # Quasar forces moon-down on both; a window open now starts at each request's own "now".
    (est_start, est_end), (start, end) = _window(e), _window(shown)
    assert est_end == end and abs((start - est_start).total_seconds()) < 60


async def test_a_plan_violation_is_refused_before_the_sky_as_for_the_order(api):
    c = await api.customer(plan="stardust", credits=50)
    # Moon-down is not Stardust's, and the target never rises at the seeded site (Dec −70°).
    body = {"target_name": "Far south", "ra_j2000": 6.0, "dec_j2000": -70.0, "telescope": "main",
            "c_moon_down": True, "shots": SHOTS}
    est = await api.client.post("/api/pricing/estimate", json={"target": body}, headers=auth(c.api_key))
    placed = await api.client.post("/api/orders", json=body, headers=auth(c.api_key))

    assert placed.status_code == 403, placed.text
    assert (est.status_code, est.json()["error"]) == (placed.status_code, placed.json()["error"])
    assert placed.json()["error"]["code"] == "plan_violation"
    assert set(placed.json()["error"]["fields"]) == {"c_moon_down"}
