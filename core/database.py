"""Async SQLAlchemy engine and sessions (asyncpg). One session per request and per activity call."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession


def make_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    """``url``: postgresql+asyncpg://…; timestamps are stored in UTC."""
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"server_settings": {"timezone": "UTC"}},
    )


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
