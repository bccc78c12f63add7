"""Put e-mails in the outbox (table ``mail_message``), each once per ``source_key``.

Producers call :func:`enqueue` inside their own transaction, so the e-mail exists exactly when the
fact it tells does. Order events (``order_event.email_status = 'pending'``: an order's final
status with its report, a retention notice) are turned into messages by :func:`compose_order_events`,
which the sender runs before every delivery round.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from core.settings import Settings
from mail.texts import order_event_mail
from models.db import Customer, MailMessage, Order, OrderEvent


def new_message_id(settings: Settings) -> str:
    """A fresh RFC 5322 ``Message-ID`` (``<uuid@domain>``, the domain of ``mail.from_address``)."""
    sender = settings.mail.from_address.rsplit("<", 1)[-1].rstrip(">").strip()
    domain = sender.rpartition("@")[2] or "stellar.invalid"
    return f"<{uuid.uuid4().hex}@{domain}>"


async def enqueue(conn: AsyncConnection, settings: Settings, *, source_key: str, to: str, subject: str, body: str,
                  customer_id: int | None = None, order_event_id: int | None = None) -> bool:
    """Add one message unless ``source_key`` is already in the outbox; True when added.
    Does not commit: the caller's transaction decides."""
    now = datetime.now(timezone.utc)
    row = await conn.execute(
        insert(MailMessage.__table__).values(
            source_key=source_key, message_id=new_message_id(settings), customer_id=customer_id,
            order_event_id=order_event_id, to_address=to, subject=subject[:500], body=body, status="pending",
            attempts=0, next_attempt_at=now, last_error="", created_at=now,
        ).on_conflict_do_nothing(index_elements=["source_key"]).returning(MailMessage.__table__.c.id))
    return row.first() is not None


async def compose_order_events(conn: AsyncConnection, settings: Settings, *, batch: int = 100) -> int:
    """Turn up to ``batch`` pending order events into outbox messages (``email_status`` → queued).
    Rows are locked with SKIP LOCKED, so concurrent senders split them. Returns how many were queued.
    Does not commit."""
    e, o, c = OrderEvent.__table__, Order.__table__, Customer.__table__
    rows = (await conn.execute(
        sa.select(e.c.id, e.c.order_id, e.c.kind, e.c.payload, c.c.id.label("customer_id"), c.c.email)
        .join(o, o.c.id == e.c.order_id).join(c, c.c.id == o.c.customer_id)
        .where(e.c.email_status == "pending").order_by(e.c.id).limit(batch)
        .with_for_update(of=e, skip_locked=True))).all()
    for row in rows:
        text = order_event_mail(settings, row.order_id, row.kind, row.payload or {})
        if text is not None:
            subject, body = text
            await enqueue(conn, settings, source_key=f"order_event:{row.id}", to=row.email, subject=subject,
                          body=body, customer_id=row.customer_id, order_event_id=row.id)
        await conn.execute(sa.update(e).where(e.c.id == row.id)
                           .values(email_status="queued" if text is not None else "none"))
    return len(rows)
