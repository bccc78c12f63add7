"""Fixtures of the data-care tests: a migrated database of their own on the session's server (the
retention scan and the backups look at a whole database, not at one test's rows)."""

from __future__ import annotations

from typing import AsyncIterator

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import make_engine
from core.migrate import upgrade_in_thread
from tests.data_care.support import scratch_database


@pytest_asyncio.fixture
async def own_database(engine, database_url) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """``(url, engine)`` of a new database at the migrations' heads, dropped afterwards."""
    async with scratch_database(engine, database_url) as url:
        upgrade_in_thread(url)
        eng = make_engine(url)
        try:
            yield url, eng
        finally:
            await eng.dispose()
