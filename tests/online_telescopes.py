"""The guard against telescopes left online in the session's shared database (tests/conftest.py).

An ``any`` order goes to the online telescope that fits best: one test's telescope left online (a
Chile site, say) takes a later, unrelated test's order. The guard compares the online telescopes
after each test that used the shared database with those online when the session's database was
migrated; a difference fails that test, names the telescopes, and puts them back as they were, so
the leak fails where it happens and only there (docs/telescopes.md: online, maintenance, retired).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from core.threads import call_on_own_thread
from models.db import Telescope
from models.telescopes import TelescopeStatus

_TABLE = Telescope.__table__
ONLINE = TelescopeStatus.ONLINE.value
RETIRED = TelescopeStatus.RETIRED.value
T = TypeVar("T")


async def online_slugs(engine: AsyncEngine) -> frozenset[str]:
    """Slugs of the telescopes whose ``status`` is ``online`` (one SELECT)."""
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(_TABLE.c.slug).where(_TABLE.c.status == ONLINE))
        return frozenset(rows.scalars())


def on_own_engine(database_url: str, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """``work(engine)`` from synchronous code or outside the session's event loop: on an engine and
    an event loop of its own, in a thread, so it meets no loop of the caller's. Blocking."""
    from core.database import make_engine

    async def run() -> T:
        engine = make_engine(database_url, pool_size=1)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return call_on_own_thread(lambda: asyncio.run(run()), name="online-telescopes")


async def restore_and_describe(engine: AsyncEngine, at_start: frozenset[str], test: str) -> str | None:
    """None when the online telescopes are those of ``at_start``; else put them back (those left
    online retired, those of ``at_start`` taken out of service online again) and say what ``test``
    changed and how to fix it."""
    now = await online_slugs(engine)
    left_online, taken_offline = sorted(now - at_start), sorted(at_start - now)
    if not left_online and not taken_offline:
        return None
    async with engine.begin() as conn:
        if left_online:
            await conn.execute(_TABLE.update().where(_TABLE.c.slug.in_(left_online)).values(status=RETIRED))
        if taken_offline:
            await conn.execute(_TABLE.update().where(_TABLE.c.slug.in_(taken_offline)).values(status=ONLINE))
    parts = []
    if left_online:
        parts.append(f"left telescope(s) {', '.join(left_online)} online (now retired by the guard): "
                     "retire them in the test's cleanup, or give the test a database of its own "
                     "(tests/scratch_db.py)")
    if taken_offline:
        parts.append(f"took telescope(s) {', '.join(taken_offline)} out of service without putting them back "
                     "(now online again): restore their status in the test's cleanup")
    return f"{test} " + "; it ".join(parts) + ". Other tests' 'any' orders would have gone elsewhere."
