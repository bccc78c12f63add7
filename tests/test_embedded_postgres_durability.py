"""What the embedded PostgreSQL keeps of a commit it acknowledged (core/embedded_postgres.py): a
clean stop loses nothing, and with ``durable_commits`` (the chaos benchmark's stand-in) a crash of
its processes loses nothing either — as a production server, which the chaos promises are
measured against."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.embedded_postgres import EmbeddedPostgres, _bin
from core.processes import free_port

ROWS = 20


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Outside pytest's shared tmp_path, world-traversable (initdb may run as another user).
    with tempfile.TemporaryDirectory(prefix="stellar-pg-durability-") as tmp:
        yield Path(tmp)


def _psql(pg: EmbeddedPostgres, sql: str) -> str:
    """``sql`` through psql in autocommit: each statement is acknowledged before the next is sent."""
    return subprocess.run([str(_bin("psql")), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-d",
                           pg.database, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          check=True, capture_output=True, text=True, timeout=60).stdout.strip()


def _commit_rows(pg: EmbeddedPostgres) -> None:
    _psql(pg, "CREATE TABLE accepted (id int PRIMARY KEY)")
    # One transaction per row, the last acknowledged a moment before the server goes.
    _psql(pg, "; ".join(f"INSERT INTO accepted VALUES ({i})" for i in range(ROWS)))


def test_a_fast_shutdown_right_after_commits_keeps_every_acknowledged_one(data_dir: Path):
    pg = EmbeddedPostgres(data_dir, free_port(), database="durability")  # the fast default
    pg.start()
    try:
        _commit_rows(pg)
        assert pg.stop() == "fast"
        pg.start()
        assert _psql(pg, "SELECT count(*) FROM accepted") == str(ROWS)
    finally:
        pg.stop()


def test_a_durable_server_crashed_right_after_commits_keeps_every_acknowledged_one(data_dir: Path):
    pg = EmbeddedPostgres(data_dir, free_port(), database="durability", durable_commits=True)
    pg.start()
    try:
        assert _psql(pg, "SHOW synchronous_commit") == "on"
        _commit_rows(pg)
        pg.crash()  # SIGKILL to every server process: no shutdown checkpoint, recovery from the WAL
        pg.start()
        assert _psql(pg, "SELECT count(*) FROM accepted") == str(ROWS)
        assert "database system was interrupted" in (data_dir / "postgres.log").read_text()
    finally:
        pg.stop()
