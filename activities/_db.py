"""Plain SQLAlchemy Core statements inside a sqlmodel session's transaction.

sqlmodel deprecates ``AsyncSession.execute``; Core statements (aggregates, upserts) run on the
session's connection instead, in the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Result
from sqlmodel.ext.asyncio.session import AsyncSession


async def sql(session: AsyncSession, statement: Any) -> Result[Any]:
    """Execute a Core ``statement`` on ``session``'s connection (same transaction)."""
    conn = await session.connection()
    return await conn.execute(statement)
