"""A scratch database on the session's PostgreSQL server, dropped afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import AsyncIterator

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

#: Per session database URL: the name of a database migrated to head that nobody connects to.
_HEAD_TEMPLATES: dict[str, str] = {}


async def _autocommit(engine: AsyncEngine, statement: str) -> None:
    async with engine.connect() as conn:
        await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(sa.text(statement))


def database_url_named(database_url: str, name: str) -> str:
    """``database_url`` (postgresql+asyncpg://…) with its database replaced by ``name``."""
    return make_url(database_url).set(database=name).render_as_string(hide_password=False)


async def head_template(engine: AsyncEngine, database_url: str) -> str:
    """The name of a database at the migrations' head on ``database_url``'s server, migrated once per
    session (process) and never connected to afterwards, so ``CREATE DATABASE … TEMPLATE`` can copy it:
    a copy takes a fraction of a second where a full ``alembic upgrade`` takes seconds."""
    if database_url not in _HEAD_TEMPLATES:
        from core.migrate import upgrade_in_thread

        name = f"stellar_head_tmpl_{uuid.uuid4().hex[:8]}"
        await _autocommit(engine, f'CREATE DATABASE "{name}"')
        try:
            await asyncio.to_thread(upgrade_in_thread, database_url_named(database_url, name))
        except BaseException:
            await _autocommit(engine, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            raise
        _HEAD_TEMPLATES[database_url] = name
    return _HEAD_TEMPLATES[database_url]


async def drop_head_template(engine: AsyncEngine, database_url: str) -> None:
    """Drop :func:`head_template`'s database, if this session made one (the session's end)."""
    name = _HEAD_TEMPLATES.pop(database_url, None)
    if name is not None:
        await _autocommit(engine, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def scratch_database(engine: AsyncEngine, database_url: str, *, at_head: bool = False) -> AsyncIterator[str]:
    """Create a database beside ``database_url``'s; yields its URL, drops it at the end.

    Empty, or with ``at_head`` already migrated to head (a copy of :func:`head_template`) — for tests
    that need a whole database of their own, not for migration tests (they upgrade from an older
    revision with :func:`scratch_database_at`)."""
    name = f"stellar_scratch_{uuid.uuid4().hex[:8]}"
    template = f' TEMPLATE "{await head_template(engine, database_url)}"' if at_head else ""
    await _autocommit(engine, f'CREATE DATABASE "{name}"{template}')
    try:
        yield database_url_named(database_url, name)
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
