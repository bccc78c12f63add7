"""Customer Sets end to end: the API, a real worker, the Voyager simulator on a real socket and the
Temporal dev server. A paused Quasar Set keeps its order waiting while another customer's order
runs; resumed, it runs and completes; renamed and deleted, Voyager follows."""

from __future__ import annotations

import asyncio

import pytest

from models.db import Order
from tests.api.conftest import auth
from tests.api.test_order_e2e import ORDER, stack_factory, wait_status  # noqa: F401  (fixture)
from tests.workflows.support import NIGHT_START
from voyager import wire

pytestmark = pytest.mark.e2e

SET = wire.ADD_SET_PARAMS


async def synced(h, key: str, set_id: int, timeout: float = 60) -> dict:
    """The Set once Voyager holds it as shown (its CustomerSetWorkflow ran)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout
    while True:
        body = (await h.client.get(f"/api/sets/{set_id}", headers=auth(key))).json()
        if body["voyager_synced"]:
            return body
        assert loop.time() < until, f"set {set_id} not synced after {timeout} s: {body}"
        await asyncio.sleep(0.3)


async def test_a_paused_set_waits_while_another_customer_runs_then_resumes_and_completes(stack_factory):
    async with stack_factory(start_time=NIGHT_START, speed=600.0) as st:
        h, store = st.h, st.sim.store
        quasar = await h.customer(plan="quasar", credits=50)
        nebula = await h.customer(plan="nebula", credits=10)

        r = await h.client.post("/api/sets", json={"name": "Winter nebulae", "paused": True},
                                headers=auth(quasar.api_key))
        assert r.status_code == 201, r.text
        made = await synced(h, quasar.api_key, r.json()["id"])
        assert store.sets[made["guid"]][SET["status"]] == 1
        assert store.sets[made["guid"]][SET["name"]] == "Winter nebulae"
        assert store.sets[made["guid"]][SET["tag"]] == f"user_{quasar.customer_id}"

        # Priority 4 would go first; its Set is paused, so the Nebula order (priority 2) runs.
        r = await h.client.post("/api/orders", json={**ORDER, "priority": 4, "set_id": made["id"]},
                                headers=auth(quasar.api_key))
        assert r.status_code == 201, r.text
        waiting = r.json()
        assert waiting["set_id"] == made["id"]
        await wait_status(h, quasar.api_key, waiting["id"], {"submitted"}, 60)
        r = await h.client.post("/api/orders", json=ORDER, headers=auth(nebula.api_key))
        assert r.status_code == 201, r.text
        other = r.json()
        done = await wait_status(h, nebula.api_key, other["id"], {"completed", "failed", "partial"}, 150)
        assert done["status"] == "completed" and done["set_id"] is None

        async with h.sessionmaker() as s:
            row = await s.get(Order, waiting["id"])
            target_guid, set_guid = row.target_guid, row.set_guid
        assert set_guid == made["guid"] and store.targets[target_guid][wire.TARGET_FIELDS["set_guid"]] == made["guid"]
        view = (await h.client.get(f"/api/orders/{waiting['id']}", headers=auth(quasar.api_key))).json()
        assert view["status"] == "submitted" and view["progress"]["shots_done"] == 0
        assert not [x for x in store.sessions.values() if x[wire.SESSION_ITEM["ref_guid_target"]] == target_guid]
        assert (await h.client.get("/api/credits", headers=auth(quasar.api_key))).json()["held"] == waiting["cost"]

        r = await h.client.patch(f"/api/sets/{made['id']}", json={"paused": False}, headers=auth(quasar.api_key))
        assert r.status_code == 200 and r.json()["paused"] is False
        await synced(h, quasar.api_key, made["id"])
        assert store.sets[made["guid"]][SET["status"]] == 0
        final = await wait_status(h, quasar.api_key, waiting["id"], {"completed", "failed", "partial", "expired"}, 240)
        assert final["status"] == "completed", final["status_reason"]
        assert final["progress"]["shots_done"] == final["progress"]["shots_total"] == 5
        assert final["credits"]["captured"] == waiting["cost"]

        r = await h.client.patch(f"/api/sets/{made['id']}", json={"name": "Done"}, headers=auth(quasar.api_key))
        assert r.status_code == 200, r.text
        await synced(h, quasar.api_key, made["id"])
        assert store.sets[made["guid"]][SET["name"]] == "Done"
        assert (await h.client.delete(f"/api/sets/{made['id']}", headers=auth(quasar.api_key))).status_code == 204
        loop = asyncio.get_running_loop()
        until = loop.time() + 60
        while made["guid"] in store.sets:
            assert loop.time() < until, "the Set is still in Voyager"
            await asyncio.sleep(0.3)
        assert target_guid not in store.targets
        credits = (await h.client.get("/api/credits", headers=auth(quasar.api_key))).json()
        assert credits["held"] == 0 and credits["available"] == 50 - waiting["cost"]
