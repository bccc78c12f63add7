"""Password reset by a link sent by e-mail: signed, expiring, single-use, no account enumeration.

* The link carries ``itsdangerous``'s URL-safe timed signature (the session secret, a salt of its
  own) over ``[customer_id, fingerprint]``; it expires after ``web.reset_link_max_age_seconds``.
* Single use without a token table: ``fingerprint`` is a digest of the customer's password hash
  when the link was made. Setting a password changes the hash, so every earlier link stops
  working — the one just used and any other still in a mailbox (OWASP Forgot Password Cheat Sheet).
* No enumeration: the request page answers the same for a known and an unknown e-mail; the e-mail
  goes through the outbox (docs/mail.md) and only a known one gets a message.
* Rate-limited per e-mail and per client IP (:class:`RequestLimiter`, per API process, like the
  sign-in throttle), whether or not the e-mail has an account.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.settings import Settings
from mail.outbox import enqueue
from mail.texts import password_reset_mail
from models.db import Customer, WebLogin
from web.accounts import set_password

SALT = "stellar-password-reset"


class ResetLinkInvalid(Exception):
    """The link is forged, expired, or was already used (the password changed since)."""


def _fingerprint(customer_id: int, password_hash: str | None) -> str:
    return hashlib.sha256(f"{customer_id}:{password_hash or ''}".encode()).hexdigest()[:24]


def make_token(secret: str, customer_id: int, password_hash: str | None) -> str:
    """A reset token for the customer's current password (``password_hash``: None = no web sign-in yet)."""
    return URLSafeTimedSerializer(secret, salt=SALT).dumps([customer_id, _fingerprint(customer_id, password_hash)])


def _read(secret: str, token: str, max_age: int) -> tuple[int, str]:
    try:
        customer_id, fingerprint = URLSafeTimedSerializer(secret, salt=SALT).loads(token, max_age=max_age)
    except (SignatureExpired, BadSignature, ValueError, TypeError) as exc:
        raise ResetLinkInvalid(str(exc)) from None
    if not isinstance(customer_id, int) or not isinstance(fingerprint, str):
        raise ResetLinkInvalid("malformed")
    return customer_id, fingerprint


async def _locked_customer(session: AsyncSession, secret: str, token: str, max_age: int,
                           lock: bool) -> Customer:
    customer_id, fingerprint = _read(secret, token, max_age)
    query = select(Customer).where(Customer.id == customer_id)
    customer = (await session.exec(query.with_for_update() if lock else query)).first()
    if customer is None:
        raise ResetLinkInvalid("no such customer")
    login = await session.get(WebLogin, customer_id, populate_existing=True)
    if fingerprint != _fingerprint(customer_id, login.password_hash if login else None):
        raise ResetLinkInvalid("already used")
    return customer


async def check_link(session: AsyncSession, secret: str, token: str, max_age: int) -> Customer:
    """The customer a still-valid link belongs to. Raises ResetLinkInvalid."""
    return await _locked_customer(session, secret, token, max_age, lock=False)


async def reset_password(session: AsyncSession, secret: str, token: str, max_age: int, password: str) -> Customer:
    """Set the password the link allows, once. The customer row is locked, so two submissions of
    one link cannot both pass. Commits. Raises ResetLinkInvalid, Unprocessable (password length)."""
    customer = await _locked_customer(session, secret, token, max_age, lock=True)
    await set_password(session, customer.id, password)
    return customer


async def request_reset(session: AsyncSession, settings: Settings, secret: str, email: str, lang: str) -> bool:
    """Put a reset e-mail for ``email`` in the outbox when it has an account; True when it does.
    The caller answers the same either way. Commits."""
    customer = (await session.exec(select(Customer).where(Customer.email == email.strip().lower()))).first()
    if customer is None:
        return False
    login = await session.get(WebLogin, customer.id)
    token = make_token(secret, customer.id, login.password_hash if login else None)
    subject, body = password_reset_mail(settings, token, lang, settings.web.reset_link_max_age_seconds // 60)
    await enqueue(await session.connection(), settings, to=customer.email, subject=subject, body=body,
                  customer_id=customer.id,
                  source_key=f"password_reset:{customer.id}:{hashlib.sha256(token.encode()).hexdigest()[:32]}")
    await session.commit()
    return True


class RequestLimiter:
    """At most ``limit`` requests per key in any ``window`` seconds (sliding window, in-process)."""

    def __init__(self, limit: int, window: float, clock=time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count a request for ``key``; False when it is over the limit (then it is not counted)."""
        now = self._clock()
        with self._lock:
            times = self._seen.setdefault(key, deque())
            while times and now - times[0] >= self.window:
                times.popleft()
            if len(times) >= self.limit:
                return False
            times.append(now)
            return True
