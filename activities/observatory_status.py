"""Voyager as last seen by the observatory monitor, kept in ``observatory_status``.

The monitor polls the telescope anyway; recording what it saw lets ``GET /health/ready`` report
Voyager without opening a connection of its own per probe. Writes are throttled: one on every
change of state, else one every ``REFRESH_SECONDS`` so readers can tell a stale row from a live one.
A poll that answered also stamps the telescope row's ``last_seen_at`` (same slug).
"""

from __future__ import annotations

import time

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from activities._db import sql
from models.db import ObservatoryStatus, Telescope

#: Seconds between two writes of an unchanged state.
REFRESH_SECONDS = 30.0


class ObservatoryStatusRecorder:
    """Upserts one telescope's row; ``clock``: monotonic seconds (tests may pass their own)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], telescope: str, clock=time.monotonic) -> None:
        self.sessionmaker = sessionmaker
        self.telescope = telescope
        self._clock = clock
        self._last: tuple[bool, float] | None = None

    async def record(self, ok: bool, detail: str) -> bool:
        """Record a poll's outcome; returns whether a row was written (False: throttled)."""
        now = self._clock()
        if self._last is not None and self._last[0] == ok and now - self._last[1] < REFRESH_SECONDS:
            return False
        table = ObservatoryStatus.__table__
        values = {"telescope": self.telescope, "ok": ok, "detail": detail[:500], "checked_at": func.now()}
        if ok:
            values["last_ok_at"] = func.now()
        stmt = pg_insert(table).values(**values)
        stmt = stmt.on_conflict_do_update(index_elements=[table.c.telescope],
                                          set_={k: stmt.excluded[k] for k in values if k != "telescope"})
        async with self.sessionmaker() as session:
            await sql(session, stmt)
            if ok:  # the telescope's ``last_seen_at`` (docs/telescopes.md §1)
                await sql(session, update(Telescope).where(Telescope.slug == self.telescope)
                          .values(last_seen_at=func.now()))
            await session.commit()
        self._last = (ok, now)
        return True
