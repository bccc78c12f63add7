"""Find import cycles among the project's own modules, from their source (nothing is imported).

    python scripts/import_cycles.py [PACKAGE ...] [--typing]

Reads every ``.py`` file of the given packages (default: the whole repository) and builds the graph
of the imports that run at import time: module-level ``import``/``from … import`` statements,
including those inside ``try``/``if`` blocks but not those under ``if TYPE_CHECKING:`` (unless
``--typing``) nor those inside functions (lazy imports run later). Prints every cycle (a strongly
connected component of more than one module, or a module importing itself) and exits 1 if there is
one, 0 otherwise.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP = {".venv", "node_modules", ".git", "__pycache__"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_time_nodes(body: list[ast.stmt], typing: bool) -> list[ast.stmt]:
    """Statements of ``body`` that run when the module is imported (blocks opened, defs skipped)."""
    out: list[ast.stmt] = []
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(node, ast.If):
            if _is_type_checking(node.test) and not typing:
                out += _import_time_nodes(node.orelse, typing)
                continue
            out += _import_time_nodes(node.body + node.orelse, typing)
        elif isinstance(node, ast.Try):
            out += _import_time_nodes(node.body + node.orelse + node.finalbody, typing)
            for handler in node.handlers:
                out += _import_time_nodes(handler.body, typing)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            out += _import_time_nodes(node.body, typing)
        else:
            out.append(node)
    return out


def imports_of(path: Path, name: str, modules: set[str], typing: bool) -> set[str]:
    """The project modules ``path`` (module ``name``) imports at import time."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_time_nodes(ast.parse(path.read_text(encoding="utf-8")).body, typing):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import mod`` imports the submodule when there is one.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            # ``import a.b.c`` also runs ``a`` and ``a.b``: count the deepest project module.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def project_files() -> list[Path]:
    return [p for p in ROOT.rglob("*.py") if not SKIP.intersection(p.relative_to(ROOT).parts)]


def graph_of(packages: list[str], typing: bool = False) -> dict[str, set[str]]:
    """Import-time edges of every module under ``packages`` (dotted names; [] = every module)."""
    files = {module_name(p): p for p in project_files()}
    modules = set(files)
    chosen = {m: p for m, p in files.items()
              if not packages or any(m == pkg or m.startswith(pkg + ".") for pkg in packages)}
    return {m: imports_of(p, m, modules, typing) for m, p in chosen.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", help="dotted package names (default: the whole repository)")
    parser.add_argument("--typing", action="store_true", help="count imports under `if TYPE_CHECKING:` too")
    args = parser.parse_args(argv)
    graph = graph_of(args.packages, args.typing)
    found = cycles(graph)
    for component in found:
        print("cycle:", " ↔ ".join(component))
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} import edges, {len(found)} cycles")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
