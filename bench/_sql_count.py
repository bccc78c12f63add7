"""Count what a piece of code asks of PostgreSQL through one SQLAlchemy engine: statements (SQL
sent), transactions begun and connections checked out of the pool (each checkout also costs the
pool's pre-ping round trip). SQLAlchemy event listeners, attached only while counting; the API and
ledger benches print these per request / per operation (bench/api_latency.py, bench/ledger.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass
class SqlCount:
    """Totals while counting. ``statements``: cursor executions (BEGIN/COMMIT excluded);
    ``transactions``: BEGINs (a statement run in autocommit is a transaction of its own and sends
    none); ``checkouts``: pool checkouts."""

    statements: int = 0
    transactions: int = 0
    checkouts: int = 0

    def per(self, n: int) -> str:
        """``"statements 4.0, transactions 1.0, checkouts 1.0"`` per one of ``n`` operations."""
        n = max(n, 1)
        return (f"{self.statements / n:.1f} statements, {self.transactions / n:.1f} transactions, "
                f"{self.checkouts / n:.1f} connection checkouts")


@contextlib.contextmanager
def count_sql(engine: AsyncEngine) -> Iterator[SqlCount]:
    """Count statements, transactions and checkouts on ``engine`` inside the ``with`` block."""
    counted = SqlCount()
    sync = engine.sync_engine

    def on_execute(*_args) -> None:
        counted.statements += 1

    def on_begin(conn, *_args) -> None:
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":  # no BEGIN is sent then
            counted.transactions += 1

    def on_checkout(*_args) -> None:
        counted.checkouts += 1

    sa.event.listen(sync, "before_cursor_execute", on_execute)
    sa.event.listen(sync, "begin", on_begin)
    sa.event.listen(sync.pool, "checkout", on_checkout)
    try:
        yield counted
    finally:
        sa.event.remove(sync, "before_cursor_execute", on_execute)
        sa.event.remove(sync, "begin", on_begin)
        sa.event.remove(sync.pool, "checkout", on_checkout)
