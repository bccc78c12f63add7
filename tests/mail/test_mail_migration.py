"""Revision 0009_mail upgrades a database whose outbox already holds order events waiting for e-mail."""

from __future__ import annotations

import sqlalchemy as sa

from core.database import make_engine
from core.migrate import upgrade_in_thread
from mail.sender import MailSender
from models.db import Customer, Order, OrderEvent
from tests.mail.conftest import mail_settings
from tests.scratch_db import insert_as_of_revision, scratch_database


async def test_upgrade_keeps_pending_order_events_and_the_sender_then_mails_them(engine, database_url, sink):
    async with scratch_database(engine, database_url) as url:
        upgrade_in_thread(url, "0008_customer_sets")  # the revision before 0009_mail
        eng = make_engine(url)
        try:
            async with eng.begin() as conn:
                cid = await insert_as_of_revision(conn, Customer(email="old@example.com"))
                oid = await insert_as_of_revision(conn, Order(
                    customer_id=cid, target_name="M42", ra_j2000=5.588, dec_j2000=-5.39, status="completed",
                    cost=12, shots_total=5), credits_refunded=0)  # credits_released since 0012
                await insert_as_of_revision(conn, OrderEvent(
                    order_id=oid, kind="status", email_status="pending",
                    payload={"status": "completed", "target_name": "M42"}))
                await insert_as_of_revision(conn, OrderEvent(order_id=oid, kind="progress", email_status="none",
                                                             payload={}))
            upgrade_in_thread(url, "0009_mail")
            async with eng.connect() as conn:
                kept = (await conn.execute(sa.text(
                    "SELECT kind, email_status FROM order_event ORDER BY id"))).all()
                outbox = (await conn.execute(sa.text("SELECT count(*) FROM mail_message"))).scalar_one()
            assert kept == [("status", "pending"), ("progress", "none")] and outbox == 0
            upgrade_in_thread(url, "head")  # today's sender reads today's schema
            done = await MailSender(eng, mail_settings(sink.port)).run_once()
            assert len(done.sent) == 1
            [received] = sink.messages("old@example.com")
            assert f"/app/orders/{oid}" in received.get_payload(decode=True).decode()
        finally:
            await eng.dispose()
