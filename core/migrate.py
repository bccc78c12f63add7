"""Run Alembic migrations programmatically (``stellar db upgrade``, the stack, the tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from core.threads import call_on_own_thread

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` (postgresql+asyncpg://…) to ``revision``. Blocking."""
    command.upgrade(alembic_config(url), revision)


def upgrade_in_thread(url: str, revision: str = "head") -> None:
    """:func:`upgrade` on a thread of its own: Alembic's env runs its own event loop, which must not
    meet the caller's (tests, benchmarks). Blocking; re-raises the migration's error."""
    call_on_own_thread(lambda: upgrade(url, revision), name="alembic-upgrade")
