"""Revision 0012_release_vocab upgrades a database that already holds a finished order, its resolved
hold and its final report: the released credits keep their value under the ledger's word, a
``settled`` hold reads ``captured``, the stored report decodes under today's model, and an
aborted order's kind becomes its explicit ``abort_role``."""

from __future__ import annotations

import json

import sqlalchemy as sa

from billing.ledger_check import check_invariants
from core.migrate import upgrade_in_thread
from models.orders import OrderReport
from tests.scratch_db import scratch_database_at

OLD_REPORT = {"order_id": 0, "status": "partial", "reason": "", "target_name": "M42", "filters": [],
              "frames_accepted": 2, "integration_minutes": 10.0, "requested_integration_minutes": 20.0,
              "mean_hfd": None, "sessions": 1, "cost": 4, "credits_held": 4, "credits_captured": 3,
              "credits_refunded": 1, "aborted_by": None, "abort_reason": None, "jpg_dir": "", "fits_paths": []}


async def test_upgrade_renames_refunded_to_released_and_keeps_every_value(engine, database_url):
    # 0011_mosaic: the revision before 0012_release_vocab.
    async with scratch_database_at(engine, database_url, "0011_mosaic") as (url, eng):
        async with eng.begin() as conn:
            cid = (await conn.execute(sa.text(
                "INSERT INTO customer (email, name, created_at) VALUES ('old@example.com', '', now()) RETURNING id"
            ))).scalar_one()
            insert_order = sa.text(
                """INSERT INTO "order" (customer_id, plan, status, status_reason, target_name, ra_j2000, dec_j2000,
                   pa, priority, c_moon_down, c_hfd_mean_limit, c_alt_min, repeat, cost, credits_held,
                   credits_captured, credits_refunded, shots_total, shots_done, frames_accepted,
                   requested_integration_seconds, integration_seconds, report, aborted_by, created_at, updated_at,
                   finished_at)
                   VALUES (:c, 'nebula', 'aborted', '', 'M42', 5.58, -5.39, 0, 2, false, 0, 30, 1, 4, 4, 3, 1,
                   1, 1, 2, 1200, 600, CAST(:r AS jsonb), :by, now(), now(), now()) RETURNING id""")
            oid = (await conn.execute(insert_order, {"c": cid, "r": json.dumps(OLD_REPORT), "by": "Support:alice"})
                   ).scalar_one()
            # Until 0008 the kind of an abort was read from its requester's name.
            for by in ("customer:7", "admin:root", None):
                await conn.execute(insert_order, {"c": cid, "r": "null", "by": by})
            await conn.execute(sa.text(
                "INSERT INTO order_event (order_id, kind, payload, email_status, created_at) "
                "VALUES (:o, 'status', CAST(:p AS jsonb), 'sent', now())"),
                {"o": oid, "p": json.dumps({"status": "partial", "final": True, "report": OLD_REPORT})})
            # 10 pack credits granted, 4 held for the order, 3 captured and 1 released: as 0007 stored them.
            await conn.execute(sa.text(
                "INSERT INTO credit_account (customer_id, subscription_credits, pack_credits, held, updated_at) "
                "VALUES (:c, 0, 7, 0, now())"), {"c": cid})
            entries = [("grant", 10, 0, 10, 0, 0, "payment:1"), ("hold", -4, 10, 6, 0, 4, f"order:{oid}:hold:pack"),
                       ("capture", 0, 6, 6, 4, 1, f"order:{oid}:capture:pack"),
                       ("release", 1, 6, 7, 1, 0, f"order:{oid}:release:pack")]
            for kind, amount, before, after, held_before, held_after, key in entries:
                await conn.execute(sa.text(
                    "INSERT INTO ledger_entry (customer_id, kind, bucket, amount, balance_before, balance_after, "
                    "held_before, held_after, reference_type, reference_id, idempotency_key, actor, reason, "
                    "created_at) VALUES (:c, :k, 'pack', :a, :b, :af, :hb, :ha, 'order', :o, :key, 'test', '', now())"),
                    {"c": cid, "k": kind, "a": amount, "b": before, "af": after, "hb": held_before, "ha": held_after,
                     "o": str(oid), "key": key})
            await conn.execute(sa.text(
                "INSERT INTO credit_hold (customer_id, order_id, amount, from_subscription, from_pack, status, "
                "captured, released, created_at, resolved_at) VALUES (:c, :o, 4, 0, 4, 'settled', 3, 1, now(), now())"),
                {"c": cid, "o": oid})
        upgrade_in_thread(url, "0012_release_vocab")
        async with eng.connect() as conn:
            order = (await conn.execute(sa.text(
                'SELECT credits_held, credits_captured, credits_released, report FROM "order" WHERE id = :o'),
                {"o": oid})).one()
            event = (await conn.execute(sa.text(
                "SELECT payload FROM order_event WHERE order_id = :o"), {"o": oid})).scalar_one()
            hold = (await conn.execute(sa.text(
                "SELECT status, captured, released FROM credit_hold WHERE order_id = :o"), {"o": oid})).one()
            roles = dict((await conn.execute(sa.text(
                'SELECT aborted_by, abort_role FROM "order" WHERE customer_id = :c'), {"c": cid})).all())
            columns = set((await conn.execute(sa.text(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'order'"))).scalars())
            problems = await check_invariants(conn)
        assert tuple(order[:3]) == (4, 3, 1)
        assert "credits_refunded" not in columns
        for report in (order.report, event["report"]):
            assert "credits_refunded" not in report and report["credits_released"] == 1
            assert OrderReport.model_validate(report).credits_released == 1
        assert event["final"] is True and event["status"] == "partial"
        assert tuple(hold) == ("captured", 3, 1)
        assert problems == []
        assert roles == {"Support:alice": "support", "customer:7": "customer", "admin:root": "support", None: None}
