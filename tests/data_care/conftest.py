"""Fixtures of the data-care tests: a migrated database of their own on the session's server (the
retention scan and the backups look at a whole database, not at one test's rows)."""

from __future__ import annotations

import uuid
from typing import AsyncIterator

import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import make_engine
from core.migrate import upgrade_in_thread


async def _autocommit(engine: AsyncEngine, statement: str) -> None:
    async with engine.connect() as conn:
        await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(sa.text(statement))


@pytest_asyncio.fixture
async def own_database(engine, database_url) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """``(url, engine)`` of a new database at the migrations' head, dropped afterwards."""
    name = f"stellar_dc_{uuid.uuid4().hex[:8]}"
    await _autocommit(engine, f'CREATE DATABASE "{name}"')
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    upgrade_in_thread(url)
    eng = make_engine(url)
    try:
        yield url, eng
    finally:
        await eng.dispose()
        await _autocommit(engine, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
