"""Payment received and credits low: e-mails read from the ledger with a cursor, once per line."""

from __future__ import annotations

import asyncio
import uuid

import sqlalchemy as sa

from billing.ledger import Ledger
from mail.sender import MailSender
from models.db import MailCursor
from tests.mail.conftest import customer_with_order, mail_settings


async def _cursor(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(MailCursor.last_id).where(MailCursor.name == "ledger"))).scalar_one()


async def test_a_pack_payment_and_the_fall_below_the_threshold_each_mail_once(outbox_db, outbox_sessions, sink):
    settings = mail_settings(sink.port, ledger_lag_seconds=0, credits_low_below=5)
    email = f"ledger-{uuid.uuid4().hex[:6]}@example.com"
    cid, oid = await customer_with_order(outbox_sessions, email)
    ledger = Ledger(outbox_db)
    await ledger.grant(cid, 10, "pack", "payment:1", "payment", "1", reason="credit pack 10: 10 + 0 bonus (payment 1)")
    await ledger.hold(cid, oid, 7)  # 10 → 3: below 5
    senders = [MailSender(outbox_db, settings, owner=f"s{i}") for i in range(2)]
    await asyncio.gather(*(s.run_once() for s in senders))
    await asyncio.gather(*(s.run_once() for s in senders))
    await ledger.release(oid)  # back to 10, not a fall
    await ledger.adjust(cid, -1, "support", "test", f"adj:{cid}")  # 10 → 9: above the threshold
    await asyncio.gather(*(s.run_once() for s in senders))
    received = sorted(sink.messages(email), key=lambda m: m["Subject"])
    assert [m["Subject"] for m in received] == [
        "Stellar — paiement reçu : 10 crédits / payment received: 10 credits",
        "Stellar — plus que 3 crédits / 3 credits left",
    ]
    assert "http://stellar.test/app/credit-packs" in received[1].get_content()
    async with outbox_db.connect() as conn:
        last = (await conn.execute(sa.text("SELECT max(id) FROM ledger_entry"))).scalar_one()
    assert await _cursor(outbox_db) == last


async def test_ledger_lines_younger_than_the_lag_wait(outbox_db, outbox_sessions, sink):
    settings = mail_settings(sink.port, ledger_lag_seconds=3600)
    email = f"ledger-{uuid.uuid4().hex[:6]}@example.com"
    cid, _ = await customer_with_order(outbox_sessions, email)
    await Ledger(outbox_db).grant(cid, 3, "subscription", "invoice:in_1", "invoice", "in_1", reason="nebula")
    before = await _cursor(outbox_db)
    await MailSender(outbox_db, settings).run_once()
    assert sink.messages(email) == [] and await _cursor(outbox_db) == before
