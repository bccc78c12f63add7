"""Async SQLAlchemy engine and sessions (asyncpg). One session per request and per activity call."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

import sqlalchemy as sa
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.util.concurrency import await_
from sqlmodel.ext.asyncio.session import AsyncSession


def make_engine(url: str, pool_size: int = 10, *, keep_overflow: bool = False) -> AsyncEngine:
    """``url``: postgresql+asyncpg://…; timestamps are stored in UTC. A pooled connection is checked
    with one empty query when taken from the pool (:func:`_ping_on_checkout`). At most
    2 × ``pool_size`` connections: ``pool_size`` kept, as many more opened for a burst and closed
    when given back — or, with ``keep_overflow`` (the API), kept too: an API under a steady load
    past ``pool_size`` requests at once would otherwise open a connection (a new PostgreSQL
    backend, its authentication, its statements prepared again) for a request in ten or so."""
    engine = create_async_engine(
        url,
        pool_size=2 * pool_size if keep_overflow else pool_size,
        max_overflow=0 if keep_overflow else pool_size,
        connect_args={"server_settings": {"timezone": "UTC"}},
    )
    sa.event.listen(engine.sync_engine.pool, "checkout", _ping_on_checkout)
    return engine


def _ping_on_checkout(dbapi_connection, connection_record, connection_proxy) -> None:
    """The pool's pessimistic disconnect check in one round trip. SQLAlchemy's ``pool_pre_ping``
    wraps its ping in BEGIN … ROLLBACK for PgBouncer's transaction mode (three round trips per
    checkout, several per request); Stellar talks to PostgreSQL directly. A dead connection raises
    DisconnectionError: the pool drops it and checks out another (SQLAlchemy's "disconnect handling,
    pessimistic" recipe)."""
    try:
        await_(connection_proxy.driver_connection.fetchrow(";"))
    except Exception as exc:  # noqa: BLE001 - any failure means this connection is unusable
        raise DisconnectionError(f"pooled connection failed its ping: {exc!r}") from exc


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A pooled connection on which every statement is a transaction of its own: no BEGIN and
    COMMIT round trips. For a single write statement (a CTE included) — several statements here
    do not commit or roll back together."""
    async with engine.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")


@asynccontextmanager
async def autocommit_session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """An ORM session on :func:`autocommit`'s connection (its ``commit()`` sends nothing)."""
    async with autocommit(engine) as conn:
        async with AsyncSession(bind=conn, expire_on_commit=False) as session:
            yield session


@asynccontextmanager
async def autocommit_on(conn: AsyncConnection) -> AsyncIterator[AsyncConnection]:
    """``conn`` (an idle connection of the caller's: no transaction open) in autocommit for the
    block, then back to transactions — so one pooled connection serves a request's autocommitted
    statement (the rate-limit count, which must stay counted whatever the request does next) and its
    transaction. Switching costs no round trip: asyncpg sends nothing until the next BEGIN. A
    connection already in autocommit (:class:`RequestConnection` ``autocommit=True``) stays so:
    no switch either way."""
    if _in_autocommit(conn):
        yield conn
        await conn.commit()  # closes SQLAlchemy's autobegun transaction; nothing is sent in autocommit
        return
    if conn.in_transaction():
        raise RuntimeError("autocommit_on needs a connection without an open transaction")
    await conn.execution_options(isolation_level="AUTOCOMMIT")
    yield conn
    # On an error the caller gives the connection back as it is: the pool resets its isolation level.
    await conn.commit()  # closes SQLAlchemy's autobegun transaction; nothing is sent in autocommit
    await conn.execution_options(isolation_level=conn.default_isolation_level)


def _in_autocommit(conn: AsyncConnection) -> bool:
    return conn.sync_connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


class RequestConnection:
    """One pooled connection for a request, checked out on first :meth:`get` (a request refused
    before it touches the database costs no checkout) and given back by :meth:`close` — as soon as
    the request's database work is done (``POST /api/orders`` gives it back before it calls
    Temporal), else when the request ends (api/deps.py). A :meth:`get` after :meth:`close` checks
    out another. ``autocommit``: the connection is put in autocommit once, at checkout, for a
    request whose every statement commits itself (``POST /api/orders``): its :func:`autocommit_on`
    blocks then switch nothing (each switch is a SQLAlchemy call, and a reset when the pool takes
    the connection back)."""

    def __init__(self, engine: AsyncEngine, *, autocommit: bool = False) -> None:
        self._engine = engine
        self._autocommit = autocommit
        self._conn: AsyncConnection | None = None

    async def get(self) -> AsyncConnection:
        if self._conn is None:
            conn = await self._engine.connect()
            if self._autocommit:
                try:
                    await conn.execution_options(isolation_level="AUTOCOMMIT")
                except BaseException:
                    await conn.close()
                    raise
            self._conn = conn
        return self._conn

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()
