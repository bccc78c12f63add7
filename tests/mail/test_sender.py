"""The outbox sender against a real aiosmtpd server: once per message, retries, failures, leases."""

from __future__ import annotations

import asyncio
import uuid

import sqlalchemy as sa

from mail.outbox import enqueue
from mail.sender import MailSender
from models.db import MailMessage, OrderEvent
from tests.mail.conftest import RefusingMailbox, customer_with_order, mail_settings


async def _enqueue(engine, settings, n: int, prefix: str = "reader") -> list[str]:
    addresses = [f"{prefix}-{i}-{uuid.uuid4().hex[:6]}@example.com" for i in range(n)]
    async with engine.begin() as conn:
        for i, to in enumerate(addresses):
            assert await enqueue(conn, settings, source_key=f"test:{to}", to=to, subject=f"message {i}",
                                 body=f"body {i}")
    return addresses


async def _rows(engine) -> list:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(MailMessage.__table__).order_by(MailMessage.__table__.c.id))).all()


async def test_two_senders_running_at_once_deliver_each_message_exactly_once(outbox_db, sink):
    settings = mail_settings(sink.port)
    addresses = await _enqueue(outbox_db, settings, 40)
    senders = [MailSender(outbox_db, settings, owner=f"sender-{i}") for i in range(2)]
    sent_by: dict[str, list[int]] = {s.owner: [] for s in senders}
    for _ in range(20):
        rounds = await asyncio.gather(*(s.run_once(batch=5) for s in senders))
        for s, r in zip(senders, rounds):
            sent_by[s.owner] += r.sent
        if not any(r.sent or r.retried for r in rounds):
            break
    received = sink.messages()
    assert sorted(m["To"] for m in received) == sorted(addresses)
    rows = await _rows(outbox_db)
    assert {r.status for r in rows} == {"sent"} and all(r.attempts == 1 and r.sent_at for r in rows)
    # Each message carries the Message-ID written with its row, and no id arrived twice.
    assert sorted(m["Message-ID"] for m in received) == sorted(r.message_id for r in rows)
    assert not set(sent_by["sender-0"]) & set(sent_by["sender-1"])
    assert len(sent_by["sender-0"]) + len(sent_by["sender-1"]) == 40


async def test_enqueue_is_idempotent_by_source_key(outbox_db, sink):
    settings = mail_settings(sink.port)
    async with outbox_db.begin() as conn:
        assert await enqueue(conn, settings, source_key="test:once", to="once@example.com", subject="s", body="b")
        assert not await enqueue(conn, settings, source_key="test:once", to="once@example.com", subject="s", body="b")
    await MailSender(outbox_db, settings).run_once()
    assert len(sink.messages("once@example.com")) == 1


async def test_smtp_down_then_up_retries_and_delivers_once(outbox_db, sink_down):
    settings = mail_settings(sink_down.port, retry_base_seconds=0)
    addresses = await _enqueue(outbox_db, settings, 3)
    sender = MailSender(outbox_db, settings)
    down = await sender.run_once()
    assert down.sent == [] and len(down.retried) == 3
    rows = await _rows(outbox_db)
    assert all(r.status == "pending" and r.attempts == 1 and "connect" in r.last_error and r.lease_owner is None
               for r in rows)
    sink_down.start()
    up = await sender.run_once()
    assert len(up.sent) == 3
    assert sorted(m["To"] for m in sink_down.messages()) == sorted(addresses)
    rows = await _rows(outbox_db)
    assert all(r.status == "sent" and r.attempts == 2 and r.last_error == "" for r in rows)
    assert (await sender.run_once()).sent == []  # nothing is sent again
    assert len(sink_down.messages()) == 3


async def test_a_failed_attempt_waits_before_the_next(outbox_db, sink_down):
    settings = mail_settings(sink_down.port, retry_base_seconds=3600)
    await _enqueue(outbox_db, settings, 1)
    sender = MailSender(outbox_db, settings)
    assert len((await sender.run_once()).retried) == 1
    sink_down.start()
    assert (await sender.run_once()).sent == []  # not due for an hour
    assert sink_down.messages() == []


async def test_max_attempts_then_failed(outbox_db, sink_down):
    settings = mail_settings(sink_down.port, max_attempts=2)
    await _enqueue(outbox_db, settings, 1)
    sender = MailSender(outbox_db, settings)
    assert len((await sender.run_once()).retried) == 1
    assert len((await sender.run_once()).failed) == 1
    [row] = await _rows(outbox_db)
    assert row.status == "failed" and row.attempts == 2 and "after 2 attempts" in row.last_error


async def test_a_refused_recipient_fails_at_once_and_the_others_are_sent(outbox_db, sink_dir):
    from tests.mail.conftest import Sink
    from tests.conftest import free_port

    sink = Sink(sink_dir, free_port())
    sink.start(RefusingMailbox(str(sink_dir)))
    try:
        settings = mail_settings(sink.port)
        good = await _enqueue(outbox_db, settings, 2)
        bad = await _enqueue(outbox_db, settings, 1, prefix="nobody")
        done = await MailSender(outbox_db, settings).run_once()
        assert len(done.sent) == 2 and len(done.failed) == 1
        assert sorted(m["To"] for m in sink.messages()) == sorted(good)
        rows = {r.to_address: r for r in await _rows(outbox_db)}
        assert rows[bad[0]].status == "failed" and rows[bad[0]].attempts == 1 and "refused" in rows[bad[0]].last_error
    finally:
        sink.stop()


async def test_a_claimed_message_waits_for_its_lease_then_another_sender_sends_it(outbox_db, sink):
    """A sender that claimed and then died: the message is sent by another once the lease ends."""
    settings = mail_settings(sink.port)
    [to] = await _enqueue(outbox_db, settings, 1)
    crashed = MailSender(outbox_db, settings, owner="crashed")
    [claimed] = await crashed.claim()
    other = MailSender(outbox_db, settings, owner="other")
    assert (await other.run_once()).sent == []  # the lease holds
    async with outbox_db.begin() as conn:  # time passes: the lease runs out
        await conn.execute(sa.update(MailMessage.__table__).values(lease_until=sa.func.now() - sa.text("interval '1 second'")))
    assert (await other.run_once()).sent == [claimed.id]
    [received] = sink.messages(to)
    assert received["Message-ID"] == claimed.message_id
    [row] = await _rows(outbox_db)
    assert row.status == "sent" and row.attempts == 2


async def test_order_events_are_composed_once_and_marked_sent(outbox_db, outbox_sessions, sink):
    settings = mail_settings(sink.port)
    email = f"observer-{uuid.uuid4().hex[:6]}@example.com"
    report = {"frames_accepted": 5, "integration_minutes": 5.0, "credits_captured": 12, "credits_released": 0}
    _, order_id = await customer_with_order(outbox_sessions, email, events=[
        OrderEvent(kind="status", email_status="pending",
                   payload={"status": "completed", "reason": "", "target_name": "M42", "report": report}),
        OrderEvent(kind="progress", email_status="none", payload={}),
        OrderEvent(kind="retention", email_status="pending",
                   payload={"target_name": "M42", "delete_on": "2027-01-31T00:00:00+00:00", "frames": 5,
                            "zip_url": "http://stellar.test/zip"}),
    ])
    senders = [MailSender(outbox_db, settings, owner=f"s{i}") for i in range(2)]
    await asyncio.gather(*(s.run_once() for s in senders))
    await asyncio.gather(*(s.run_once() for s in senders))
    received = sink.messages(email)
    assert len(received) == 2
    bodies = sorted(m.get_payload(decode=True).decode() for m in received)
    assert f"http://stellar.test/app/orders/{order_id}" in bodies[0] + bodies[1]
    assert any("2027-01-31" in b and "http://stellar.test/zip" in b for b in bodies)
    async with outbox_db.connect() as conn:
        statuses = dict((await conn.execute(sa.select(OrderEvent.kind, OrderEvent.email_status))).all())
    assert statuses == {"status": "sent", "progress": "none", "retention": "sent"}
