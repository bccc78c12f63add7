"""Every bad input is a 4xx with the one error body; nothing is created or held."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import func, select

from models.db import Order
from tests.api.conftest import auth

GOOD = {"target_name": "M42", "ra_j2000": 5.588, "dec_j2000": -5.39,
        "shots": [{"filter": "L", "exposure": 60, "quantity": 10}]}


def with_(**changes):
    body = {**GOOD, "shots": [dict(s) for s in GOOD["shots"]]}
    for k, v in changes.items():
        if k.startswith("shot_"):
            body["shots"][0][k[5:]] = v
        elif v is ...:
            body.pop(k)
        else:
            body[k] = v
    return body


PAST = (datetime.now(timezone.utc) - timedelta(days=3)).isoformat()
SOON = (datetime.now(timezone.utc) + timedelta(days=2)).isoformat()
LATER = (datetime.now(timezone.utc) + timedelta(days=5)).isoformat()

CASES = [
    ("ra_above_24", with_(ra_j2000=24.0), "ra_j2000"),
    ("ra_negative", with_(ra_j2000=-0.1), "ra_j2000"),
    ("dec_above_90", with_(dec_j2000=90.5), "dec_j2000"),
    ("dec_below_-90", with_(dec_j2000=-91), "dec_j2000"),
    ("exposure_zero", with_(shot_exposure=0), "shots.0.exposure"),
    ("exposure_negative", with_(shot_exposure=-5), "shots.0.exposure"),
    ("exposure_over_3600", with_(shot_exposure=3601), "shots.0.exposure"),
    ("quantity_zero", with_(shot_quantity=0), "shots.0.quantity"),
    ("quantity_over_1000", with_(shot_quantity=1001), "shots.0.quantity"),
    ("unknown_filter", with_(shot_filter="Xray"), "shots.0.filter"),
    ("empty_shots", with_(shots=[]), "shots"),
    ("priority_5", with_(priority=5), "priority"),
    ("priority_negative", with_(priority=-1), "priority"),
    ("hfd_below_1.5", with_(c_hfd_mean_limit=1.0), "c_hfd_mean_limit"),
    ("hfd_above_4", with_(c_hfd_mean_limit=4.5), "c_hfd_mean_limit"),
    ("window_inverted", with_(date_start=LATER, date_end=SOON), "date_end"),
    ("window_in_the_past", with_(date_end=PAST), "date_end"),
    ("unknown_catalogue_name", with_(target_name="NGC 99999", ra_j2000=..., dec_j2000=...), "target_name"),
    ("ra_without_dec", with_(dec_j2000=...), "dec_j2000"),
    ("unknown_field", with_(colour="red"), "colour"),
    ("nan_exposure_as_string", with_(shot_exposure="NaN"), "shots.0.exposure"),
    ("wrong_type", with_(shots="L 10x60"), "shots"),
    ("missing_target_name", with_(target_name=...), "target_name"),
]


@pytest.mark.parametrize(("case", "body", "field"), CASES, ids=[c[0] for c in CASES])
async def test_bad_order_is_422_with_the_field_named(api, case, body, field):
    c = await api.customer(credits=100)
    r = await api.client.post("/api/orders", json=body, headers=auth(c.api_key))
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert set(r.json()) == {"error"} and set(err) == {"code", "message", "fields"}
    assert field in err["fields"], err
    async with api.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(Order).where(Order.customer_id == c.customer_id)) == 0
    assert (await api.ledger.balances(c.customer_id)).held == 0


async def test_unknown_plan_in_estimate_is_422(api):
    c = await api.customer()
    r = await api.client.post("/api/pricing/estimate", headers=auth(c.api_key), json={
        "subscription_plan": "supernova", "target": {"shots": [{"filter": "L", "exposure": 1, "quantity": 1}]}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_plan"


async def test_malformed_json_is_400(api):
    c = await api.customer()
    r = await api.client.post("/api/orders", content=b'{"target_name": "M42", "shots": [', headers={
        **auth(c.api_key), "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"


async def test_wrong_content_type_is_415(api):
    c = await api.customer()
    r = await api.client.post("/api/orders", content=b"target_name=M42", headers={
        **auth(c.api_key), "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    r = await api.client.post("/api/orders", content=b'{"target_name": "M42"}', headers=auth(c.api_key))
    assert r.status_code == 415  # no content type at all


async def test_oversized_body_is_413_declared_or_streamed(make_api):
    async with make_api(api={"max_body_bytes": 2048}) as h:
        c = await h.customer()
        big = {**GOOD, "target_name": "x" * 5000}
        r = await h.client.post("/api/orders", json=big, headers=auth(c.api_key))
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

        async def chunks():
            for _ in range(10):
                yield b" " * 500

        r = await h.client.post("/api/orders", content=chunks(), headers={
            **auth(c.api_key), "Content-Type": "application/json"})
        assert r.status_code == 413


async def test_unknown_paths_methods_and_ids_use_the_error_body(api):
    c = await api.customer()
    r = await api.client.get("/api/nothing-here", headers=auth(c.api_key))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await api.client.delete("/api/orders", headers=auth(c.api_key))
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    for path in ["/api/orders/abc", "/api/orders/0", "/api/orders/99999999999999999999", "/api/images/x.jpg"]:
        r = await api.client.get(path, headers=auth(c.api_key))
        assert r.status_code == 422, path
        assert r.json()["error"]["code"] == "validation_error"
    r = await api.client.get("/api/orders/2147483647", headers=auth(c.api_key))
    assert r.status_code == 404
    r = await api.client.get("/api/orders", params={"status": "sleeping"}, headers=auth(c.api_key))
    assert r.status_code == 422 and "query.status" in r.json()["error"]["fields"]
    r = await api.client.post("/api/orders", json=GOOD, headers={**auth(c.api_key), "Idempotency-Key": "k" * 300})
    assert r.status_code == 422 and "header.idempotency-key" in r.json()["error"]["fields"]
