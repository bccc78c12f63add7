"""Fixtures of the data-care tests: a migrated database of their own on the session's server (the
retention scan and the backups look at a whole database, not at one test's rows)."""

from __future__ import annotations

from typing import AsyncIterator

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import make_engine
from tests.scratch_db import scratch_database


@pytest_asyncio.fixture
async def own_database(engine, database_url) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """``(url, engine)`` of a new database at the migrations' heads, dropped afterwards."""
    async with scratch_database(engine, database_url, at_head=True) as url:
        eng = make_engine(url)
        try:
            yield url, eng
        finally:
            await eng.dispose()


@pytest_asyncio.fixture(scope="session")
async def skipping_clock_env() -> AsyncIterator:
    """A time-skipping test server of these tests' own: they move its clock by weeks, which the
    shared ``time_skipping_env`` of the order-workflow tests must not see."""
    from temporalio.testing import WorkflowEnvironment

    from core.temporal import DATA_CONVERTER, temporal_test_server_path

    from tests.conftest import SERVER_STARTUP

    env = await WorkflowEnvironment.start_time_skipping(data_converter=DATA_CONVERTER,
                                                        test_server_existing_path=temporal_test_server_path(),
                                                        test_server_startup_timeout=SERVER_STARTUP)
    yield env
    await env.shutdown()
