"""No import cycle between the project's modules (``scripts/import_cycles.py``): a newcomer can read
the packages bottom-up (models → billing/voyager → activities/workflows → api/web), a worker or the
API never depends on import order to start, and ``voyager/`` has none even through type-only imports.

The graph is read from the source with ``ast`` in a fresh interpreter: CPython 3.11's ``ast`` keeps a
recursion counter per interpreter that other tests of a long pytest process can leave off
("AST constructor recursion depth mismatch").
"""

from __future__ import annotations

import json
import subprocess
import sys

from scripts.import_cycles import ROOT, cycles


def _run(code: str) -> str:
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def _graph(packages: list[str], typing: bool = False) -> dict[str, set[str]]:
    out = _run("import json; from scripts.import_cycles import graph_of; "
               f"print(json.dumps({{k: sorted(v) for k, v in graph_of({packages!r}, {typing!r}).items()}}))")
    return {k: set(v) for k, v in json.loads(out).items()}


def test_the_cycle_finder_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_itself_back_at_load_time():
    graph = _graph([])
    assert len(graph) > 100 and sum(map(len, graph.values())) > 300  # the whole tree was read
    assert graph["workflows.order"] >= {"models.orders", "activities.ledger_ops"}  # passed-through imports count
    assert cycles(graph) == []


def test_voyager_modules_import_without_a_cycle_even_counting_type_only_imports():
    graph = _graph(["voyager"], typing=True)
    assert "voyager.simulator.server" in graph and "voyager.protocol" in graph["voyager.client"]
    assert cycles(graph) == []


def test_the_client_side_takes_no_settings():
    graph = _graph(["voyager"])
    for module in ("voyager.protocol", "voyager.client", "voyager.pool", "voyager.events", "voyager.robotarget"):
        assert "core.settings" not in graph[module], module
