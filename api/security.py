"""API keys and roles: ``sk_`` + ``secrets.token_urlsafe(32)``, stored as a SHA-256 hex digest.

The clear key is shown once (on creation or rotation) and never stored. Roles: ``customer``,
``support`` (reads every order, aborts, adjusts credits), ``admin`` (creates customers; has every
support right). Every key acts on its own customer row's orders, images and ledger.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache

from sqlalchemy import ColumnElement, Row, Select, String, bindparam, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.rate_limits import SharedRateLimiter
from models.db import ApiKey, Customer

ROLES = ("customer", "support", "admin")
#: Which roles satisfy a required role.
ROLE_GRANTS: dict[str, frozenset[str]] = {
    "customer": frozenset(ROLES),
    "support": frozenset({"support", "admin"}),
    "admin": frozenset({"admin"}),
}
KEY_PREFIX = "sk_"
#: Audit columns (``ledger_entry.actor``, ``order.aborted_by``) and ``requested_by`` hold 255.
MAX_ACTOR = 255
_DISPLAY_PREFIX_LEN = 10


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's customer, role and key id (for rotation and rate limits)."""

    customer_id: int
    email: str
    role: str
    key_id: int
    key_hash: str

    @property
    def actor(self) -> str:
        """Audit name, e.g. ``support:alice@example.com`` (ledger ``actor``, abort ``requested_by``),
        at most ``MAX_ACTOR`` characters: a longer e-mail (up to 320) is cut and the customer id
        added, so the name stays unique and fits the audit columns."""
        full = f"{self.role}:{self.email}"
        if len(full) <= MAX_ACTOR:
            return full
        prefix = f"{self.role}:#{self.customer_id}:"
        return prefix + self.email[: MAX_ACTOR - len(prefix) - 1] + "…"

    def has_role(self, role: str) -> bool:
        return self.role in ROLE_GRANTS[role]


def generate_api_key() -> str:
    """A new clear key: ``sk_`` + 43 URL-safe characters (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """SHA-256 hex digest (64 chars) — what ``api_key.key_hash`` stores."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


async def issue_key(session: AsyncSession, customer_id: int, role: str) -> tuple[ApiKey, str]:
    """Create a key row for ``customer_id`` (caller commits). Returns (row, clear key).

    Raises ValueError for an unknown role.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    clear = generate_api_key()
    row = ApiKey(customer_id=customer_id, prefix=clear[:_DISPLAY_PREFIX_LEN], key_hash=hash_api_key(clear), role=role)
    session.add(row)
    await session.flush()
    return row, clear


def _lookup(extra: Callable[[ColumnElement[int]], Sequence[ColumnElement]] | None = None):
    """The live key whose hash is the bind parameter ``key_hash``, with its customer: (key_id,
    role, customer_id, email), and the columns ``extra(customer id column)`` adds."""
    return (select(ApiKey.id.label("key_id"), ApiKey.role, Customer.id.label("customer_id"), Customer.email,
                   *(extra(Customer.id) if extra is not None else ()))
            .join(Customer, Customer.id == ApiKey.customer_id)
            .where(ApiKey.key_hash == bindparam("key_hash", type_=String), ApiKey.revoked_at.is_(None)))


@cache
def _counted_lookup(extra: Callable[[ColumnElement[int]], Sequence[ColumnElement]] | None) -> Select:
    """The key lookup and its count (:meth:`SharedRateLimiter.counting`), built once per ``extra``."""
    return SharedRateLimiter.counting(_lookup(extra))


def plausible_key(key: str) -> bool:
    """Shaped like a Stellar key (``sk_…``, at most 200 characters): worth a database lookup."""
    return key.startswith(KEY_PREFIX) and len(key) <= 200


async def authenticate_counted(limiter: SharedRateLimiter, key: str,
                               conn: AsyncConnection | None = None) -> tuple[Principal | None, int | None]:
    """The principal of a clear key (None when unknown or revoked) and, for a live key, one
    request counted against its shared per-key limit (``key:<hash>``, api/rate_limits.py), in one
    statement, committed at once. Returns (principal or None, ``Retry-After`` seconds when over the
    limit, else None); an unknown key counts nothing. ``conn``: the request's idle connection to
    run on (:meth:`SharedRateLimiter.hit_if`), else a pooled one of its own."""
    principal, retry_after, _ = await authenticate_with(limiter, key, conn)
    return principal, retry_after


async def authenticate_with(
    limiter: SharedRateLimiter, key: str, conn: AsyncConnection | None = None,
    extra: Callable[[ColumnElement[int]], Sequence[ColumnElement]] | None = None, params: dict | None = None,
) -> tuple[Principal | None, int | None, Row | None]:
    """:func:`authenticate_counted`, the same statement also reading ``extra(customer id column)``
    (what the route needs of the caller's rows: api/services/order_context.py) with ``params``, its
    bind parameters. ``extra`` is called once per process: a module-level function. Returns
    (principal or None, ``Retry-After`` or None, the statement's row or None)."""
    if not plausible_key(key):
        return None, None, None
    digest = hash_api_key(key)
    row, retry_after = await limiter.hit_counting(f"key:{digest}", _counted_lookup(extra),
                                                  {"key_hash": digest, **(params or {})}, conn)
    if row is None:
        return None, None, None
    return Principal(customer_id=row.customer_id, email=row.email, role=row.role, key_id=row.key_id,
                     key_hash=digest), retry_after, row


async def rotate_key(session: AsyncSession, principal: Principal) -> tuple[ApiKey, str]:
    """Revoke the caller's key and issue a new one with the same role (caller commits)."""
    await session.exec(
        update(ApiKey).where(ApiKey.id == principal.key_id).values(revoked_at=datetime.now(timezone.utc))
    )
    return await issue_key(session, principal.customer_id, principal.role)


class RateLimiter:
    """Token bucket per key: ``per_minute`` requests, refilled continuously, bursts up to the same.

    In-process: used per client IP before authentication (``api/deps.py``), where refusing must
    cost no database query; per-key limits shared by every process are ``api.rate_limits``.
    At most ``max_keys`` buckets are kept; past that, buckets that have refilled are dropped.
    """

    def __init__(self, per_minute: int, clock=time.monotonic, max_keys: int = 100_000) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _tokens(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - last) * self.rate)

    def _wait(self, tokens: float) -> int:
        return max(1, math.ceil((1.0 - tokens) / self.rate))

    def blocked(self, key: str) -> int | None:
        """Like :meth:`check` without taking a token: None = a token is there; else seconds to wait."""
        with self._lock:
            tokens = self._tokens(key, self._clock())
        return None if tokens >= 1.0 else self._wait(tokens)

    def check(self, key: str) -> int | None:
        """Take a token for ``key``. None = allowed; else seconds to wait (``Retry-After``, ≥ 1)."""
        now = self._clock()
        with self._lock:
            if len(self._buckets) >= self._max_keys and key not in self._buckets:
                self._prune(now)
            tokens = self._tokens(key, now)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return None
            self._buckets[key] = (tokens, now)
            return self._wait(tokens)

    def _prune(self, now: float) -> None:
        full = [k for k in self._buckets if self._tokens(k, now) >= self.capacity]
        for k in full:
            del self._buckets[k]
