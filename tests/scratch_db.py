"""A scratch database on the session's PostgreSQL server, dropped afterwards."""

from __future__ import annotations

import contextlib
import uuid
from typing import AsyncIterator

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine


async def _autocommit(engine: AsyncEngine, statement: str) -> None:
    async with engine.connect() as conn:
        await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(sa.text(statement))


@contextlib.asynccontextmanager
async def scratch_database(engine: AsyncEngine, database_url: str) -> AsyncIterator[str]:
    """Create an empty database beside ``database_url``'s; yields its URL, drops it at the end."""
    name = f"stellar_scratch_{uuid.uuid4().hex[:8]}"
    await _autocommit(engine, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await _autocommit(engine, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def insert_as_of_revision(conn: sa.ext.asyncio.AsyncConnection, row, **old_columns) -> int:
    """Insert an ORM ``row`` into a database at an older revision: only the columns its table has
    there (today's models may have more), with the row's Python-side defaults, plus ``old_columns``
    (columns since renamed or dropped, e.g. ``credits_refunded=0``); returns the new id."""
    table = await conn.run_sync(lambda c: sa.Table(row.__tablename__, sa.MetaData(), autoload_with=c))
    values = {c.name: getattr(row, c.name) for c in table.columns
              if getattr(row, c.name, None) is not None} | old_columns
    return (await conn.execute(table.insert().values(**values).returning(table.c.id))).scalar_one()


@contextlib.asynccontextmanager
async def scratch_database_at(engine: AsyncEngine, database_url: str, revision: str) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A scratch database migrated up to ``revision``: yields its URL and an engine on it (disposed,
    and the database dropped, at the end). For tests that upgrade a database holding data."""
    from core.database import make_engine
    from core.migrate import upgrade_in_thread

    async with scratch_database(engine, database_url) as url:
        upgrade_in_thread(url, revision)
        scratch = make_engine(url)
        try:
            yield url, scratch
        finally:
            await scratch.dispose()
