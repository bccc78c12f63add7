"""``GET /api/orders/{id}/abort-preview``: the settlement policy's split of the hold on the
frames accepted so far (docs/pricing.md §6), without moving a credit; another's order is 404."""

from __future__ import annotations

import uuid

from sqlmodel import select

from models.db import OrderShot
from tests.api.conftest import auth


async def test_the_preview_splits_the_hold_by_the_accepted_integration_and_moves_nothing(api):
    me = await api.customer(plan="nebula", credits=20)
    order = await api.insert_order(me.customer_id, shots=(("L", 60.0, 10),))
    line_guid = str(uuid.uuid4())
    async with api.sessionmaker() as s:
        line = (await s.exec(select(OrderShot).where(OrderShot.order_id == order.id))).one()
        line.shot_guid = line_guid
        await s.commit()
    await api.ledger.hold(me.customer_id, order.id, 9)
    for accepted in (True, True, True, False, False):
        await api.insert_frame(order.id, shot_guid=line_guid, filter="L", exposure=60.0, hfd=2.0, accepted=accepted)

    r = await api.client.get(f"/api/orders/{order.id}/abort-preview", headers=auth(me.api_key))
    assert r.status_code == 200, r.text
    # 3 accepted × 60 s of 600 s requested: ceil(9 × 0.3) = 3 kept, 6 released.
    assert r.json() == {"order_id": order.id, "held": 9, "captured": 3, "released": 6,
                        "accepted_integration_seconds": 180.0, "requested_integration_seconds": 600.0}
    hold = await api.ledger.get_hold(order.id)
    assert hold.status == "open" and hold.amount == 9
    assert (await api.ledger.balances(me.customer_id)).held == 9

    other = await api.customer()
    r = await api.client.get(f"/api/orders/{order.id}/abort-preview", headers=auth(other.api_key))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_an_order_without_a_hold_previews_zero(api):
    me = await api.customer()
    order = await api.insert_order(me.customer_id, status="pending")
    r = await api.client.get(f"/api/orders/{order.id}/abort-preview", headers=auth(me.api_key))
    assert r.status_code == 200 and (r.json()["held"], r.json()["captured"], r.json()["released"]) == (0, 0, 0)
