"""Run Alembic migrations programmatically (``stellar db upgrade``, the stack, the tests)."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config

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
    errors: list[BaseException] = []

    def target() -> None:
        try:
            upgrade(url, revision)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    t = threading.Thread(target=target, name="alembic-upgrade")
    t.start()
    t.join()
    if errors:
        raise errors[0]
