"""A request's connection (core/database.py ``RequestConnection``): in autocommit from its checkout
(``POST /api/orders``), each statement is committed on its own and the connection goes back to the
pool in the default isolation level, so the next checkout of it runs transactions again; without
autocommit, ``autocommit_on`` switches it for the block and back."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from core.database import RequestConnection, autocommit_on, make_engine

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def table(engine):
    name = f"t_request_conn_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"CREATE TABLE {name} (v int)"))
    yield name
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"DROP TABLE {name}"))


async def _values(engine, table: str) -> list[int]:
    async with engine.connect() as conn:
        return list((await conn.execute(sa.text(f"SELECT v FROM {table} ORDER BY v"))).scalars())


async def test_an_autocommit_request_connection_commits_each_statement_and_returns_to_transactions(
        database_url, engine, table):
    eng = make_engine(database_url, pool_size=1)
    try:
        held = RequestConnection(eng, autocommit=True)
        conn = await held.get()
        pid = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
        async with autocommit_on(conn) as on:  # already in autocommit: nothing to switch
            await on.execute(sa.text(f"INSERT INTO {table} VALUES (1)"))
        async with autocommit_on(conn) as on:
            await on.execute(sa.text(f"INSERT INTO {table} VALUES (2)"))
            assert await _values(engine, table) == [1, 2]  # committed, the request still running
        await held.close()

        async with eng.connect() as again:  # the same pooled connection, back in transactions
            assert (await again.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one() == pid
            await again.execute(sa.text(f"INSERT INTO {table} VALUES (3)"))
            await again.rollback()
        assert await _values(engine, table) == [1, 2]
    finally:
        await eng.dispose()


async def test_autocommit_on_switches_a_transactional_connection_for_the_block_only(database_url, engine, table):
    eng = make_engine(database_url, pool_size=1)
    try:
        held = RequestConnection(eng)
        conn = await held.get()
        async with autocommit_on(conn) as on:
            await on.execute(sa.text(f"INSERT INTO {table} VALUES (1)"))
        assert await _values(engine, table) == [1]
        await conn.execute(sa.text(f"INSERT INTO {table} VALUES (2)"))
        await conn.rollback()
        assert await _values(engine, table) == [1]
        await held.close()
    finally:
        await eng.dispose()
