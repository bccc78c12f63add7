"""``voyager/`` has no import cycle, not even through type-only imports (``scripts/import_cycles.py``)."""

from __future__ import annotations

from scripts.import_cycles import cycles, graph_of


def test_voyager_modules_import_without_a_cycle_even_counting_type_only_imports():
    graph = graph_of(["voyager"], typing=True)
    assert "voyager.simulator.server" in graph and "voyager.protocol" in graph["voyager.client"]
    assert cycles(graph) == []


def test_the_cycle_finder_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_client_side_takes_no_settings():
    graph = graph_of(["voyager"])
    for module in ("voyager.protocol", "voyager.client", "voyager.pool", "voyager.events", "voyager.robotarget"):
        assert "core.settings" not in graph[module], module
