"""What one ``POST /api/orders`` asks of PostgreSQL: one pool checkout for the whole request, two
statements and no BEGIN — the key's lookup and rate-limit count with what the order reads of the
caller's rows (api/services/order_context.py), then the order, its shot lines and its workflow id
(api/services/order_insert.py) — and the rate-limit count committed on its own, so a request
refused after it (402, 422, 429) is still counted and leaves no order and no credit moved."""

from __future__ import annotations

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlmodel import func, select

from api.security import hash_api_key
from bench._sql_count import count_sql
from models.db import Order, RateLimitCounter
from tests.api.conftest import auth

pytestmark = pytest.mark.asyncio

M42_BODY = {"target_name": "M42", "shots": [{"filter": "L", "exposure": 60, "quantity": 10}]}
#: Mid-window epoch seconds for the shared per-key limiter: no window boundary inside a test.
FIXED_NOW = 1_900_000_040.0


@pytest_asyncio.fixture
async def harness(make_api, temporal_env):
    """The API with a per-key limit of 5 a minute on a fixed clock; started workflows terminated after."""
    async with make_api(api={"rate_limit_per_minute": 5}) as h:
        h.app.state.resources.rate_limiter.clock = lambda: FIXED_NOW
        yield h
        ids = {c.customer_id for c in h.customers}
        async with h.sessionmaker() as s:
            started = (await s.exec(select(Order.workflow_id).where(
                Order.customer_id.in_(ids), Order.workflow_id.is_not(None)))).all()  # type: ignore[attr-defined]
        for workflow_id in started:
            try:
                await temporal_env.client.get_workflow_handle(workflow_id).terminate("test teardown")
            except Exception:  # noqa: BLE001 - already closed
                pass


async def _hits(h, api_key: str) -> int:
    async with h.engine.connect() as conn:
        return (await conn.execute(sa.select(RateLimitCounter.hits).where(
            RateLimitCounter.key == f"key:{hash_api_key(api_key)}"))).scalar_one_or_none() or 0


async def _orders(h, customer_id: int) -> int:
    async with h.sessionmaker() as s:
        return await s.scalar(select(func.count()).select_from(Order).where(Order.customer_id == customer_id))


async def test_a_new_order_takes_one_pool_checkout_and_two_statements(harness):
    h = harness
    c = await h.customer(credits=20)
    warm = await h.client.post("/api/orders", json=M42_BODY, headers=auth(c.api_key))  # this window's purge
    assert warm.status_code == 201, warm.text
    pool = h.engine.sync_engine.pool
    held_before = pool.checkedout()
    with count_sql(h.engine) as counted:
        r = await h.client.post("/api/orders", json=M42_BODY, headers=auth(c.api_key))
    assert r.status_code == 201, r.text
    assert r.json()["workflow_id"] == f"order-{r.json()['id']}"
    # key lookup + count + plan, balances, telescope queues and fingerprint; the order, its shot
    # lines and its workflow id. The telescope rows are this process's since the warm-up.
    assert (counted.checkouts, counted.transactions, counted.statements) == (1, 0, 2)
    assert pool.checkedout() == held_before  # the request's connection went back to the pool
    got = await h.client.get(f"/api/orders/{r.json()['id']}", headers=auth(c.api_key))
    assert got.json()["workflow_id"] == r.json()["workflow_id"] and got.json()["status"] == "pending"


async def test_a_refused_order_is_counted_against_the_key_and_leaves_nothing(harness):
    h = harness
    c = await h.customer(credits=0)
    r = await h.client.post("/api/orders", json=M42_BODY, headers=auth(c.api_key))
    assert r.status_code == 402 and r.json()["error"]["code"] == "insufficient_credits"
    r = await h.client.post("/api/orders", json={**M42_BODY, "target_name": "Nowhere 1"}, headers=auth(c.api_key))
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_target"
    assert await _hits(h, c.api_key) == 2
    assert await _orders(h, c.customer_id) == 0
    balances = await h.ledger.balances(c.customer_id)
    assert (balances.available, balances.held) == (0, 0)


async def test_past_the_key_limit_post_orders_answers_429_and_creates_nothing(harness):
    h = harness
    c = await h.customer(credits=50)
    codes = [(await h.client.post("/api/orders", json=M42_BODY, headers=auth(c.api_key))).status_code
             for _ in range(6)]
    assert codes == [201] * 5 + [429]
    assert await _orders(h, c.customer_id) == 5
    assert await _hits(h, c.api_key) == 6
