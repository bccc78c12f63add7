"""Workflow files call nothing that reads the clock, randomness, the environment or the outside
world. The worker's sandbox passes the workflow files through (``worker.SANDBOX_PASSTHROUGH``,
docs/conventions.md "Temporal"), so its call restrictions no longer catch such a call at run time;
this reads the source with ``ast`` and refuses it before any run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
#: Modules a workflow file must not import: the clock, randomness, the process, the network, threads.
FORBIDDEN_MODULES = {"time", "random", "uuid", "os", "sys", "socket", "subprocess", "threading", "secrets",
                     "requests", "httpx", "sqlalchemy", "asyncpg", "stripe"}
#: ``module-or-class.attribute`` calls that are non-deterministic (``workflow.now()``/``workflow.uuid4()`` instead).
FORBIDDEN_CALLS = {"datetime.now", "datetime.utcnow", "datetime.today", "date.today",
                   "asyncio.wait", "asyncio.get_event_loop", "asyncio.get_running_loop"}
FORBIDDEN_BUILTINS = {"open", "input", "exec", "eval", "__import__"}


def violations(source: str) -> list[str]:
    """What in ``source`` a workflow file must not do, as ``line: what``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        found += [f"{node.lineno}: import {n}" for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_BUILTINS:
                found.append(f"{node.lineno}: {func.id}()")
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                if f"{func.value.id}.{func.attr}" in FORBIDDEN_CALLS:
                    found.append(f"{node.lineno}: {func.value.id}.{func.attr}()")
    return found


def test_the_check_sees_a_clock_read_and_an_io_import():
    bad = "import os\nfrom datetime import datetime\ndef f():\n    return datetime.now(), open('x')\n"
    assert violations(bad) == ["1: import os", "4: datetime.now()", "4: open()"]


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.py")), ids=lambda p: p.name)
def test_a_workflow_file_makes_no_non_deterministic_call(path: Path):
    assert violations(path.read_text()) == []
