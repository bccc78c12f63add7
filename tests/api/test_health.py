"""``GET /health/live`` and ``/health/ready``: statuses for anyone, detail for admins; Voyager as
last seen by the observatory monitor, never by a connection of the probe's own."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import sqlalchemy as sa

from activities.observatory_status import ObservatoryStatusRecorder
from api.app import create_app
from models.db import ObservatoryStatus
from tests.api.conftest import api_settings, auth, temporal_address


def _telescope() -> dict:
    return {"orders": {"telescope": f"t-{uuid.uuid4().hex[:10]}"}}


async def test_live_answers_without_any_backend(api):
    r = await api.client.get("/health/live")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_ready_anonymous_gets_statuses_only(make_api):
    async with make_api(**_telescope()) as h:
        r = await h.client.get("/health/ready")
        assert r.status_code == 200, r.text
        assert r.json() == {"status": "ready", "checks": {"database": "ok", "temporal": "ok", "voyager": "unknown"}}
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
        assert "has not reported yet" in detail["voyager"]["detail"]


async def test_voyager_down_as_seen_by_the_monitor_keeps_the_api_ready(make_api):
    async with make_api(**_telescope()) as h:
        recorder = ObservatoryStatusRecorder(h.sessionmaker, h.settings.orders.telescope)
        assert await recorder.record(False, "VoyagerConnectionError: connection refused by voyager.lan:5950")
        r = await h.client.get("/health/ready")
        assert r.status_code == 200 and r.json()["checks"]["voyager"] == "down"
        assert "voyager.lan" not in r.text and "refused" not in r.text
        admin = await h.customer(role="admin")
        detail = (await h.client.get("/health/ready", headers=auth(admin.api_key))).json()["detail"]["voyager"]
        assert "voyager.lan" in detail["detail"] and detail["last_ok_at"] is None
        # Unchanged state within the refresh interval is not rewritten; a change is.
        assert not await recorder.record(False, "same")
        assert await recorder.record(True, "answered the run-list poll")
        assert (await h.client.get("/health/ready")).json()["checks"]["voyager"] == "ok"


async def test_a_stale_monitor_report_is_unknown(make_api):
    async with make_api(**_telescope()) as h:
        await ObservatoryStatusRecorder(h.sessionmaker, h.settings.orders.telescope).record(True, "fine")
        async with h.engine.begin() as conn:
            await conn.execute(sa.update(ObservatoryStatus.__table__).where(
                ObservatoryStatus.__table__.c.telescope == h.settings.orders.telescope).values(
                checked_at=datetime.now(timezone.utc) - timedelta(hours=1)))
        assert (await h.client.get("/health/ready")).json()["checks"]["voyager"] == "unknown"


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
