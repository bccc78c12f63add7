"""Revision 0004_money upgrades a database that already holds accounts and ledger entries."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from billing.ledger_check import check_invariants
from core.database import make_engine
from core.migrate import upgrade_in_thread
from tests.scratch_db import scratch_database

pytestmark = pytest.mark.asyncio


async def test_upgrade_keeps_balances_and_starts_without_debt(engine, database_url):
    async with scratch_database(engine, database_url) as url:
        await _upgrade_with_balances(url)


async def _upgrade_with_balances(url: str) -> None:
    upgrade_in_thread(url, "0001")  # the revision before 0004_money
    eng = make_engine(url)
    try:
        async with eng.begin() as conn:
            cid = (await conn.execute(sa.text(
                "INSERT INTO customer (email, name, created_at) VALUES ('old@example.com', '', now()) RETURNING id"
            ))).scalar_one()
            await conn.execute(sa.text(
                "INSERT INTO credit_account (customer_id, subscription_credits, pack_credits, held, updated_at) "
                "VALUES (:c, 0, 10, 0, now())"), {"c": cid})
            await conn.execute(sa.text(
                "INSERT INTO ledger_entry (customer_id, kind, bucket, amount, balance_before, balance_after, "
                "held_before, held_after, reference_type, reference_id, idempotency_key, actor, reason, created_at) "
                "VALUES (:c, 'grant', 'pack', 10, 0, 10, 0, 0, 'payment', '1', 'payment:1', 'stripe', '', now())"),
                {"c": cid})
        upgrade_in_thread(url, "0004_money")
        async with eng.connect() as conn:
            row = (await conn.execute(sa.text(
                "SELECT pack_credits, debt FROM credit_account WHERE customer_id = :c"), {"c": cid})).one()
            tables = set((await conn.execute(sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))).scalars())
        assert (row.pack_credits, row.debt) == (10, 0)
        assert {"payment_reversal", "payment_dispute"} <= tables
        assert await check_invariants(eng) == []
    finally:
        await eng.dispose()
