"""Monthly host statements through the outbox: one e-mail per host and month, exactly once
(source key ``host_statement:<host>:<YYYY-MM>``; docs/host-earnings.md §4).

A host gets a statement for a month when it hosts a telescope or had host entries that month. The
figures are the CSV statement's (api/services/host_earnings.py): entries of the month (UTC), their
sum, and the due balance at the time the e-mail is composed.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from api.services.host_earnings import statement_lines
from core.settings import Settings
from mail.outbox import enqueue
from mail.texts import host_statement_mail
from models.db import Customer, HostEarningEntry, Telescope

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
EARN, TELESCOPE, CUSTOMER = HostEarningEntry.__table__, Telescope.__table__, Customer.__table__


def statement_key(host_customer_id: int, month: str) -> str:
    return f"host_statement:{host_customer_id}:{month}"


async def enqueue_host_statements(conn: AsyncConnection, settings: Settings, month: str) -> tuple[int, int]:
    """Put the ``month`` (``YYYY-MM``) statement of every host in the outbox, in ``conn``'s
    transaction (the caller commits). Returns (hosts, newly queued): a second run queues 0.
    Raises ValueError for a malformed month."""
    if not _MONTH.match(month):
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    in_month = sa.func.to_char(sa.func.timezone("UTC", EARN.c.created_at), "YYYY-MM") == month
    hosts = sa.union(sa.select(TELESCOPE.c.host_customer_id.label("id")).where(TELESCOPE.c.host_customer_id.is_not(None)),
                     sa.select(EARN.c.host_customer_id.label("id")).where(in_month)).subquery()
    rows = (await conn.execute(sa.select(CUSTOMER.c.id, CUSTOMER.c.email).join(hosts, hosts.c.id == CUSTOMER.c.id)
                               .order_by(CUSTOMER.c.id))).all()
    queued = 0
    for host in rows:
        lines = await statement_lines(conn, host.id, month)
        due = int((await conn.execute(sa.select(sa.func.coalesce(sa.func.sum(EARN.c.amount_cents), 0)).where(
            EARN.c.account == f"host:{host.id}"))).scalar_one())
        subject, body = host_statement_mail(settings, month, lines, due)
        queued += await enqueue(conn, settings, source_key=statement_key(host.id, month), to=host.email,
                                subject=subject, body=body, customer_id=host.id)
    return len(rows), queued
