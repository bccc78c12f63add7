"""``GET /health/live`` and ``/health/ready``: statuses for anyone, detail for admins; every
telescope's Voyager as last seen by its own observatory monitor, never by a connection of the
probe's own. The database is shared with other tests: other telescopes may be listed too."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import sqlalchemy as sa
from sqlmodel import select

from activities.observatory_status import ObservatoryStatusRecorder
from api.app import create_app
from api.services.health import voyager_summary
from models.db import ObservatoryStatus, Telescope
from tests.api.conftest import api_settings, auth, temporal_address


def _telescope() -> dict:
    return {"orders": {"telescope": f"t-{uuid.uuid4().hex[:10]}"}}


def _row(slug: str, status: str = "online") -> Telescope:
    return Telescope(slug=slug, name=slug, site_name="Somewhere", latitude=-30.2, longitude=-70.8, elevation=1500.0,
                     time_zone="America/Santiago", horizon_alt=10.0, aperture_mm=106.0, focal_length_mm=530.0,
                     sensor_width_px=6248, sensor_height_px=4176, pixel_size_um=3.76,
                     filters=[{"name": "L", "index": 0}], voyager_profile="p.v2y", status=status)


async def test_live_answers_without_any_backend(api):
    r = await api.client.get("/health/live")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_ready_anonymous_gets_statuses_only(make_api):
    async with make_api(**_telescope()) as h:
        r = await h.client.get("/health/ready")
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"status", "checks"} and body["status"] == "ready"
        assert body["checks"]["database"] == "ok" and body["checks"]["temporal"] == "ok"
        assert body["checks"]["voyagers"][h.settings.orders.telescope] == "unknown"
        assert body["checks"]["voyager"] in ("unknown", "down")  # ours has not reported
        customer = await h.customer()
        r = await h.client.get("/health/ready", headers=auth(customer.api_key))
        assert "detail" not in r.json()
        r = await h.client.get("/health/ready", headers=auth("sk_" + "x" * 43))  # a wrong key: still no 401
        assert r.status_code == 200 and "detail" not in r.json()
        assert (await h.client.get("/health")).json() == r.json()


async def test_ready_admin_gets_the_detail(make_api):
    async with make_api(**_telescope()) as h:
        admin = await h.customer(role="admin")
        r = await h.client.get("/health/ready", headers=auth(admin.api_key))
        detail = r.json()["detail"]
        assert "PostgreSQL" in detail["database"]["detail"]
        assert h.settings.temporal.effective_address() in detail["temporal"]["detail"]
        assert "has not reported yet" in r.json()["voyagers_detail"][h.settings.orders.telescope]["detail"]
        assert set(detail) == {"database", "temporal", "voyager"}


async def test_voyager_down_as_seen_by_the_monitor_keeps_the_api_ready(make_api):
    async with make_api(**_telescope()) as h:
        recorder = ObservatoryStatusRecorder(h.sessionmaker, h.settings.orders.telescope)
        assert await recorder.record(False, "VoyagerConnectionError: connection refused by voyager.lan:5950")
        slug = h.settings.orders.telescope
        r = await h.client.get("/health/ready")
        assert r.status_code == 200 and r.json()["checks"]["voyagers"][slug] == "down"
        assert r.json()["checks"]["voyager"] == "down"  # one down: the summary says so
        assert "voyager.lan" not in r.text and "refused" not in r.text
        admin = await h.customer(role="admin")
        body = (await h.client.get("/health/ready", headers=auth(admin.api_key))).json()
        detail = body["voyagers_detail"][slug]
        assert "voyager.lan" in detail["detail"] and detail["last_ok_at"] is None
        assert f"{slug} down: VoyagerConnectionError" in body["detail"]["voyager"]["detail"] or \
            body["detail"]["voyager"]["detail"] == detail["detail"]  # the only telescope: its own detail
        # Unchanged state within the refresh interval is not rewritten; a change is.
        assert not await recorder.record(False, "same")
        assert await recorder.record(True, "answered the run-list poll")
        assert (await h.client.get("/health/ready")).json()["checks"]["voyagers"][slug] == "ok"


async def test_a_stale_monitor_report_is_unknown(make_api):
    async with make_api(**_telescope()) as h:
        await ObservatoryStatusRecorder(h.sessionmaker, h.settings.orders.telescope).record(True, "fine")
        async with h.engine.begin() as conn:
            await conn.execute(sa.update(ObservatoryStatus.__table__).where(
                ObservatoryStatus.__table__.c.telescope == h.settings.orders.telescope).values(
                checked_at=datetime.now(timezone.utc) - timedelta(hours=1)))
        assert (await h.client.get("/health/ready")).json()["checks"]["voyagers"][h.settings.orders.telescope] \
            == "unknown"


async def test_every_telescope_not_retired_is_reported_by_its_own_monitor(make_api):
    run = uuid.uuid4().hex[:8]
    reporting, silent, retired = f"rep-{run}", f"silent-{run}", f"gone-{run}"
    async with make_api(orders={"telescope": reporting}) as h:
        async with h.sessionmaker() as s:
            s.add_all([_row(reporting), _row(silent, "maintenance"), _row(retired, "retired")])
            await s.commit()
        try:
            await ObservatoryStatusRecorder(h.sessionmaker, reporting).record(True, "answered the run-list poll")
            await ObservatoryStatusRecorder(h.sessionmaker, retired).record(False, "switched off for good")
            r = await h.client.get("/health/ready")
            assert r.status_code == 200, r.text  # a silent Voyager never makes the API unready
            checks = r.json()["checks"]
            assert checks["voyagers"][reporting] == "ok" and checks["voyagers"][silent] == "unknown"
            assert retired not in checks["voyagers"]
            assert checks["voyager"] in ("unknown", "down")  # not every Voyager is known to be ok
            assert "voyagers_detail" not in r.json()

            admin = await h.customer(role="admin")
            body = (await h.client.get("/health/ready", headers=auth(admin.api_key))).json()
            per = body["voyagers_detail"]
            assert per[reporting]["status"] == "ok" and per[reporting]["last_ok_at"] is not None
            assert per[silent] == {"status": "unknown", "detail": f"the observatory monitor of {silent!r} has not "
                                   "reported yet", "latency_ms": None, "checked_at": None, "last_ok_at": None}
            assert f"{silent} unknown: the observatory monitor" in body["detail"]["voyager"]["detail"]
        finally:
            async with h.sessionmaker() as s:
                for row in (await s.exec(select(Telescope).where(
                        Telescope.slug.in_([reporting, silent])))).all():  # type: ignore[attr-defined]
                    row.status = "retired"
                await s.commit()


def test_the_voyager_summary_is_the_worst_of_the_telescopes():
    ok = {"status": "ok", "detail": "answered"}
    down = {"status": "down", "detail": "refused"}
    unknown = {"status": "unknown", "detail": "has not reported yet"}
    assert voyager_summary({"a": down}) == down  # one telescope: its own check, unchanged
    assert voyager_summary({"a": ok, "b": ok})["status"] == "ok"
    assert voyager_summary({"a": ok, "b": unknown}) == {"status": "unknown",
                                                        "detail": "1 of 2 telescope(s) ok; b unknown: has not reported yet"}
    assert voyager_summary({"a": unknown, "b": down, "c": ok})["status"] == "down"
    assert voyager_summary({})["status"] == "unknown"


async def test_ready_never_opens_a_connection_to_voyager(make_api):
    connections = 0

    async def count(reader, writer):
        nonlocal connections
        connections += 1
        writer.close()

    server = await asyncio.start_server(count, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with make_api(voyager={"host": "127.0.0.1", "port": port}, **_telescope()) as h:
            for path in ("/health/ready", "/health", "/health/live") * 3:
                assert (await h.client.get(path)).status_code == 200
        assert connections == 0
    finally:
        server.close()


async def test_ready_is_503_when_temporal_is_down_and_says_nothing_more(database_url, engine, tmp_path):
    # Nothing listens on port 1: Temporal is "down" from the start.
    settings = api_settings(database_url, "127.0.0.1:1", "tq-none", tmp_path, api={"health_timeout_seconds": 1.0})
    app = create_app(settings, engine=engine)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            r = await client.get("/health/ready")
            live = await client.get("/health/live")
    assert r.status_code == 503 and live.status_code == 200
    assert r.json()["status"] == "not_ready"
    assert r.json()["checks"]["temporal"] == "down" and r.json()["checks"]["database"] == "ok"
    assert "127.0.0.1" not in r.text


async def test_database_down_is_503_not_500(tmp_path, temporal_env):
    dead = "postgresql+asyncpg://postgres@127.0.0.1:1/stellar"
    app = create_app(api_settings(dead, temporal_address(temporal_env), "tq-none", tmp_path),
                     temporal_client=temporal_env.client)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            r = await client.get("/api/credits", headers=auth("sk_" + "x" * 43))
            assert r.status_code == 503 and r.json()["error"]["code"] == "database_unavailable"
            r = await client.get("/health/ready")
            assert r.status_code == 503 and r.json()["checks"]["database"] == "down"
