"""Migration 0005_guards upgrades a database that already holds data at the previous revision."""

from __future__ import annotations

import uuid

import asyncpg
import sqlalchemy as sa

from activities.observatory_status import ObservatoryStatusRecorder
from api.rate_limits import SharedRateLimiter
from core.database import make_engine, make_sessionmaker
from core.migrate import upgrade_in_thread


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def test_0005_guards_upgrades_a_database_holding_data(database_url):
    base = database_url.rsplit("/", 1)[0]
    name = f"mig_guards_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_plain(database_url))
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{base}/{name}"
    engine = None
    try:
        upgrade_in_thread(url, "0004_money")  # the revision before 0005_guards
        raw = await asyncpg.connect(_plain(url))
        try:
            cid = await raw.fetchval("INSERT INTO customer (email, name, created_at) VALUES ('old@example.com', 'Old', "
                                     "now()) RETURNING id")
            await raw.execute("INSERT INTO api_key (customer_id, prefix, key_hash, role, created_at) "
                              "VALUES ($1, 'sk_old', $2, 'customer', now())", cid, "a" * 64)
        finally:
            await raw.close()
        upgrade_in_thread(url, "0005_guards")
        engine = make_engine(url, pool_size=1)
        async with engine.connect() as conn:
            assert (await conn.execute(sa.text("SELECT email FROM customer WHERE id = :i"), {"i": cid})).scalar() \
                == "old@example.com"
            assert (await conn.execute(sa.text("SELECT count(*) FROM api_key"))).scalar() == 1
        limiter = SharedRateLimiter(engine, limit=1)
        assert await limiter.hit("key:old") is None and await limiter.hit("key:old") is not None
        # Today's monitor also stamps the telescope row (0010_telescopes): it runs on today's schema.
        upgrade_in_thread(url, "head")
        assert await ObservatoryStatusRecorder(make_sessionmaker(engine), "main").record(True, "ok")
    finally:
        if engine is not None:
            await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
