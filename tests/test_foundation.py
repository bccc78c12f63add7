"""The foundation: settings fail clearly, migrations match the models, servers really run."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import models.db  # noqa: F401
from core.settings import SettingsError, load_settings


def test_malformed_database_url_names_the_variable(monkeypatch):
    monkeypatch.setenv("STELLAR_DATABASE__URL", "mysql://root@localhost/x")
    with pytest.raises(SettingsError) as exc:
        load_settings()
    assert "STELLAR_DATABASE__URL" in str(exc.value)


def test_a_real_stripe_key_without_api_base_means_stripe_not_localstripe(monkeypatch):
    assert load_settings().stripe.effective_api_base() == "http://127.0.0.1:8420"
    monkeypatch.setenv("STELLAR_STRIPE__API_KEY", "sk_test_51Realkey")
    s = load_settings().stripe
    assert not s.uses_embedded_localstripe() and s.effective_api_base() == "https://api.stripe.com"
    assert not s.is_localstripe()


def test_mac_words_must_be_four(monkeypatch):
    monkeypatch.setenv("STELLAR_VOYAGER__MAC_WORDS", "a,b,c")
    with pytest.raises(SettingsError) as exc:
        load_settings()
    assert "STELLAR_VOYAGER__MAC_WORDS" in str(exc.value)


def test_nested_env_settings_are_read(monkeypatch):
    monkeypatch.setenv("STELLAR_VOYAGER__POOL_SIZE", "7")
    monkeypatch.setenv("STELLAR_DATABASE__URL", "postgres://u:p@db:5432/stellar")
    s = load_settings()
    assert s.voyager.pool_size == 7
    assert s.database.effective_url() == "postgresql+asyncpg://u:p@db:5432/stellar"
    assert s.voyager.password.get_secret_value() == ""
    assert "p@db" not in repr(s.voyager)


async def test_migration_matches_models(engine):
    def diff(sync_conn):
        ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return compare_metadata(ctx, SQLModel.metadata)

    async with engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == [], f"models/db.py and the migration differ: {differences}"


async def test_order_event_insert_notifies(engine, database_url):
    import asyncpg

    raw = database_url.replace("postgresql+asyncpg://", "postgresql://")
    listener = await asyncpg.connect(raw)
    got: list[str] = []
    await listener.add_listener("order_events", lambda *args: got.append(args[3]))
    try:
        async with engine.begin() as conn:
            cid = (await conn.execute(sa.text(
                "INSERT INTO customer (email, name, created_at) VALUES (:e, '', now()) RETURNING id"),
                {"e": f"notify-{id(got)}@example.com"})).scalar_one()
            oid = (await conn.execute(sa.text(
                """INSERT INTO "order" (customer_id, plan, status, status_reason, target_name, ra_j2000,
                   dec_j2000, pa, priority, c_moon_down, c_hfd_mean_limit, c_alt_min, repeat, cost,
                   credits_held, credits_captured, credits_released, shots_total, shots_done,
                   frames_accepted, requested_integration_seconds, integration_seconds, created_at,
                   updated_at) VALUES (:c, 'nebula', 'pending', '', 'M42', 5.58, -5.39, 0, 2, true, 0,
                   30, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, now(), now()) RETURNING id"""), {"c": cid})).scalar_one()
            eid = (await conn.execute(sa.text(
                "INSERT INTO order_event (order_id, kind, email_status, created_at) "
                "VALUES (:o, 'status', 'none', now()) RETURNING id"), {"o": oid})).scalar_one()
        import asyncio

        for _ in range(50):
            if got:
                break
            await asyncio.sleep(0.05)
        assert got == [f"{oid}:{eid}"]
    finally:
        await listener.close()


async def test_temporal_dev_server_has_stellar_search_attributes(temporal_env):
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    resp = await temporal_env.client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default"))
    assert {"CustomerId", "OrderStatus", "TargetName", "Plan"} <= set(resp.custom_attributes)


def test_env_example_documents_every_setting():
    from pathlib import Path

    from scripts.gen_env_example import render

    current = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
    assert current == render(), "run `.venv/bin/python scripts/gen_env_example.py` after changing settings"
