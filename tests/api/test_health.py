"""``GET /health``: database, Temporal, Voyager reachability; 200 only when all answer."""

from __future__ import annotations

import asyncio

from tests.voyager.conftest import sim_factory  # noqa: F401 - the real simulator fixture


async def test_health_is_503_naming_voyager_when_nothing_listens(api):
    r = await api.client.get("/health")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"]["ok"] is True and "PostgreSQL" in body["checks"]["database"]["detail"]
    assert body["checks"]["temporal"]["ok"] is True
    assert body["checks"]["voyager"]["ok"] is False
    assert "Connect" in body["checks"]["voyager"]["detail"] or "refused" in body["checks"]["voyager"]["detail"]


async def test_health_is_200_with_the_simulator_version(make_api, sim_factory):  # noqa: F811
    sim = await sim_factory()
    async with make_api(voyager={"host": "127.0.0.1", "port": sim.port}) as h:
        r = await h.client.get("/health")
        assert r.status_code == 200, r.text
        checks = r.json()["checks"]
        assert all(c["ok"] for c in checks.values())
        assert f"127.0.0.1:{sim.port}" in checks["voyager"]["detail"]


async def test_health_times_out_on_a_silent_voyager(make_api):
    async def silent(reader, writer):
        await asyncio.sleep(10)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with make_api(voyager={"host": "127.0.0.1", "port": port}, api={"health_timeout_seconds": 0.5}) as h:
            r = await h.client.get("/health")
            assert r.status_code == 503
            assert r.json()["checks"]["voyager"]["detail"] == "no answer within 0.5 s"
    finally:
        server.close()


async def test_health_reports_temporal_down_without_failing_the_app(database_url, engine, tmp_path):
    import httpx

    from api.app import create_app
    from tests.api.conftest import api_settings

    # Nothing listens on port 1: Temporal is "down" from the start.
    settings = api_settings(database_url, "127.0.0.1:1", "tq-none", tmp_path, api={"health_timeout_seconds": 1.0})
    app = create_app(settings, engine=engine)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            r = await client.get("/health")
    assert r.status_code == 503
    assert r.json()["checks"]["temporal"]["ok"] is False
    assert r.json()["checks"]["database"]["ok"] is True


async def test_database_down_is_503_not_500(tmp_path, temporal_env):
    import httpx

    from api.app import create_app
    from tests.api.conftest import api_settings, auth, temporal_address

    dead = "postgresql+asyncpg://postgres@127.0.0.1:1/stellar"
    app = create_app(api_settings(dead, temporal_address(temporal_env), "tq-none", tmp_path),
                     temporal_client=temporal_env.client)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            r = await client.get("/api/credits", headers=auth("sk_" + "x" * 43))
            assert r.status_code == 503 and r.json()["error"]["code"] == "database_unavailable"
            r = await client.get("/health")
            assert r.status_code == 503 and r.json()["checks"]["database"]["ok"] is False
