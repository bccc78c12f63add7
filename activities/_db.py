"""Plain SQLAlchemy Core statements inside a sqlmodel session's transaction, and which database
errors mean "unavailable".

sqlmodel deprecates ``AsyncSession.execute``; Core statements (aggregates, upserts) run on the
session's connection instead, in the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Result
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlmodel.ext.asyncio.session import AsyncSession


async def sql(session: AsyncSession, statement: Any) -> Result[Any]:
    """Execute a Core ``statement`` on ``session``'s connection (same transaction)."""
    conn = await session.connection()
    return await conn.execute(statement)


#: SQLSTATE classes of "the server is not there right now": 08 connection exception, 57
#: operator intervention (shutting down, starting up: 57P01–57P03). PostgreSQL manual, Appendix A.
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "57")


def db_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database is unreachable or restarting (worth waiting out), not
    that a statement is wrong: a socket error, SQLAlchemy's ``OperationalError``/``InterfaceError``
    or an invalidated connection, or an error whose SQLSTATE class is 08 or 57."""
    if isinstance(exc, (OSError, OperationalError, InterfaceError)):
        return True
    if isinstance(exc, DBAPIError):
        state = getattr(exc.orig, "sqlstate", None) or ""
        return exc.connection_invalidated or state[:2] in _UNAVAILABLE_SQLSTATE_CLASSES
    return False
