"""Deliver the outbox (``mail_message``) over SMTP: claim with a lease, send, mark sent.

One round (:meth:`MailSender.run_once`):

1. **Claim** up to ``batch`` due messages in one short transaction: ``SELECT … FOR UPDATE SKIP
   LOCKED`` picks pending messages whose ``next_attempt_at`` has come and whose lease is free or
   expired, and the same statement stamps ``lease_owner`` and ``lease_until`` (database clock) and
   counts the attempt. Concurrent senders therefore never claim the same message.
2. **Send** each over one SMTP connection (stdlib ``smtplib`` in a thread), with the
   ``Message-ID`` fixed when the message entered the outbox.
3. **Mark** it ``sent`` (``sent_at``) right after the server accepted it, only while the lease is
   still ours. A refused recipient or another 5xx answer marks it ``failed``; a 4xx, a refused
   connection or a timeout frees it for a later attempt (``retry_base_seconds`` doubled per
   attempt, at most an hour) until ``max_attempts``.

SMTP is not transactional: a crash between the server's "250 OK" and step 3 leaves the message
pending, and once its lease ends it is sent again, with the same ``Message-ID``. That is the one
at-least-once edge (docs/mail.md); receiving systems drop a second copy by its ``Message-ID``, so
the customer reads it once.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import socket
import ssl
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import MailSettings, Settings
from mail.ledger_notices import compose_ledger_notices
from mail.outbox import compose_order_events
from models.db import MailMessage, OrderEvent

log = structlog.get_logger(__name__)

_T = MailMessage.__table__
MAX_BACKOFF_SECONDS = 3600.0


@dataclass(frozen=True)
class Claimed:
    """A message this sender holds the lease of."""

    id: int
    message_id: str
    to_address: str
    subject: str
    body: str
    attempts: int
    order_event_id: int | None


@dataclass
class Round:
    """What one round did: message ids sent, put back for a retry, and given up."""

    sent: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


class _Permanent(Exception):
    """The server refused the message for good (5xx): retrying cannot help."""


def build_email(mail: MailSettings, m: Claimed) -> EmailMessage:
    """The RFC 5322 message of ``m`` (plain text, UTF-8)."""
    msg = EmailMessage()
    msg["From"] = mail.from_address
    msg["To"] = m.to_address
    msg["Subject"] = m.subject
    msg["Message-ID"] = m.message_id
    msg["Date"] = formatdate(usegmt=True)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    msg.set_content(m.body)
    return msg


class MailSender:
    """Delivers the outbox. ``owner``: this sender's name in ``lease_owner`` (host:pid:random)."""

    def __init__(self, engine: AsyncEngine, settings: Settings, owner: str | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.mail = settings.mail
        self.owner = owner or f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    async def compose(self) -> int:
        """Turn pending order events and new ledger lines into outbox messages (one transaction
        each); returns how many events and lines were read."""
        async with self.engine.begin() as conn:
            events = await compose_order_events(conn, self.settings)
        async with self.engine.begin() as conn:
            return events + await compose_ledger_notices(conn, self.settings)

    async def claim(self, batch: int = 50) -> list[Claimed]:
        """Lease up to ``batch`` due messages to this sender (committed before any sending)."""
        now = sa.func.now()
        due = (sa.select(_T.c.id)
               .where(_T.c.status == "pending", _T.c.next_attempt_at <= now,
                      sa.or_(_T.c.lease_until.is_(None), _T.c.lease_until < now))
               .order_by(_T.c.id).limit(batch).with_for_update(skip_locked=True))
        async with self.engine.begin() as conn:
            rows = (await conn.execute(
                sa.update(_T).where(_T.c.id.in_(due))
                .values(lease_owner=self.owner, lease_until=now + timedelta(seconds=self.mail.lease_seconds),
                        attempts=_T.c.attempts + 1)
                .returning(_T.c.id, _T.c.message_id, _T.c.to_address, _T.c.subject, _T.c.body, _T.c.attempts,
                           _T.c.order_event_id))).all()
        return sorted((Claimed(*r) for r in rows), key=lambda m: m.id)

    async def run_once(self, batch: int = 50, *, compose: bool = True) -> Round:
        """Compose (unless ``compose`` is False: deliver what is already in the outbox), claim,
        send and mark one batch. Raises only database errors."""
        if compose:
            await self.compose()
        claimed = await self.claim(batch)
        done = Round()
        if not claimed:
            return done
        try:
            smtp = await asyncio.to_thread(self._connect)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("mail.smtp_unreachable", host=self.mail.host, port=self.mail.port, error=str(exc))
            for m in claimed:
                await self._give_back(m, f"connect: {exc}", done)
            return done
        try:
            for m in claimed:
                try:
                    await asyncio.to_thread(self._send, smtp, m)
                except _Permanent as exc:
                    await self._fail(m, str(exc), done)
                except (OSError, smtplib.SMTPException) as exc:
                    await self._give_back(m, str(exc), done)
                else:
                    await self._mark_sent(m, done)
        finally:
            await asyncio.to_thread(self._quit, smtp)
        return done

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Rounds every ``mail.every_seconds`` until ``stop`` is set; a failed round is logged and
        the next one tries again (the database or the SMTP server may be back)."""
        log.info("mail.sender_started", owner=self.owner, host=self.mail.host, port=self.mail.port)
        while not stop.is_set():
            try:
                done = await self.run_once()
                if done.sent or done.retried or done.failed:
                    log.info("mail.round", sent=len(done.sent), retried=len(done.retried), failed=len(done.failed))
            except Exception as exc:  # noqa: BLE001 — a loop that must outlive outages
                log.warning("mail.round_failed", error=repr(exc))
            try:
                async with asyncio.timeout(self.mail.every_seconds):
                    await stop.wait()
            except asyncio.TimeoutError:
                pass

    # -- SMTP (blocking; run in a thread) ----------------------------------------------------
    def _connect(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.mail.host or "127.0.0.1", self.mail.port, timeout=self.mail.timeout_seconds)
        try:
            smtp.ehlo()
            if self.mail.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.mail.username:
                smtp.login(self.mail.username, self.mail.password.get_secret_value())
        except BaseException:
            self._quit(smtp)
            raise
        return smtp

    def _send(self, smtp: smtplib.SMTP, m: Claimed) -> None:
        try:
            refused = smtp.send_message(build_email(self.mail, m))
        except smtplib.SMTPRecipientsRefused as exc:
            raise _Permanent(f"recipient refused: {exc.recipients}") from exc
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                raise _Permanent(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
            raise
        if refused:  # one recipient per message: a partial refusal is a refusal
            raise _Permanent(f"recipient refused: {refused}")

    @staticmethod
    def _quit(smtp: smtplib.SMTP) -> None:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()

    # -- marks ---------------------------------------------------------------------------------
    def _ours(self, m: Claimed):
        return sa.and_(_T.c.id == m.id, _T.c.lease_owner == self.owner, _T.c.status == "pending")

    async def _mark_sent(self, m: Claimed, done: Round) -> None:
        async with self.engine.begin() as conn:
            res = await conn.execute(sa.update(_T).where(self._ours(m)).values(
                status="sent", sent_at=sa.func.now(), lease_until=None, lease_owner=None, last_error=""))
            if m.order_event_id is not None:
                await conn.execute(sa.update(OrderEvent.__table__)
                                   .where(OrderEvent.__table__.c.id == m.order_event_id)
                                   .values(email_status="sent"))
        if res.rowcount == 0:
            # Our lease ran out while sending and another sender may have sent it too (same Message-ID).
            log.warning("mail.lease_lost", mail_id=m.id, message_id=m.message_id)
        else:
            log.info("mail.sent", mail_id=m.id, message_id=m.message_id, attempts=m.attempts)
        done.sent.append(m.id)

    async def _fail(self, m: Claimed, error: str, done: Round) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.update(_T).where(self._ours(m)).values(
                status="failed", lease_until=None, lease_owner=None, last_error=error[:1000]))
        log.warning("mail.failed", mail_id=m.id, error=error)
        done.failed.append(m.id)

    async def _give_back(self, m: Claimed, error: str, done: Round) -> None:
        if m.attempts >= self.mail.max_attempts:
            await self._fail(m, f"after {m.attempts} attempts: {error}", done)
            return
        wait = min(self.mail.retry_base_seconds * 2 ** (m.attempts - 1), MAX_BACKOFF_SECONDS)
        async with self.engine.begin() as conn:
            await conn.execute(sa.update(_T).where(self._ours(m)).values(
                next_attempt_at=sa.func.now() + timedelta(seconds=wait), lease_until=None, lease_owner=None,
                last_error=error[:1000]))
        log.info("mail.retry_later", mail_id=m.id, attempts=m.attempts, wait_seconds=wait, error=error)
        done.retried.append(m.id)
