"""Revision 0009_mail upgrades a database whose outbox already holds order events waiting for e-mail."""

from __future__ import annotations

import sqlalchemy as sa

from core.database import make_engine, make_sessionmaker
from core.migrate import upgrade_in_thread
from mail.sender import MailSender
from models.db import OrderEvent
from tests.mail.conftest import customer_with_order, mail_settings
from tests.scratch_db import scratch_database


async def test_upgrade_keeps_pending_order_events_and_the_sender_then_mails_them(engine, database_url, sink):
    async with scratch_database(engine, database_url) as url:
        upgrade_in_thread(url, "0008_customer_sets")  # the revision before 0009_mail
        eng = make_engine(url)
        try:
            _, oid = await customer_with_order(make_sessionmaker(eng), "old@example.com", events=[
                OrderEvent(kind="status", email_status="pending", payload={"status": "completed", "target_name": "M42"}),
                OrderEvent(kind="progress", email_status="none", payload={}),
            ])
            upgrade_in_thread(url, "0009_mail")
            async with eng.connect() as conn:
                kept = (await conn.execute(sa.text(
                    "SELECT kind, email_status FROM order_event ORDER BY id"))).all()
                outbox = (await conn.execute(sa.text("SELECT count(*) FROM mail_message"))).scalar_one()
            assert kept == [("status", "pending"), ("progress", "none")] and outbox == 0
            done = await MailSender(eng, mail_settings(sink.port)).run_once()
            assert len(done.sent) == 1
            [received] = sink.messages("old@example.com")
            assert f"/app/orders/{oid}" in received.get_payload(decode=True).decode()
        finally:
            await eng.dispose()
