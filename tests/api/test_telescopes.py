"""Telescopes are data: the seeded one, the admin API with its refusals, the public listing."""

from __future__ import annotations

from datetime import datetime

import pytest
import pytest_asyncio

from tests.api.conftest import auth
from tests.api.telescope_network import CHILE, NEW_MEXICO, SPAIN, add_sites, network_api

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def net(engine, database_url, temporal_env, task_queue, tmp_path):
    async with network_api(engine, database_url, temporal_env, task_queue, tmp_path) as h:
        yield h


async def test_an_empty_database_is_seeded_with_todays_single_telescope(net):
    r = await net.client.get("/api/telescopes")
    assert r.status_code == 200, r.text
    [main] = r.json()["items"]
    s = net.settings
    assert main["slug"] == s.orders.telescope == "main" and main["status"] == "online"
    assert (main["site"]["name"], main["site"]["latitude"], main["site"]["longitude"]) == \
        (s.site.name, s.site.latitude, s.site.longitude)
    assert main["filters"] == s.api.filter_list() and main["price_multiplier"] == "1.0000"
    # 6248 px × 3.76 µm behind 530 mm: 2·atan(23.49 mm / 1060 mm) = 2.54°; 206.265 × 3.76 / 530 = 1.463″/px
    fov = main["field_of_view"]
    assert fov["width_deg"] == pytest.approx(2.539, abs=1e-3) and fov["scale_arcsec_px"] == pytest.approx(1.4633, abs=1e-4)
    tonight = main["tonight"]
    start, end = datetime.fromisoformat(tonight["start"]), datetime.fromisoformat(tonight["end"])
    assert start < end and (end - start).total_seconds() < 16 * 3600


async def test_admin_adds_changes_and_disables_telescopes(net):
    admin = await net.customer(role="admin")
    await add_sites(net, admin.api_key, SPAIN, CHILE)
    listed = {t["slug"]: t for t in (await net.client.get("/api/telescopes")).json()["items"]}
    assert set(listed) == {"main", "spain", "chile"}
    assert listed["chile"]["site"]["latitude"] == -30.53 and listed["chile"]["price_multiplier"] == "1.2500"
    assert listed["spain"]["filters"] == ["L", "R", "G", "B", "Ha", "OIII", "SII"]

    r = await net.client.patch("/api/admin/telescopes/spain", json={"price_multiplier": "0.9", "host_share_percent": 30},
                               headers=auth(admin.api_key))
    assert r.status_code == 200, r.text
    assert (r.json()["price_multiplier"], r.json()["host_share_percent"], r.json()["site"]["name"]) == \
        ("0.9000", 30, SPAIN["site_name"])
    assert r.json()["filter_slots"][4] == {"name": "Ha", "index": 4}

    r = await net.client.post("/api/admin/telescopes/spain/disable", headers=auth(admin.api_key))
    assert r.status_code == 200 and r.json()["status"] == "maintenance"
    r = await net.client.post("/api/admin/telescopes/chile/disable?status=retired", headers=auth(admin.api_key))
    assert r.status_code == 200 and r.json()["status"] == "retired"
    public = {t["slug"]: t["status"] for t in (await net.client.get("/api/telescopes")).json()["items"]}
    assert public == {"main": "online", "spain": "maintenance"}  # retired ones leave the public list
    every = (await net.client.get("/api/admin/telescopes", headers=auth(admin.api_key))).json()
    assert {t["slug"] for t in every} == {"main", "spain", "chile"}


async def test_one_telescope_shows_its_optics_field_of_view_and_scale_and_the_singular_route_is_gone(net):
    admin = await net.customer(role="admin")
    await add_sites(net, admin.api_key, {**SPAIN, "slug": "wide", "focal_length_mm": 1000.0, "sensor_width_px": 4000,
                                         "sensor_height_px": 3000, "pixel_size_um": 5.0})
    r = await net.client.get("/api/telescopes/wide")  # public, like the listing
    assert r.status_code == 200, r.text
    t = r.json()
    assert t == next(i for i in (await net.client.get("/api/telescopes")).json()["items"] if i["slug"] == "wide")
    # 5 µm at 1000 mm = 1.0313″/px; 20 mm × 15 mm → 1.1459° × 0.8594°.
    assert t["focal_length_mm"] == 1000.0
    assert t["field_of_view"]["scale_arcsec_px"] == pytest.approx(1.0313, abs=1e-4)
    assert t["field_of_view"]["width_deg"] == pytest.approx(1.1459, abs=1e-4)
    assert t["field_of_view"]["height_deg"] == pytest.approx(0.8594, abs=1e-4)
    r = await net.client.get("/api/telescopes/nowhere")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_telescope"
    assert (await net.client.get("/api/telescope", headers=auth(admin.api_key))).status_code == 404


@pytest.mark.parametrize("change, field", [
    ({"host_share_percent": 101}, "host_share_percent"),
    ({"host_share_percent": -1}, "host_share_percent"),
    ({"price_multiplier": "0"}, "price_multiplier"),
    ({"price_multiplier": "1.23456"}, "price_multiplier"),
    ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
    ({"latitude": 91}, "latitude"),
    ({"slug": "Not A Slug"}, "slug"),
    ({"filters": [{"name": "L", "index": 0}, {"name": "l", "index": 1}]}, "filters"),
    ({"filters": [{"name": "L", "index": 0}, {"name": "R", "index": 0}]}, "filters"),
])
async def test_bad_telescope_values_are_422_naming_the_field(net, change, field):
    admin = await net.customer(role="admin")
    r = await net.client.post("/api/admin/telescopes", json={**NEW_MEXICO, **change}, headers=auth(admin.api_key))
    assert r.status_code == 422, r.text
    assert any(k.startswith(field) for k in r.json()["error"]["fields"]), r.json()
    assert [t["slug"] for t in (await net.client.get("/api/telescopes")).json()["items"]] == ["main"]


async def test_telescope_refusals_404_409_422(net):
    admin = await net.customer(role="admin")
    await add_sites(net, admin.api_key, NEW_MEXICO)
    r = await net.client.post("/api/admin/telescopes", json=NEW_MEXICO, headers=auth(admin.api_key))
    assert r.status_code == 409 and r.json()["error"]["code"] == "telescope_exists"
    r = await net.client.patch("/api/admin/telescopes/nowhere", json={"name": "x"}, headers=auth(admin.api_key))
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_telescope"
    r = await net.client.patch("/api/admin/telescopes/new-mexico", json={"host_share_percent": 150},
                               headers=auth(admin.api_key))
    assert r.status_code == 422 and "host_share_percent" in r.json()["error"]["fields"]
    r = await net.client.patch("/api/admin/telescopes/new-mexico", json={"host_customer_id": 10**9},
                               headers=auth(admin.api_key))
    assert r.status_code == 422 and "host_customer_id" in r.json()["error"]["fields"]
    r = await net.client.post("/api/admin/telescopes", json={**NEW_MEXICO, "slug": "any"}, headers=auth(admin.api_key))
    assert r.status_code == 422
    customer = await net.customer()
    r = await net.client.post("/api/admin/telescopes", json={**NEW_MEXICO, "slug": "mine"}, headers=auth(customer.api_key))
    assert r.status_code == 403


async def test_last_seen_is_stamped_when_the_monitor_hears_from_voyager(net):
    from activities.observatory_status import ObservatoryStatusRecorder

    admin = await net.customer(role="admin")

    async def last_seen():
        rows = (await net.client.get("/api/admin/telescopes", headers=auth(admin.api_key))).json()
        return {t["slug"]: t["last_seen_at"] for t in rows}["main"]

    assert await last_seen() is None
    recorder = ObservatoryStatusRecorder(net.sessionmaker, "main")
    assert await recorder.record(False, "connection refused")
    assert await last_seen() is None  # a failed poll saw nothing
    assert await recorder.record(True, "answered the run-list poll")
    assert await last_seen() is not None
