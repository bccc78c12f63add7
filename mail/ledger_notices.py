"""E-mails derived from the credit ledger: payment received and credits low.

The ledger (``ledger_entry``) is append-only, so the sender reads it with a cursor
(``mail_cursor`` row ``ledger``: the last id read) instead of asking every ledger writer to
touch the outbox:

* a ``grant`` paid by a pack or an invoice (``reference_type`` payment | invoice) → "payment
  received" (source key ``ledger:<id>:payment``);
* a line whose total available balance goes from ≥ ``mail.credits_low_below`` to below it →
  "credits low" (``ledger:<id>:credits_low``): once per crossing, never again until the balance
  has risen above the threshold and fallen again.

The cursor row is taken ``FOR UPDATE SKIP LOCKED``: one sender reads at a time, the other skips
this step for the round. Ids come from a sequence, so a line whose transaction commits after a
later id was read would be skipped; lines younger than ``mail.ledger_lag_seconds`` are therefore
left for a later round (ledger transactions last milliseconds).
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.settings import Settings
from mail.outbox import enqueue
from mail.texts import credits_low_mail, payment_received_mail
from models.db import Customer, LedgerEntry, MailCursor

CURSOR = "ledger"
_L, _C, _K = LedgerEntry.__table__, Customer.__table__, MailCursor.__table__


async def compose_ledger_notices(conn: AsyncConnection, settings: Settings, *, batch: int = 500) -> int:
    """Read up to ``batch`` ledger lines past the cursor, queue their e-mails, move the cursor.
    Returns the lines read (0 when another sender holds the cursor). Does not commit."""
    last = (await conn.execute(sa.select(_K.c.last_id).where(_K.c.name == CURSOR)
                               .with_for_update(skip_locked=True))).scalar()
    if last is None:
        return 0
    lag = timedelta(seconds=settings.mail.ledger_lag_seconds)
    rows = (await conn.execute(
        sa.select(_L.c.id, _L.c.customer_id, _L.c.kind, _L.c.bucket, _L.c.amount, _L.c.balance_before,
                  _L.c.balance_after, _L.c.reference_type, _L.c.reason, _C.c.email)
        .join(_C, _C.c.id == _L.c.customer_id)
        .where(_L.c.id > last, _L.c.created_at <= sa.func.now() - lag)
        .order_by(_L.c.id).limit(batch))).all()
    low = settings.mail.credits_low_below
    for r in rows:
        if r.kind == "grant" and r.reference_type in ("payment", "invoice") and r.amount > 0:
            subject, body = payment_received_mail(settings, r.amount, r.bucket, r.reason)
            await enqueue(conn, settings, source_key=f"ledger:{r.id}:payment", to=r.email, subject=subject,
                          body=body, customer_id=r.customer_id)
        if low and r.balance_before >= low > r.balance_after:
            subject, body = credits_low_mail(settings, r.balance_after, low)
            await enqueue(conn, settings, source_key=f"ledger:{r.id}:credits_low", to=r.email, subject=subject,
                          body=body, customer_id=r.customer_id)
    if rows:
        await conn.execute(sa.update(_K).where(_K.c.name == CURSOR)
                           .values(last_id=rows[-1].id, updated_at=sa.func.now()))
    return len(rows)
