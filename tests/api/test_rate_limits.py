"""Rate limits: per client IP before the key lookup (no database query once over), per key shared
by every API process (PostgreSQL), concurrent event streams per key; 429 with ``Retry-After``."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import httpx
from sqlalchemy import event

from api.rate_limits import SharedRateLimiter
from api.security import hash_api_key
from tests.api.conftest import auth
from tests.api.sse import read_sse

#: Mid-window epoch seconds: no window boundary can fall inside a test.
FIXED_NOW = 1_900_000_040.0


@contextlib.contextmanager
def counting_queries(engine):
    """Counts every statement the engine sends to PostgreSQL."""
    count = {"n": 0}

    def before(*_args, **_kw):
        count["n"] += 1

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        yield count
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)


def client_from(app, ip: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 40000)), base_url="http://t")


async def test_invalid_key_flood_costs_no_query_past_the_per_ip_limit(make_api):
    async with make_api(api={"auth_failures_per_minute": 5}) as h:
        good = await h.customer()
        bad = auth("sk_" + uuid.uuid4().hex * 2)
        async with client_from(h.app, "203.0.113.7") as flood:
            with counting_queries(h.engine) as queries:
                first = [(await flood.get("/api/credits", headers=bad)).status_code for _ in range(5)]
                spent = queries["n"]
                rest = [await flood.get("/api/credits", headers=bad) for _ in range(50)]
                assert queries["n"] == spent, "refused invalid keys must not reach the database"
            assert first == [401] * 5 and spent >= 5
            assert {r.status_code for r in rest} == {429}
            assert all(int(r.headers["retry-after"]) >= 1 for r in rest)
            assert rest[0].json()["error"]["code"] == "rate_limited"
            # The flooding address is refused even with a good key; other addresses are not.
            assert (await flood.get("/api/credits", headers=auth(good.api_key))).status_code == 429
        async with client_from(h.app, "198.51.100.9") as other:
            assert (await other.get("/api/credits", headers=auth(good.api_key))).status_code == 200


async def test_per_ip_limit_applies_before_the_key_lookup(make_api):
    async with make_api(api={"ip_rate_limit_per_minute": 3}) as h:
        c = await h.customer()
        async with client_from(h.app, "192.0.2.44") as client:
            codes = [(await client.get("/api/credits", headers=auth(c.api_key))).status_code for _ in range(3)]
            with counting_queries(h.engine) as queries:
                r = await client.get("/api/credits", headers=auth(c.api_key))
            assert codes == [200, 200, 200] and r.status_code == 429 and queries["n"] == 0
            assert int(r.headers["retry-after"]) >= 1


async def test_per_key_limit_is_shared_by_every_api_process(make_api):
    # Two app instances = two API processes: separate memory, one database.
    async with make_api(api={"rate_limit_per_minute": 4}) as a, make_api(api={"rate_limit_per_minute": 4}) as b:
        for h in (a, b):
            h.app.state.resources.rate_limiter.clock = lambda: FIXED_NOW
        c = await a.customer()
        codes = []
        for h in (a, b, a, b, a, b):
            codes.append((await h.client.get("/api/credits", headers=auth(c.api_key))).status_code)
        assert codes == [200, 200, 200, 200, 429, 429]
        r = await b.client.get("/api/credits", headers=auth(c.api_key))
        assert r.headers["retry-after"] == "40"  # the 60 s window started 20 s ago


async def test_shared_limiter_counts_per_window_and_tells_when_it_ends(engine):
    now = [FIXED_NOW + 600]
    limiter = SharedRateLimiter(engine, limit=2, window_seconds=60, clock=lambda: now[0])
    key = f"test:{uuid.uuid4()}"
    assert [await limiter.hit(key) for _ in range(3)] == [None, None, 40]
    now[0] += 39.5
    assert await limiter.hit(key) == 1
    now[0] += 1  # the next window
    assert await limiter.hit(key) is None
    assert await limiter.hit(f"test:{uuid.uuid4()}") is None  # keys do not share a count


async def test_concurrent_event_streams_are_capped_per_key(make_api):
    async with make_api(api={"sse_streams_per_key": 1}) as h:
        c = await h.customer(plan="nebula")
        order = await h.insert_order(c.customer_id, status="running")
        url = f"/api/orders/{order.id}/events"
        async with h.streaming_client() as client:
            async with client.stream("GET", url, headers=auth(c.api_key)) as first:
                assert first.status_code == 200
                await asyncio.wait_for(anext(read_sse(first)), 10)
                second = await h.client.get(url, headers=auth(c.api_key))
                assert second.status_code == 429 and second.json()["error"]["code"] == "too_many_streams"
                assert second.headers["retry-after"] == "5"
                other = await h.customer(plan="quasar")
                mine = await h.insert_order(other.customer_id, status="completed")
                # Another key has its own allowance (a finished order's stream ends by itself).
                assert (await h.client.get(f"/api/orders/{mine.id}/events",
                                           headers=auth(other.api_key))).status_code == 200
        streams = h.app.state.resources.sse_streams
        for _ in range(100):  # the closed stream gives its slot back
            if streams.open_count(hash_api_key(c.api_key)) == 0:
                break
            await asyncio.sleep(0.05)
        assert streams.open_count(hash_api_key(c.api_key)) == 0
        await h.set_order(order.id, status="completed")
        r = await h.client.get(url, headers=auth(c.api_key))
        assert r.status_code == 200
