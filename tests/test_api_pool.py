"""The API's pool (core/database.py ``make_engine(keep_overflow=True)``): the connections opened for
a burst past ``pool_size`` are kept for the next one, never more than 2 × ``pool_size`` at once;
the default pool (the worker's) closes them when given back."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import sqlalchemy as sa

from core.database import make_engine

pytestmark = pytest.mark.asyncio


async def _burst(eng, n: int) -> set[int]:
    """Backend pids of ``n`` connections held at once."""
    async with contextlib.AsyncExitStack() as held:
        conns = [await held.enter_async_context(eng.connect()) for _ in range(n)]
        return {(await c.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one() for c in conns}


async def test_connections_opened_for_a_burst_are_kept_for_the_next_one(database_url):
    eng = make_engine(database_url, pool_size=2, keep_overflow=True)
    try:
        first = await _burst(eng, 4)
        assert len(first) == 4
        assert await _burst(eng, 4) == first  # no new backend
        held = [await eng.connect() for _ in range(4)]
        fifth = asyncio.create_task(eng.connect().start())  # waits for one of the four: never a fifth
        await asyncio.sleep(0.5)
        assert not fifth.done()
        await held.pop().close()
        held.append(await asyncio.wait_for(fifth, 30))
        for conn in held:
            await conn.close()
    finally:
        await eng.dispose()


async def test_the_default_pool_closes_its_burst_connections(database_url):
    eng = make_engine(database_url, pool_size=2)
    try:
        first = await _burst(eng, 4)
        again = await _burst(eng, 4)
        assert len(first & again) == 2  # the two kept; the other two were new backends
    finally:
        await eng.dispose()
