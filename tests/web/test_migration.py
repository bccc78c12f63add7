"""Revision 0007_web upgrades a database that already holds customers, keys and ledger lines."""

from __future__ import annotations

import sqlalchemy as sa

from billing.ledger_check import check_invariants
from core.database import make_engine
from core.migrate import upgrade_in_thread
from tests.scratch_db import scratch_database


async def test_upgrade_keeps_customers_and_adds_web_login(engine, database_url):
    async with scratch_database(engine, database_url) as url:
        await _upgrade_with_customers(url)


async def _upgrade_with_customers(url: str) -> None:
    upgrade_in_thread(url, "0006_retention")  # the revision before 0007_web
    eng = make_engine(url)
    try:
        async with eng.begin() as conn:
            cid = (await conn.execute(sa.text(
                "INSERT INTO customer (email, name, created_at) VALUES ('old@example.com', 'Old', now()) RETURNING id"
            ))).scalar_one()
            await conn.execute(sa.text(
                "INSERT INTO api_key (customer_id, prefix, key_hash, role, created_at) "
                "VALUES (:c, 'sk_old', :h, 'customer', now())"), {"c": cid, "h": "0" * 64})
            await conn.execute(sa.text(
                "INSERT INTO credit_account (customer_id, subscription_credits, pack_credits, held, updated_at) "
                "VALUES (:c, 0, 10, 0, now())"), {"c": cid})
            await conn.execute(sa.text(
                "INSERT INTO ledger_entry (customer_id, kind, bucket, amount, balance_before, balance_after, "
                "held_before, held_after, reference_type, reference_id, idempotency_key, actor, reason, created_at) "
                "VALUES (:c, 'grant', 'pack', 10, 0, 10, 0, 0, 'payment', '1', 'payment:1', 'stripe', '', now())"),
                {"c": cid})
        upgrade_in_thread(url, "0007_web")
        async with eng.begin() as conn:
            kept = (await conn.execute(sa.text(
                "SELECT c.email, count(k.id) FROM customer c JOIN api_key k ON k.customer_id = c.id "
                "GROUP BY c.email"))).all()
            logins = (await conn.execute(sa.text("SELECT count(*) FROM web_login"))).scalar_one()
            # An existing customer can be given a web sign-in; an unknown customer cannot.
            await conn.execute(sa.text(
                "INSERT INTO web_login (customer_id, password_hash, created_at, updated_at) "
                "VALUES (:c, '$argon2id$x', now(), now())"), {"c": cid})
        try:
            async with eng.begin() as conn:
                await conn.execute(sa.text(
                    "INSERT INTO web_login (customer_id, password_hash, created_at, updated_at) "
                    "VALUES (:c, '$argon2id$x', now(), now())"), {"c": cid + 1000})
            raise AssertionError("a web login without its customer was accepted")
        except sa.exc.IntegrityError:
            pass
        assert kept == [("old@example.com", 1)] and logins == 0
        assert await check_invariants(eng) == []
    finally:
        await eng.dispose()
