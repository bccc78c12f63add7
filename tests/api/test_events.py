"""SSE ``/api/orders/{id}/events`` over LISTEN/NOTIFY: live rows, heartbeats, resume, end on final."""

from __future__ import annotations

import asyncio

from models.db import Order, OrderEvent
from tests.api.conftest import auth
from tests.api.sse import read_sse


async def test_stream_replays_then_follows_live_rows_and_ends_on_final_status(api):
    c = await api.customer(plan="nebula")  # the live dashboard is a Nebula/Quasar feature
    order = await api.insert_order(c.customer_id, status="submitted")
    first = await api.insert_event(order.id, "status", {"status": "submitted"})
    received = []
    async with api.streaming_client() as client:
        async with client.stream("GET", f"/api/orders/{order.id}/events", headers=auth(c.api_key)) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            messages = read_sse(r)
            msg = await asyncio.wait_for(anext(messages), 10)
            assert (msg.id, msg.event, msg.data["status"]) == (first.id, "status", "submitted")
            # Live: rows inserted now reach the open stream through NOTIFY, in order.
            live = []
            for i in range(3):
                live.append(await api.insert_event(order.id, "progress", {"frame": {"id": i, "filter": "L"}}))
                msg = await asyncio.wait_for(anext(messages), 10)
                while msg.comment:
                    msg = await asyncio.wait_for(anext(messages), 10)
                received.append(msg)
                assert msg.id == live[-1].id and msg.event == "progress" and msg.data["frame"]["id"] == i
            # Idle: heartbeat comments keep the connection alive (1 s in tests).
            msg = await asyncio.wait_for(anext(messages), 5)
            assert msg.comment
            # The final status and its event commit together, as finalize_order writes them: a
            # stream that sees the status in between would end before the event.
            async with api.sessionmaker() as s:
                (await s.get(Order, order.id)).status = "completed"
                done = OrderEvent(order_id=order.id, kind="status", payload={"status": "completed"})
                s.add(done)
                await s.commit()
                await s.refresh(done)
            rest = [m async for m in messages if not m.comment]
            assert [m.id for m in rest] == [done.id] and rest[0].data["status"] == "completed"
    assert [m.data["order_id"] for m in received] == [order.id] * 3


async def test_last_event_id_resumes_after_it_and_a_finished_order_closes(api):
    c = await api.customer(plan="nebula")  # the live dashboard is a Nebula/Quasar feature
    order = await api.insert_order(c.customer_id, status="running")
    rows = [await api.insert_event(order.id, "progress", {"n": n}) for n in range(4)]
    await api.set_order(order.id, status="aborted")
    final = await api.insert_event(order.id, "status", {"status": "aborted"})
    # Finished: the plain (buffering) ASGI transport gets the whole stream, which ends by itself.
    r = await api.client.get(f"/api/orders/{order.id}/events",
                             headers={**auth(c.api_key), "Last-Event-ID": str(rows[1].id)})
    ids = [int(line[4:]) for line in r.text.splitlines() if line.startswith("id: ")]
    assert ids == [rows[2].id, rows[3].id, final.id]
    assert r.text.startswith("retry: ")


async def test_events_of_other_orders_do_not_leak_into_a_stream(api):
    c = await api.customer(plan="nebula")  # the live dashboard is a Nebula/Quasar feature
    mine = await api.insert_order(c.customer_id, status="running")
    other = await api.insert_order(c.customer_id, status="running")
    async with api.streaming_client() as client:
        async with client.stream("GET", f"/api/orders/{mine.id}/events", headers=auth(c.api_key)) as r:
            messages = read_sse(r)
            await api.insert_event(other.id, "progress", {"n": "other"})
            row = await api.insert_event(mine.id, "progress", {"n": "mine"})
            msg = await asyncio.wait_for(anext(messages), 10)
            while msg.comment:
                msg = await asyncio.wait_for(anext(messages), 10)
            assert msg.id == row.id and msg.data["n"] == "mine"
