"""Revision 0013_host_earnings upgrades a database holding grants at 0012_release_vocab: each grant
gets its lot with its computable value (a pack its payment's price, an invoice grant its recorded
invoice payment, a support adjustment 0), a refunded charge's cents are recorded as reversed, and
the ledger stays consistent."""

from __future__ import annotations

import sqlalchemy as sa

from billing.ledger_check import check_invariants
from core.migrate import upgrade_in_thread
from tests.scratch_db import scratch_database_at


async def test_upgrade_gives_existing_grants_their_computable_value(engine, database_url):
    # 0012_release_vocab: the revision before 0013_host_earnings.
    async with scratch_database_at(engine, database_url, "0012_release_vocab") as (url, eng):
        async with eng.begin() as conn:
            cid = (await conn.execute(sa.text(
                "INSERT INTO customer (email, name, created_at) VALUES ('old@example.com', '', now()) RETURNING id"
            ))).scalar_one()
            pid = (await conn.execute(sa.text(
                "INSERT INTO payment (customer_id, pack_id, credits, bonus_credits, amount_cents, currency, status, "
                "created_at) VALUES (:c, 'p50', 50, 5, 4500, 'eur', 'completed', now()) RETURNING id"), {"c": cid})
            ).scalar_one()
            await conn.execute(sa.text(
                "INSERT INTO invoice_payment (payment_intent_id, invoice_id, customer_id, amount_cents, created_at) "
                "VALUES ('pi_1', 'in_1', :c, 5900, now())"), {"c": cid})
            # 55 pack credits (paid 4500), 60 subscription credits (invoice paid 5900), 3 goodwill,
            # and an invoice nobody recorded the payment of (value unknown: 0).
            rows = [("grant", "pack", 55, f"payment:{pid}"), ("grant", "subscription", 60, "invoice:in_1"),
                    ("adjustment", "pack", 3, "support:1"), ("grant", "subscription", 20, "invoice:in_2")]
            balance = 0
            for kind, bucket, amount, key in rows:
                await conn.execute(sa.text(
                    "INSERT INTO ledger_entry (customer_id, kind, bucket, amount, balance_before, balance_after, "
                    "held_before, held_after, reference_type, reference_id, idempotency_key, actor, reason, "
                    "created_at) VALUES (:c, :k, :b, :a, :bb, :ba, 0, 0, '', '', :key, 'test', 'r', now())"),
                    {"c": cid, "k": kind, "b": bucket, "a": amount, "bb": balance, "ba": balance + amount, "key": key})
                balance += amount
            await conn.execute(sa.text(
                "INSERT INTO credit_account (customer_id, subscription_credits, pack_credits, held, debt, updated_at) "
                "VALUES (:c, 80, 58, 0, 0, now())"), {"c": cid})
            # A quarter of the pack's charge refunded (credits not clawed back yet: 0 moves).
            await conn.execute(sa.text(
                "INSERT INTO payment_reversal (charge_id, customer_id, grant_key, bucket, granted_credits, "
                "charge_amount_cents, refunded_cents, clawed_back, moves, created_at, updated_at) "
                "VALUES ('ch_1', :c, :k, 'pack', 55, 4500, 1125, 0, 0, now(), now())"), {"c": cid, "k": f"payment:{pid}"})
        upgrade_in_thread(url, "0013_host_earnings")
        async with eng.connect() as conn:
            lots = {r.grant_key: r for r in (await conn.execute(sa.text(
                "SELECT grant_key, bucket, source, credits, value_cents, reversed_cents, consumed, gone "
                "FROM credit_grant WHERE customer_id = :c"), {"c": cid})).all()}
            columns = set((await conn.execute(sa.text(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'customer'"))).scalars())
            problems = await check_invariants(conn)
        assert {k: (r.bucket, r.source, r.credits, r.value_cents, r.reversed_cents) for k, r in lots.items()} == {
            f"payment:{pid}": ("pack", "pack", 55, 4500, 1125),
            "invoice:in_1": ("subscription", "subscription", 60, 5900, 0),
            "support:1": ("pack", "support", 3, 0, 0),
            "invoice:in_2": ("subscription", "subscription", 20, 0, 0),
        }
        assert all((r.consumed, r.gone) == (0, 0) for r in lots.values())
        assert "stripe_connect_account_id" in columns
        assert problems == []
