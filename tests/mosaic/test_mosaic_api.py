"""``POST /api/orders`` with a ``mosaic``: the refusals (each a 4xx with the one error body, no
order written, no credit moved), the stored layout and panel lines.
No worker runs here (tests/mosaic/test_mosaic_e2e.py runs a mosaic for real)."""

from __future__ import annotations

import pytest
import pytest_asyncio
from sqlmodel import func, select

from core.optics import Optics
from models.db import Order, OrderPanel, OrderShot
from tests.api.conftest import auth

#: docs/pricing.md §3 example 3 as a 2×2 mosaic of IC1396.
SEED = {"target_name": "IC1396", "priority": 4, "c_moon_down": True, "c_hfd_mean_limit": 2.0,
        "shots": [{"filter": f, "exposure": 600, "quantity": 40} for f in ("Ha", "OIII", "SII")],
        "mosaic": {"columns": 2, "rows": 2, "overlap_percent": 10, "rotation_deg": 0}}


@pytest_asyncio.fixture
async def mosaic_api(api, temporal_env):
    yield api
    async with api.sessionmaker() as s:
        ids = (await s.exec(select(Order.workflow_id).where(
            Order.customer_id.in_([c.customer_id for c in api.customers]), Order.workflow_id.is_not(None)))).all()
    for workflow_id in ids:
        try:
            await temporal_env.client.get_workflow_handle(workflow_id).terminate("test teardown")
        except Exception:  # noqa: BLE001 - already closed
            pass


def seed(**mosaic) -> dict:
    return {**SEED, "shots": [dict(s) for s in SEED["shots"]], "mosaic": {**SEED["mosaic"], **mosaic}}


async def _orders_of(api, customer_id: int) -> int:
    async with api.sessionmaker() as s:
        return await s.scalar(select(func.count()).select_from(Order).where(Order.customer_id == customer_id))


def _one_error_body(r) -> dict:
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}, body
    return body["error"]


@pytest.mark.parametrize("case, plan, body, status, code, field, says", [
    ("6x6 panels", "quasar", seed(columns=6, rows=6), 422, "validation_error", "mosaic.columns", "5"),
    ("overlap 80 %", "quasar", seed(overlap_percent=80), 422, "validation_error", "mosaic.overlap_percent", "50"),
    ("indivisible quantity", "quasar",
     {**seed(columns=3, rows=2), "shots": [{"filter": "Ha", "exposure": 600, "quantity": 40}]},
     422, "validation_error", "shots.0.quantity", "nearest valid quantities: 36 or 42"),
    ("mosaic on Nebula", "nebula",
     {**seed(), "priority": 2, "c_hfd_mean_limit": 0}, 403, "plan_violation", "mosaic", "Quasar"),
    ("mosaic on Stardust", "stardust",
     {**seed(), "priority": 1, "c_moon_down": False, "c_hfd_mean_limit": 0}, 403, "plan_violation", "mosaic", "Quasar"),
])
async def test_bad_mosaics_are_4xx_with_the_one_error_body_and_move_no_credit(
        mosaic_api, case, plan, body, status, code, field, says):
    api = mosaic_api
    c = await api.customer(plan=plan, credits=500)
    before = await api.ledger.balances(c.customer_id)
    key = "m-" + case.replace(" ", "-")
    r = await api.client.post("/api/orders", json=body, headers={**auth(c.api_key), "Idempotency-Key": key})
    assert r.status_code == status, r.text
    error = _one_error_body(r)
    assert error["code"] == code and says in error["fields"].get(field, ""), error
    assert await _orders_of(api, c.customer_id) == 0
    assert await api.ledger.balances(c.customer_id) == before


async def test_a_quasar_mosaic_stores_its_layout_and_splits_the_shot_list_per_panel(mosaic_api):
    api = mosaic_api
    c = await api.customer(plan="quasar", credits=200)
    r = await api.client.post("/api/orders", json=seed(), headers=auth(c.api_key))
    assert r.status_code == 201, r.text
    order = r.json()
    # The whole mosaic is priced as the seed's example: 120 × 630 s = 21 h × 3 × 2 × 1.5 = 189.
    assert order["cost"] == 189
    assert order["shots"] == [{"filter": f, "exposure": 600.0, "quantity": 40, "bin": 1, "gain": None,
                               "offset": None} for f in ("Ha", "OIII", "SII")]
    fov = Optics.from_settings(api.settings.optics).field_of_view
    assert order["mosaic"] == {"columns": 2, "rows": 2, "overlap_percent": 10.0, "rotation_deg": 0.0,
                               "field_of_view": {"width_deg": fov.width_deg, "height_deg": fov.height_deg}}
    assert order["progress"]["shots_total"] == 120
    assert [(p["name"], p["total"]) for p in order["progress"]["per_panel"]] == [
        ("IC1396 P1-1", 30), ("IC1396 P2-1", 30), ("IC1396 P1-2", 30), ("IC1396 P2-2", 30)]
    async with api.sessionmaker() as s:
        panels = (await s.exec(select(OrderPanel).where(OrderPanel.order_id == order["id"])
                               .order_by(OrderPanel.panel_index))).all()
        lines = (await s.exec(select(OrderShot).where(OrderShot.order_id == order["id"]))).all()
    assert [(p.column, p.row) for p in panels] == [(1, 1), (2, 1), (1, 2), (2, 2)]
    assert sorted((line.panel_index, line.filter, line.quantity) for line in lines) == sorted(
        (i, f, 10) for i in range(4) for f in ("Ha", "OIII", "SII"))


async def test_the_estimate_prices_a_mosaic_as_its_shot_list_and_applies_the_same_refusals(mosaic_api):
    api = mosaic_api
    c = await api.customer(plan="quasar", credits=150)
    target = {k: v for k, v in SEED.items()}
    r = await api.client.post("/api/pricing/estimate", json={"target": target}, headers=auth(c.api_key))
    assert r.status_code == 200, r.text
    e = r.json()["estimation"]
    assert (e["final_cost"], e["can_afford"], e["remaining_after"]) == (189, False, -39)
    r = await api.client.post("/api/pricing/estimate", json={"target": target, "subscription_plan": "nebula"},
                              headers=auth(c.api_key))
    assert r.status_code == 403 and _one_error_body(r)["fields"]["mosaic"] == "mosaics need Quasar"
    odd = {**target, "mosaic": {"columns": 3, "rows": 3}}
    r = await api.client.post("/api/pricing/estimate", json={"target": odd}, headers=auth(c.api_key))
    assert r.status_code == 422
    assert _one_error_body(r)["fields"]["target.shots.0.quantity"].endswith("nearest valid quantities: 36 or 45")
