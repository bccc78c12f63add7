"""Rate limits that hold behind several API processes, and a cap on concurrent event streams.

* :class:`SharedRateLimiter` — per API key, a fixed-window counter in PostgreSQL
  (``rate_limit_counter``): every API process counts in the same row, so N replicas do not
  multiply the limit. One upsert per request, in the same statement as the API key lookup
  (:meth:`SharedRateLimiter.hit_if`); rows of past windows are deleted as it goes. A fixed
  window lets a client burst up to twice the limit across a window boundary, never more.
* :class:`StreamCap` — open Server-Sent Event streams per key, in this process (a stream holds a
  process's resources, not the database's).

Per client IP, before any key lookup, the in-process token buckets of ``api.security.RateLimiter``
apply (``api/deps.py``): refusing there costs no database query.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import AsyncIterator, Callable

from sqlalchemy import BigInteger, Integer, Row, Select, String, bindparam, delete, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.database import autocommit, autocommit_on
from models.db import RateLimitCounter

_COUNTER = RateLimitCounter.__table__


class SharedRateLimiter:
    """``limit`` requests per ``window_seconds`` per key, counted in PostgreSQL.

    ``clock``: epoch seconds (tests may pass their own). Raises the database's connection errors
    (the API answers 503 ``database_unavailable``).
    """

    def __init__(self, engine: AsyncEngine, limit: int, window_seconds: int = 60,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.limit = limit
        self.window = window_seconds
        self.clock = clock
        self._purged_window: int | None = None

    async def hit(self, key: str) -> int | None:
        """Count one request of ``key`` (≤ 128 chars). None = allowed; else seconds until the
        window ends (``Retry-After``, ≥ 1)."""
        now = self.clock()
        start = int(now // self.window) * self.window
        stmt = pg_insert(_COUNTER).values(key=key, window_start=start, hits=1)
        stmt = self._count(stmt).returning(_COUNTER.c.hits)
        async with self.engine.begin() as conn:
            hits = (await conn.execute(stmt)).scalar_one()
            await self._purge(conn, start)
        return self._retry_after(hits, start, now)

    async def hit_if(self, key: str, query: Select,
                     conn: AsyncConnection | None = None) -> tuple[Row | None, int | None]:
        """Run ``query`` (at most one row) and, only when it finds a row, count one request of
        ``key`` — one statement, one round trip (the API key lookup, ``api.security``). Returns
        (the row, with a ``hits`` column added, or None; ``Retry-After`` as :meth:`hit`).

        ``conn``: the request's own connection, idle (no transaction open); the statement runs on
        it in autocommit, so the count stays committed whatever the request does next (a refused
        or failed request still counted), and the request's transaction then uses the same
        connection (one pool checkout per request). None: a pooled connection of its own."""
        return await self.hit_counting(key, self.counting(query), {}, conn)

    @classmethod
    def counting(cls, query: Select) -> Select:
        """The statement :meth:`hit_if` runs for ``query``, its counter's key and window left as
        bind parameters: build it once and run it with :meth:`hit_counting` (SQLAlchemy then
        compiles it once, and a request spends no time building it)."""
        found = query.cte("found")
        counted = cls._count(pg_insert(_COUNTER).from_select(
            ["key", "window_start", "hits"],
            select(bindparam("rate_limit_key", type_=String), bindparam("rate_limit_window", type_=BigInteger),
                   literal(1, Integer)).select_from(found),
        )).returning(_COUNTER.c.hits).cte("counted")
        return select(found, select(counted.c.hits).scalar_subquery().label("hits"))

    async def hit_counting(self, key: str, statement: Select, params: dict,
                           conn: AsyncConnection | None = None) -> tuple[Row | None, int | None]:
        """:meth:`hit_if` with a statement built by :meth:`counting`; ``params``: its query's own
        bind parameters."""
        now = self.clock()
        start = int(now // self.window) * self.window
        # One statement: no BEGIN/COMMIT to send.
        async with (autocommit_on(conn) if conn is not None else autocommit(self.engine)) as on:
            row = (await on.execute(statement, {**params, "rate_limit_key": key, "rate_limit_window": start})).first()
            await self._purge(on, start)
        if row is None:
            return None, None
        return row, self._retry_after(row.hits, start, now)

    @staticmethod
    def _count(stmt):
        return stmt.on_conflict_do_update(index_elements=[_COUNTER.c.key, _COUNTER.c.window_start],
                                          set_={"hits": _COUNTER.c.hits + 1})

    async def _purge(self, conn, start: int) -> None:
        if self._purged_window != start:
            # Once per window per process: earlier windows can no longer refuse anything.
            await conn.execute(delete(_COUNTER).where(_COUNTER.c.window_start < start))
            self._purged_window = start

    def _retry_after(self, hits: int, start: int, now: float) -> int | None:
        if hits <= self.limit:
            return None
        return max(1, math.ceil(start + self.window - now))


class TooManyStreams(Exception):
    """The key already has ``limit`` open streams."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} event streams may be open per API key")
        self.limit = limit


class StreamCap:
    """At most ``limit`` concurrent streams per key in this process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def open_count(self, key: str) -> int:
        return self._open.get(key, 0)

    def acquire(self, key: str) -> None:
        """Take a slot. Raises TooManyStreams."""
        if self._open.get(key, 0) >= self.limit:
            raise TooManyStreams(self.limit)
        self._open[key] = self._open.get(key, 0) + 1

    def release(self, key: str) -> None:
        left = self._open.get(key, 0) - 1
        if left > 0:
            self._open[key] = left
        else:
            self._open.pop(key, None)

    @contextlib.asynccontextmanager
    async def held(self, key: str) -> AsyncIterator[None]:
        """Hold an already acquired slot for the life of a stream, releasing it at the end."""
        try:
            yield
        finally:
            self.release(key)
