"""``next_window`` and ``orders_ahead`` on waiting orders (one and list), and the same window from
``POST /api/pricing/estimate`` before anything is bought."""

from __future__ import annotations

from datetime import datetime, timezone

from tests.api.conftest import auth

SHOTS = [{"filter": "L", "exposure": 60, "quantity": 3}]


def _window(body: dict) -> tuple[datetime, datetime]:
    w = body["next_window"]
    return datetime.fromisoformat(w["start"]), datetime.fromisoformat(w["end"])


def _same_window(later: tuple[datetime, datetime], earlier: tuple[datetime, datetime]) -> bool:
    """The same window read twice: a window open now starts at each request's own "now" (it moved
    on between the two), any other starts where it started."""
    (start, end), (first_start, first_end) = later, earlier
    return end == first_end and (start == first_start or first_start <= start <= datetime.now(timezone.utc))


async def test_waiting_order_shows_its_window_and_the_higher_priority_orders_ahead(api):
    c, rival = await api.customer(plan="nebula"), await api.customer(plan="quasar")
    mine = await api.insert_order(c.customer_id, status="submitted", priority=1, c_moon_down=True, c_alt_min=30.0)
    view = (await api.client.get(f"/api/orders/{mine.id}", headers=auth(c.api_key))).json()
    start, end = _window(view)
    # Other tests' waiting orders may share this database: count from what is ahead already.
    before = view["orders_ahead"]
    assert start < end and before >= 0

    # Another customer's waiting orders of higher priority on the same target are ahead; a lower
    # priority, a running one or a finished one are not.
    await api.insert_order(rival.customer_id, status="held", priority=3, c_moon_down=True, c_alt_min=30.0)
    await api.insert_order(rival.customer_id, status="submitted", priority=4, c_moon_down=True, c_alt_min=20.0)
    await api.insert_order(rival.customer_id, status="submitted", priority=0, c_moon_down=True)
    await api.insert_order(rival.customer_id, status="running", priority=4)
    await api.insert_order(rival.customer_id, status="completed", priority=4)
    view = (await api.client.get(f"/api/orders/{mine.id}", headers=auth(c.api_key))).json()
    assert _same_window(_window(view), (start, end)) and view["orders_ahead"] == before + 2

    listed = (await api.client.get("/api/orders", headers=auth(c.api_key))).json()["items"]
    assert [(o["id"], o["orders_ahead"]) for o in listed] == [(mine.id, before + 2)]
    assert _same_window(_window(listed[0]), (start, end))

    running = await api.insert_order(c.customer_id, status="running")
    view = (await api.client.get(f"/api/orders/{running.id}", headers=auth(c.api_key))).json()
    assert view["next_window"] is None and view["orders_ahead"] is None

    # The estimate promises the same window before anything is bought.
    body = {"target": {"priority": 1, "c_moon_down": True, "shots": SHOTS, "target_name": "M42", "c_alt_min": 30}}
    r = await api.client.post("/api/pricing/estimate", json=body, headers=auth(c.api_key))
    assert r.status_code == 200, r.text
    est_start, est_end = _window(r.json())
    assert est_end == end and abs((est_start - start).total_seconds()) < 60  # "now" moved on, if inside


async def test_a_never_rising_target_has_no_window_and_bad_targets_are_422(api):
    c = await api.customer(plan="nebula")
    south = await api.insert_order(c.customer_id, status="submitted")
    await api.set_order(south.id, ra_j2000=6.0, dec_j2000=-70.0)  # culminates at −26° from the site
    view = (await api.client.get(f"/api/orders/{south.id}", headers=auth(c.api_key))).json()
    assert view["next_window"] is None and view["orders_ahead"] is None

    target = {"priority": 0, "shots": SHOTS}
    r = await api.client.post("/api/pricing/estimate", json={"target": target}, headers=auth(c.api_key))
    assert r.status_code == 200 and "next_window" not in r.json()  # no target: the seed's shape
    r = await api.client.post("/api/pricing/estimate", json={"target": {**target, "target_name": "NOT A THING"}},
                              headers=auth(c.api_key))
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_target"
    r = await api.client.post("/api/pricing/estimate", json={"target": {**target, "ra_j2000": 5.5}},
                              headers=auth(c.api_key))
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
