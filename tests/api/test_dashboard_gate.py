"""The live dashboard is a plan feature: the event stream and live previews for Nebula and Quasar
(and support staff); Stardust follows status and progress, and gets the frames when the order ends."""

from __future__ import annotations

import asyncio

from tests.api.conftest import auth
from tests.api.sse import read_sse


def _refused_for_the_plan(r) -> None:
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["code"] == "dashboard_not_in_plan"
    assert "Nebula" in err["message"] and "Quasar" in err["message"]


async def _first_event(api, key: str, order_id: int, row_id: int):
    async with api.streaming_client() as client:
        async with client.stream("GET", f"/api/orders/{order_id}/events", headers=auth(key)) as r:
            assert r.status_code == 200
            messages = read_sse(r)
            msg = await asyncio.wait_for(anext(messages), 10)
            while msg.comment:
                msg = await asyncio.wait_for(anext(messages), 10)
            assert msg.id == row_id
            return msg


async def test_stardust_stream_is_403_naming_the_plans_and_nebula_gets_live_events(api):
    stardust, no_plan = await api.customer(plan="stardust"), await api.customer()
    for c in (stardust, no_plan):  # without a plan a customer orders at Stardust rules
        order = await api.insert_order(c.customer_id, status="running")
        await api.insert_event(order.id, "progress", {"frame": {"id": 1, "filter": "L"}})
        _refused_for_the_plan(await api.client.get(f"/api/orders/{order.id}/events", headers=auth(c.api_key)))
        # Status and progress stay theirs.
        r = await api.client.get(f"/api/orders/{order.id}", headers=auth(c.api_key))
        assert r.status_code == 200 and r.json()["status"] == "running"

    nebula = await api.customer(plan="nebula")
    order = await api.insert_order(nebula.customer_id, status="running")
    row = await api.insert_event(order.id, "progress", {"frame": {"id": 7, "filter": "Ha"}})
    msg = await _first_event(api, nebula.api_key, order.id, row.id)
    assert msg.event == "progress" and msg.data["frame"] == {"id": 7, "filter": "Ha"}


async def test_support_staff_see_every_customers_stream(api):
    stardust = await api.customer(plan="stardust")
    staff = await api.customer(role="support")
    order = await api.insert_order(stardust.customer_id, status="running")
    row = await api.insert_event(order.id, "status", {"status": "running"})
    msg = await _first_event(api, staff.api_key, order.id, row.id)
    assert msg.event == "status" and msg.data["status"] == "running"


async def test_stardust_gets_frame_previews_when_the_order_ends_not_during_the_session(api):
    c = await api.customer(plan="stardust")
    order = await api.insert_order(c.customer_id, status="running")
    jpg = api.settings.images.jpg_dir / f"order_{order.id}" / "a.jpg"
    jpg.parent.mkdir(parents=True)
    jpg.write_bytes(b"\xff\xd8\xff\xe0JPEGDATA")
    frame = await api.insert_frame(order.id, filter="L", exposure=60, hfd=2.0, accepted=True, jpg_path=str(jpg))

    _refused_for_the_plan(await api.client.get(f"/api/images/{frame.id}.jpg", headers=auth(c.api_key)))
    view = (await api.client.get(f"/api/orders/{order.id}", headers=auth(c.api_key))).json()
    assert view["latest_frames"] == [] and view["progress"]["shots_done"] == 1

    await api.set_order(order.id, status="completed")
    r = await api.client.get(f"/api/images/{frame.id}.jpg", headers=auth(c.api_key))
    assert r.status_code == 200 and r.content.startswith(b"\xff\xd8")
    view = (await api.client.get(f"/api/orders/{order.id}", headers=auth(c.api_key))).json()
    assert [f["id"] for f in view["latest_frames"]] == [frame.id]
