"""``POST /api/orders`` and friends against real PostgreSQL and the real Temporal dev server.

No worker runs here: a created order's workflow is started and waits on the test's task queue
(checked through Temporal's describe); tests/api/test_order_e2e.py runs orders for real.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
import pytest_asyncio
from sqlmodel import func, select
from temporalio.client import WorkflowExecutionStatus

from core.temporal import SA_CUSTOMER_ID, SA_ORDER_STATUS, SA_PLAN, SA_TARGET_NAME, SA_TELESCOPE
from models.db import Order, OrderShot
from tests.api.conftest import auth

M42_BODY = {"target_name": "M42", "shots": [{"filter": "L", "exposure": 60, "quantity": 10}]}


@pytest_asyncio.fixture
async def orders_api(api, temporal_env):
    """The API harness; every order workflow it started is terminated afterwards."""
    yield api
    async with api.sessionmaker() as s:
        ids = (await s.exec(select(Order.workflow_id).where(Order.workflow_id.is_not(None)))).all()
    for workflow_id in ids:
        try:
            await temporal_env.client.get_workflow_handle(workflow_id).terminate("test teardown")
        except Exception:  # noqa: BLE001 - already closed or from another test
            pass


async def count_orders(api, customer_id: int) -> int:
    async with api.sessionmaker() as s:
        return await s.scalar(select(func.count()).select_from(Order).where(Order.customer_id == customer_id))


async def test_create_order_resolves_the_catalogue_and_starts_the_workflow(orders_api, temporal_env):
    api = orders_api
    c = await api.customer(plan="nebula", credits=10)
    body = {"target_name": "M42", "priority": 2, "c_moon_down": True,
            "shots": [{"filter": "ha", "exposure": 300, "quantity": 10, "bin": 2, "gain": 100, "offset": 20}]}
    r = await api.client.post("/api/orders", json=body, headers=auth(c.api_key))
    assert r.status_code == 201, r.text
    order = r.json()
    # 10 × (300 + 30) s = 11/12 h × 1.2 (priority 2) × 2 (moon down) = 2.2 → 3 credits.
    assert order["cost"] == 3 and order["status"] == "pending" and order["plan"] == "nebula"
    assert order["workflow_id"] == f"order-{order['id']}"
    assert order["workflow_url"].endswith(f"/namespaces/default/workflows/order-{order['id']}")
    assert abs(order["ra_j2000"] - 5.5879) < 1e-3 and abs(order["dec_j2000"] + 5.3897) < 1e-3
    assert order["shots"] == [{"filter": "Ha", "exposure": 300.0, "quantity": 10, "bin": 2, "gain": 100,
                               "offset": 20}]
    assert order["progress"]["shots_total"] == 10 and order["progress"]["requested_integration_seconds"] == 3000
    assert order["c_hfd_mean_limit"] == 4.0  # Nebula's standard HFD guarantee, sent to Voyager, not charged
    desc = await temporal_env.client.get_workflow_handle(order["workflow_id"]).describe()
    assert desc.status == WorkflowExecutionStatus.RUNNING and desc.task_queue == api.task_queue
    sa = desc.typed_search_attributes
    assert sa.get(SA_CUSTOMER_ID) == str(c.customer_id) and sa.get(SA_PLAN) == "nebula"
    assert sa.get(SA_TARGET_NAME) == "M42" and sa.get(SA_ORDER_STATUS) == "pending"
    assert sa.get(SA_TELESCOPE) == order["telescope"] is not None
    got = await api.client.get(f"/api/orders/{order['id']}", headers=auth(c.api_key))
    assert got.status_code == 200 and got.json()["id"] == order["id"]
    # The API checked and priced; the workflow holds (no worker here: nothing held yet).
    assert (await api.ledger.balances(c.customer_id)).held == 0


async def test_same_idempotency_key_and_body_returns_the_same_order(orders_api):
    api = orders_api
    c = await api.customer(credits=20)
    headers = {**auth(c.api_key), "Idempotency-Key": f"order-{uuid.uuid4()}"}
    first = await api.client.post("/api/orders", json=M42_BODY, headers=headers)
    again = await api.client.post("/api/orders", json=M42_BODY, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["workflow_id"] == first.json()["workflow_id"]
    other = await api.client.post("/api/orders", json={**M42_BODY, "priority": 1}, headers=headers)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_mismatch"
    assert "Idempotency-Key" in other.json()["error"]["fields"]
    # The key is per customer: another customer may use the same one.
    d = await api.customer(credits=20)
    theirs = await api.client.post("/api/orders", json=M42_BODY,
                                   headers={**auth(d.api_key), "Idempotency-Key": headers["Idempotency-Key"]})
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
    assert await count_orders(api, c.customer_id) == 1
    # Without a key every request is a new order.
    for _ in range(2):
        assert (await api.client.post("/api/orders", json=M42_BODY, headers=auth(c.api_key))).status_code == 201
    assert await count_orders(api, c.customer_id) == 3


async def test_concurrent_requests_with_one_key_create_one_order(orders_api):
    api = orders_api
    c = await api.customer(credits=20)
    headers = {**auth(c.api_key), "Idempotency-Key": "burst-1"}
    answers = await asyncio.gather(*[api.client.post("/api/orders", json=M42_BODY, headers=headers)
                                     for _ in range(6)])
    codes = sorted(r.status_code for r in answers)
    assert codes.count(201) == 1 and codes.count(200) == 5, codes
    assert len({r.json()["id"] for r in answers}) == 1
    assert await count_orders(api, c.customer_id) == 1


@pytest.mark.parametrize(
    ("plan", "changes", "fields"),
    [
        (None, {"priority": 2}, {"priority"}),
        (None, {"c_moon_down": True, "repeat": 2}, {"c_moon_down", "repeat"}),
        ("nebula", {"priority": 3, "c_hfd_mean_limit": 2.5}, {"priority", "c_hfd_mean_limit"}),
        ("nebula", {"c_ha_start": -2, "c_ha_end": 2}, {"c_ha_start", "c_ha_end"}),
    ],
)
async def test_plan_violations_are_403_with_a_reason_per_field(orders_api, plan, changes, fields):
    api = orders_api
    c = await api.customer(plan=plan, credits=100)
    r = await api.client.post("/api/orders", json={**M42_BODY, **changes}, headers=auth(c.api_key))
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["code"] == "plan_violation" and set(err["fields"]) == fields
    assert all("needs" in reason for reason in err["fields"].values())
    assert await count_orders(api, c.customer_id) == 0


async def test_quasar_may_use_everything(orders_api):
    api = orders_api
    c = await api.customer(plan="quasar", credits=100)
    r = await api.client.post("/api/orders", headers=auth(c.api_key), json={
        **M42_BODY, "priority": 4, "c_hfd_mean_limit": 2.0, "repeat": 2, "c_ha_start": -3, "c_ha_end": 3})
    assert r.status_code == 201, r.text
    # 2 × 10 × 90 s = 0.5 h × 3 (priority 4) × 2 (moon down, always on) × 1.5 (HFD) = 4.5 → 5.
    assert r.json()["cost"] == 5 and r.json()["c_moon_down"] is True and r.json()["c_hfd_mean_limit"] == 2.0


async def test_never_observable_target_is_422_before_anything_is_held(orders_api):
    api = orders_api
    c = await api.customer(credits=100)
    # Dec −80° never rises at the OHP (latitude 43.9° N).
    r = await api.client.post("/api/orders", headers=auth(c.api_key), json={
        **M42_BODY, "target_name": "Southern", "ra_j2000": 6.0, "dec_j2000": -80.0})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "target_never_observable" and "c_alt_min" in err["fields"]
    # M42 culminates near 40° at the OHP: above 60° it never gets.
    r = await api.client.post("/api/orders", json={**M42_BODY, "c_alt_min": 60}, headers=auth(c.api_key))
    assert r.status_code == 422 and "at best" in r.json()["error"]["message"]
    assert await count_orders(api, c.customer_id) == 0
    assert (await api.ledger.balances(c.customer_id)).available == 100


async def test_insufficient_credits_is_402_and_creates_nothing(orders_api):
    api = orders_api
    c = await api.customer(credits=1)
    body = {**M42_BODY, "shots": [{"filter": "L", "exposure": 600, "quantity": 20}]}  # 20 × 630 s → 4 credits
    r = await api.client.post("/api/orders", json=body, headers=auth(c.api_key))
    assert r.status_code == 402
    err = r.json()["error"]
    assert err["code"] == "insufficient_credits" and "short by 3" in err["fields"]["credits"]
    assert await count_orders(api, c.customer_id) == 0


async def test_orders_list_filters_and_paginates(orders_api):
    api = orders_api
    c = await api.customer(credits=50)
    ids = [(await api.client.post("/api/orders", json=M42_BODY, headers=auth(c.api_key))).json()["id"]
           for _ in range(3)]
    done = await api.insert_order(c.customer_id, status="completed")
    r = await api.client.get("/api/orders", params={"limit": 2}, headers=auth(c.api_key))
    page = r.json()
    assert page["total"] == 4 and [o["id"] for o in page["items"]] == [done.id, ids[2]]
    r = await api.client.get("/api/orders", params={"limit": 2, "offset": 2}, headers=auth(c.api_key))
    assert [o["id"] for o in r.json()["items"]] == [ids[1], ids[0]]
    r = await api.client.get("/api/orders", params={"status": "pending"}, headers=auth(c.api_key))
    assert {o["id"] for o in r.json()["items"]} == set(ids)


async def test_abort_of_a_finished_order_is_409(orders_api):
    api = orders_api
    c = await api.customer()
    order = await api.insert_order(c.customer_id, status="completed")
    r = await api.client.post(f"/api/orders/{order.id}/abort", json={"reason": "changed my mind"},
                              headers=auth(c.api_key))
    assert r.status_code == 409 and r.json()["error"]["code"] == "order_not_abortable"
    staff = await api.customer(role="support")
    r = await api.client.post(f"/api/support/orders/{order.id}/abort", json={}, headers=auth(staff.api_key))
    assert r.status_code == 422 and "reason" in r.json()["error"]["fields"]


async def test_temporal_down_answers_503_and_the_key_retries_the_start(make_api, temporal_env):
    """The order is recorded first; with an Idempotency-Key a retry starts its workflow."""
    async with make_api(temporal={"address": "127.0.0.1:1"}) as h:
        h.app.state.resources.temporal._client = None  # as if Temporal had been down at start-up
        c = await h.customer(credits=10)
        headers = {**auth(c.api_key), "Idempotency-Key": "retry-me"}
        r = await h.client.post("/api/orders", json=M42_BODY, headers=headers)
        assert r.status_code == 503 and r.json()["error"]["code"] == "temporal_unavailable"
        async with h.sessionmaker() as s:
            row = (await s.exec(select(Order).where(Order.customer_id == c.customer_id))).one()
        assert row.status == "pending" and row.workflow_id is None
        h.app.state.resources.temporal._client = temporal_env.client  # Temporal is back
        r = await h.client.post("/api/orders", json=M42_BODY, headers=headers)
        assert r.status_code == 200 and r.json()["id"] == row.id and r.json()["workflow_id"] == f"order-{row.id}"
        await temporal_env.client.get_workflow_handle(f"order-{row.id}").terminate("test teardown")


async def test_pending_order_whose_workflow_closed_is_restarted_by_its_idempotency_key(orders_api, temporal_env):
    """E.g. the database was down when the workflow loaded the order: the same request restarts it."""
    api = orders_api
    c = await api.customer(credits=10)
    headers = {**auth(c.api_key), "Idempotency-Key": f"restart-{uuid.uuid4()}"}
    first = await api.client.post("/api/orders", json=M42_BODY, headers=headers)
    assert first.status_code == 201, first.text
    handle = temporal_env.client.get_workflow_handle(first.json()["workflow_id"])
    old_run = (await handle.describe()).run_id
    await handle.terminate("stands in for a workflow that failed before holding anything")

    again = await api.client.post("/api/orders", json=M42_BODY, headers=headers)

    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    desc = await handle.describe()
    assert desc.status == WorkflowExecutionStatus.RUNNING and desc.run_id != old_run
    third = await api.client.post("/api/orders", json=M42_BODY, headers=headers)  # running: found, not restarted
    assert third.status_code == 200 and (await handle.describe()).run_id == desc.run_id


async def test_shot_lines_are_stored_in_order(orders_api):
    api = orders_api
    c = await api.customer(plan="nebula", credits=50)
    shots = [{"filter": f, "exposure": 120, "quantity": 2} for f in ("R", "G", "B")]
    r = await api.client.post("/api/orders", json={**M42_BODY, "shots": shots}, headers=auth(c.api_key))
    async with api.sessionmaker() as s:
        rows = (await s.exec(select(OrderShot).where(OrderShot.order_id == r.json()["id"])
                             .order_by(OrderShot.position))).all()
    assert [(x.filter, x.exposure, x.quantity, x.position) for x in rows] == [
        ("R", 120.0, 2, 0), ("G", 120.0, 2, 1), ("B", 120.0, 2, 2)]


async def test_abort_without_a_worker_answers_503_instead_of_hanging(make_api, temporal_env):
    async with make_api(api={"abort_timeout_seconds": 1.0}) as h:
        c = await h.customer(credits=10)
        order = (await h.client.post("/api/orders", json=M42_BODY, headers=auth(c.api_key))).json()
        try:
            r = await asyncio.wait_for(h.client.post(f"/api/orders/{order['id']}/abort", headers=auth(c.api_key)), 30)
            assert r.status_code == 503 and r.json()["error"]["code"] == "workflow_unresponsive"
        finally:
            await temporal_env.client.get_workflow_handle(order["workflow_id"]).terminate("test teardown")
