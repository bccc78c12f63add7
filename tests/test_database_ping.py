"""The pool's checkout ping (core/database.py): a pooled connection whose server process died is
replaced on checkout, so the request that takes it sees no error; a live one costs one round trip
and no transaction."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from core.database import make_engine

pytestmark = pytest.mark.asyncio


async def test_a_connection_killed_in_the_pool_is_replaced_on_checkout(database_url, engine):
    eng = make_engine(database_url, pool_size=1)
    try:
        async with eng.connect() as conn:
            pid = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
        # Back in the pool; now its server process goes away (a restart, an idle timeout, an operator).
        async with engine.connect() as other:
            killed = (await other.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})).scalar_one()
        assert killed
        async with eng.connect() as conn:
            fresh = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
        assert fresh != pid
    finally:
        await eng.dispose()


async def test_a_checkout_costs_one_empty_query_and_no_transaction(database_url):
    eng = make_engine(database_url, pool_size=1)
    sent: list[str] = []
    try:
        async with eng.connect() as conn:  # the pool's first connection: the logger starts after its checkout
            raw = await conn.get_raw_connection()
            raw.driver_connection.add_query_logger(lambda record: sent.append(record.query))
        async with eng.connect() as conn:  # the same connection again, pinged on its way out of the pool
            await asyncio.sleep(0.05)  # asyncpg calls query loggers on the next loop iterations
            pinged = list(sent)
            await conn.execute(sa.text("SELECT 1"))
        assert pinged == [";"]  # SQLAlchemy's pool_pre_ping would have sent BEGIN, ";", ROLLBACK
    finally:
        await eng.dispose()
