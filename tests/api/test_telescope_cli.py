"""``stellar telescope add|list|set|disable`` against a database of its own (an online telescope in
the shared one would change where other suites' ``any`` orders go)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from typer.testing import CliRunner

from core.database import make_engine
from core.settings import get_settings
from stellar_cli.main import app
from tests.scratch_db import _autocommit, database_url_named, head_template


@pytest.fixture
def scratch_url(database_url, monkeypatch):
    """A database of its own at head (a copy of tests/scratch_db.py's template). Created and dropped by
    plain statements: an async context manager cannot span the two ``asyncio.run`` loops of a
    synchronous CLI test."""
    name = f"stellar_scratch_{uuid.uuid4().hex[:8]}"

    async def run(statement: str, *, from_head: bool = False) -> None:
        engine = make_engine(database_url, pool_size=1)
        try:
            if from_head:
                statement += f' TEMPLATE "{await head_template(engine, database_url)}"'
            await _autocommit(engine, statement)
        finally:
            await engine.dispose()

    asyncio.run(run(f'CREATE DATABASE "{name}"', from_head=True))
    url = database_url_named(database_url, name)
    try:
        monkeypatch.setenv("STELLAR_DATABASE__URL", url)
        get_settings.cache_clear()
        yield url
    finally:
        get_settings.cache_clear()
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


ADD = ["telescope", "add", "chile", "--name", "Chile refractor", "--site-name", "Rio Hurtado",
       "--latitude", "-30.53", "--longitude", "-70.85", "--elevation", "1600", "--time-zone", "America/Santiago",
       "--horizon", "15", "--aperture", "106", "--focal-length", "530", "--sensor-width", "6248",
       "--sensor-height", "4176", "--pixel-size", "3.76", "--filter", "L=0", "--filter", "Ha=4",
       "--profile", "Chile.v2y", "--multiplier", "1.25"]


def test_telescope_cli_adds_lists_sets_and_disables(scratch_url):
    runner = CliRunner()
    added = runner.invoke(app, ADD, env={"COLUMNS": "200"})
    assert added.exit_code == 0, added.output
    assert "chile" in added.output and "Rio Hurtado" in added.output and "1.2500" in added.output
    listed = runner.invoke(app, ["telescope", "list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and "main" in listed.output and "chile" in listed.output and "L Ha" in listed.output
    changed = runner.invoke(app, ["telescope", "set", "chile", "--host-share", "40", "--multiplier", "1.5"],
                            env={"COLUMNS": "200"})
    assert changed.exit_code == 0 and "1.5000" in changed.output, changed.output
    disabled = runner.invoke(app, ["telescope", "disable", "chile"], env={"COLUMNS": "200"})
    assert disabled.exit_code == 0 and "maintenance" in disabled.output
    retired = runner.invoke(app, ["telescope", "disable", "chile", "--retire"], env={"COLUMNS": "200"})
    assert retired.exit_code == 0 and "retired" in retired.output


def test_telescope_cli_refusals_exit_1_with_the_reason(scratch_url):
    runner = CliRunner()
    bad_share = runner.invoke(app, ["telescope", "set", "main", "--host-share", "101"], env={"COLUMNS": "200"})
    assert bad_share.exit_code == 1 and "host_share_percent" in bad_share.output
    unknown = runner.invoke(app, ["telescope", "set", "nowhere", "--name", "x"], env={"COLUMNS": "200"})
    assert unknown.exit_code == 1 and "no telescope 'nowhere'" in unknown.output
    assert runner.invoke(app, ADD).exit_code == 0
    again = runner.invoke(app, ADD, env={"COLUMNS": "200"})
    assert again.exit_code == 1 and "already exists" in again.output
    missing = runner.invoke(app, ["telescope", "add", "bare", "--name", "Bare"], env={"COLUMNS": "200"})
    assert missing.exit_code == 1 and "missing" in missing.output
