"""Orders end to end through the HTTP API: real worker (``worker.open_worker``), the Voyager
simulator on a real socket, the Temporal dev server, PostgreSQL; the live SSE stream watched while
the simulated night runs."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any, AsyncIterator

import httpx
import pytest
import pytest_asyncio

from api.app import create_app
from core.settings import Settings
from models.db import Order
from tests.api.conftest import ApiHarness, api_settings, auth, temporal_address
from tests.api.sse import read_sse
from tests.workflows.support import DAYTIME, NIGHT_START, start_sim, terminate_quietly
from worker import monitor_workflow_id, open_worker

pytestmark = pytest.mark.e2e

FINAL = {"completed", "partial", "aborted", "expired", "failed", "rejected"}
# Nebula: M42 from the catalogue, priority 2, moon down; 5 × 120 s of L.
ORDER = {"target_name": "M42", "priority": 2, "c_moon_down": True,
         "shots": [{"filter": "L", "exposure": 120, "quantity": 5}]}


@dataclass
class Stack:
    h: ApiHarness
    sim: Any


@pytest_asyncio.fixture
async def stack_factory(database_url, engine, sessionmaker, temporal_env, task_queue, tmp_path):
    """``async with stack_factory(start_time=...)``: simulator + worker + API on one task queue."""

    @contextlib.asynccontextmanager
    async def make(**sim_overrides) -> AsyncIterator[Stack]:
        sim = await start_sim(tmp_path, **sim_overrides)
        cfg = sim.config
        settings: Settings = api_settings(
            database_url, temporal_address(temporal_env), task_queue, tmp_path,
            voyager={"host": "127.0.0.1", "port": sim.port, "username": cfg.username, "password": cfg.password,
                     "mac_key": cfg.mac_key, "mac_words": ",".join(cfg.mac_words),
                     "profile_name": cfg.profile_name, "pool_size": 3, "command_timeout": 10.0},
            images={"jpg_dir": tmp_path / "jpg", "fit_dir": cfg.fit_dir},
            image_store={"local_dir": tmp_path / "image-store"},
            orders={"telescope": f"api-{task_queue[-8:]}", "monitor_poll_interval": 0.5,
                    "watch_poll_interval": 0.3, "sweep_wait_for_end": 20.0},
        )
        app = create_app(settings, engine=engine, sessionmaker=sessionmaker, temporal_client=temporal_env.client)
        try:
            async with open_worker(settings, client=temporal_env.client, engine=engine, task_queue=task_queue):
                async with app.router.lifespan_context(app):
                    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                 base_url="http://stellar.test") as client:
                        h = ApiHarness(app=app, client=client, settings=settings, sessionmaker=sessionmaker,
                                       engine=engine, task_queue=task_queue, tmp=tmp_path)
                        try:
                            yield Stack(h, sim)
                        finally:
                            async with sessionmaker() as s:
                                from sqlmodel import select

                                ids = (await s.exec(select(Order.workflow_id).where(
                                    Order.customer_id.in_([c.customer_id for c in h.customers])))).all()
                            for wid in [*ids, monitor_workflow_id(settings.orders.telescope)]:
                                if wid:
                                    await terminate_quietly(temporal_env.client, wid)
        finally:
            await sim.stop()

    return make


async def order_status(h: ApiHarness, order_id: int) -> str:
    async with h.sessionmaker() as s:
        return (await s.get(Order, order_id)).status


async def wait_status(h: ApiHarness, key: str, order_id: int, statuses: set[str], timeout: float) -> dict:
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout
    while True:
        # A read that started after the deadline decides: under load one GET (it computes the
        # order's next_window) can outlast the whole timeout and return the status from before it.
        asked_at = loop.time()
        body = (await h.client.get(f"/api/orders/{order_id}", headers=auth(key))).json()
        if body["status"] in statuses:
            return body
        if asked_at > until:
            raise AssertionError(f"order {order_id} still {body['status']} after {timeout} s")
        await asyncio.sleep(0.3)


async def test_order_runs_and_the_stream_shows_live_frames(stack_factory):
    async with stack_factory(start_time=NIGHT_START, speed=600.0) as st:
        h = st.h
        c = await h.customer(plan="nebula", credits=10)
        r = await h.client.post("/api/orders", json=ORDER, headers={**auth(c.api_key), "Idempotency-Key": "e2e-1"})
        assert r.status_code == 201, r.text
        order = r.json()
        assert order["cost"] == 1  # 5 × 150 s = 0.208 h × 1.2 × 2 = 0.5 → 1 credit

        progress, statuses, live = [], [], 0
        async with h.streaming_client() as client:
            async with client.stream("GET", f"/api/orders/{order['id']}/events", headers=auth(c.api_key)) as resp:
                assert resp.status_code == 200
                async with asyncio.timeout(150):
                    async for msg in read_sse(resp):
                        if msg.comment:
                            continue
                        if msg.event == "progress":
                            progress.append(msg)
                            # Received while the order still runs: the stream is live, not a replay.
                            if await order_status(h, order["id"]) not in FINAL:
                                live += 1
                        elif msg.event == "status":
                            statuses.append(msg.data["status"])
        assert statuses[-1] == "completed", statuses
        assert {"held", "submitted", "running"} <= set(statuses)
        # One progress event per ingested frame; a frame Voyager rejected (HFD above Nebula's 4.0 px
        # limit) is an event too, with accepted false, and is retaken.
        accepted = [m for m in progress if m.data["frame"]["accepted"]]
        assert len(accepted) == 5 and live >= 1
        assert [m.data["progress"]["shots_done"] for m in accepted] == [1, 2, 3, 4, 5]
        assert all(m.data["frame"]["filter"] == "L" for m in progress)
        ids = [m.id for m in progress]
        assert ids == sorted(ids)

        final = (await h.client.get(f"/api/orders/{order['id']}", headers=auth(c.api_key))).json()
        assert final["status"] == "completed"
        assert final["credits"] == {"cost": 1, "held": 1, "captured": 1, "released": 0}
        p = final["progress"]
        assert (p["shots_done"], p["shots_total"]) == (5, 5)
        assert p["per_filter"][0]["filter"] == "L" and p["per_filter"][0]["done"] == 5
        assert p["frames_accepted"] >= 1 and p["mean_hfd"] is not None
        assert final["report"]["status"] == "completed" and final["report"]["filters"][0]["filter"] == "L"
        assert len(final["latest_frames"]) == 5  # rejected frames are not images
        credits = (await h.client.get("/api/credits", headers=auth(c.api_key))).json()
        assert credits["available"] == 9 and credits["held"] == 0
        kinds = [t["kind"] for t in (await h.client.get("/api/credits/transactions",
                                                          headers=auth(c.api_key))).json()["items"]]
        assert kinds[:2] == ["capture", "hold"] or "capture" in kinds

        images = (await h.client.get(f"/api/orders/{order['id']}/images", headers=auth(c.api_key))).json()
        assert images["total"] == 5
        first = images["items"][0]
        jpg = await h.client.get(first["jpg_url"], headers=auth(c.api_key))
        assert jpg.status_code == 200 and jpg.content[:2] == b"\xff\xd8"
        fits = await h.client.get(first["fits_url"], headers=auth(c.api_key))
        assert fits.status_code == 200 and fits.content.startswith(b"SIMPLE")

        # Resume after the second progress event: only what followed it is replayed.
        again = await h.client.get(f"/api/orders/{order['id']}/events",
                                   headers={**auth(c.api_key), "Last-Event-ID": str(ids[1])})
        replayed = [int(line[4:]) for line in again.text.splitlines() if line.startswith("id: ")]
        assert replayed[:len(ids) - 2] == ids[2:] and all(i > ids[1] for i in replayed)

        health = await h.client.get("/health")
        assert health.status_code == 200, health.text


async def test_customer_and_support_abort_a_waiting_order(stack_factory):
    # Midsummer noon on the simulated clock, at real speed: the orders wait in Voyager.
    async with stack_factory(start_time=DAYTIME, speed=1.0) as st:
        h = st.h
        c = await h.customer(plan="nebula", credits=10)
        orders = []
        for _ in range(2):
            r = await h.client.post("/api/orders", json=ORDER, headers=auth(c.api_key))
            assert r.status_code == 201, r.text
            orders.append(r.json()["id"])
        for oid in orders:
            await wait_status(h, c.api_key, oid, {"submitted"}, 60)
        assert (await h.client.get("/api/credits", headers=auth(c.api_key))).json()["held"] == 2

        r = await h.client.post(f"/api/orders/{orders[0]}/abort", json={"reason": "wrong target"},
                                headers=auth(c.api_key))
        assert r.status_code == 202, r.text
        assert r.json()["accepted"] is True and r.json()["first"] is True
        assert r.json()["requested_by"] == f"customer:{c.email}"
        done = await wait_status(h, c.api_key, orders[0], FINAL, 90)
        assert done["status"] == "aborted" and done["abort_reason"] == "wrong target"
        assert done["credits"]["captured"] == 0 and done["credits"]["released"] == 1
        r = await h.client.post(f"/api/orders/{orders[0]}/abort", headers=auth(c.api_key))
        assert r.status_code == 409 and r.json()["error"]["code"] == "order_not_abortable"

        staff = await h.customer(role="support")
        r = await h.client.post(f"/api/orders/{orders[1]}/abort", headers=auth(staff.api_key))
        assert r.status_code == 404  # the customer route only sees the caller's own orders
        r = await h.client.post(f"/api/support/orders/{orders[1]}/abort",
                                json={"reason": "telescope maintenance"}, headers=auth(staff.api_key))
        assert r.status_code == 202, r.text
        assert r.json()["requested_by"] == f"support:{staff.email}"
        done = await wait_status(h, c.api_key, orders[1], FINAL, 90)
        assert done["status"] == "aborted" and done["aborted_by"] == f"support:{staff.email}"
        credits = (await h.client.get("/api/credits", headers=auth(c.api_key))).json()
        assert credits["available"] == 10 and credits["held"] == 0
