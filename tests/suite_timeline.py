"""Where a whole run's time went, from its JUnit XML: the slowest files (their tests' seconds, setup
and teardown included) and each xdist worker's timeline, the files it ran from when to when.

    .venv/bin/pytest -n 3 --dist loadfile --no-loadscope-reorder --junitxml=/tmp/suite.xml
    .venv/bin/python -m tests.suite_timeline /tmp/suite.xml [--top 15] [--min-seconds 15]

With ``--dist loadfile`` the worker that finishes last decides the wall time: its tail is where a
long file picked up late shows. Each test's worker and start time come from tests/conftest.py
(``pytest_runtest_protocol``, as JUnit properties); a file run without them gets no timeline.
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Case:
    file: str
    name: str
    seconds: float
    worker: str | None
    start: float | None


def _file_of(classname: str) -> str:
    """``tests.api.test_orders`` or ``tests.api.test_orders.TestX`` → ``tests/api/test_orders.py``."""
    parts = classname.split(".")
    last = max((i for i, p in enumerate(parts) if p.startswith("test")), default=len(parts) - 1)
    return "/".join(parts[:last + 1]) + ".py"


def read_cases(path: Path) -> list[Case]:
    cases = []
    for tc in ET.parse(path).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in tc.iter("property")}
        cases.append(Case(_file_of(tc.get("classname", "")), tc.get("name", ""), float(tc.get("time") or 0),
                          props.get("xdist_worker"), float(props["started_at"]) if "started_at" in props else None))
    return cases


def slowest_files(cases: list[Case], top: int) -> list[str]:
    by_file: dict[str, list[Case]] = defaultdict(list)
    for c in cases:
        by_file[c.file].append(c)
    lines = [f"{len(cases)} tests, {sum(c.seconds for c in cases):.0f} s in all"]
    for file, tests in sorted(by_file.items(), key=lambda kv: -sum(c.seconds for c in kv[1]))[:top]:
        split = ", ".join(f"{c.name[:50]} {c.seconds:.0f}" for c in sorted(tests, key=lambda c: -c.seconds)[:4])
        lines.append(f"{sum(c.seconds for c in tests):7.1f} s {len(tests):3d} tests  {file}\n{'':20}{split}")
    return lines


def timelines(cases: list[Case], min_seconds: float) -> list[str]:
    timed = [c for c in cases if c.start is not None and c.worker is not None]
    if not timed:
        return ["no worker timeline (a run without tests/conftest.py's properties)"]
    t0 = min(c.start for c in timed)  # type: ignore[type-var]
    lines = []
    for worker in sorted({c.worker for c in timed}):  # type: ignore[type-var]
        spans: dict[str, list[float]] = {}
        for c in sorted((c for c in timed if c.worker == worker), key=lambda c: c.start):  # type: ignore[arg-type,return-value]
            begin, end = c.start - t0, c.start - t0 + c.seconds  # type: ignore[operator]
            span = spans.setdefault(c.file, [begin, end])
            span[1] = max(span[1], end)
        lines.append(f"== {worker}: last test ends at {max(s[1] for s in spans.values()):.0f} s")
        lines += [f"   {b:6.0f} → {e:6.0f} ({e - b:5.0f} s)  {f}" for f, (b, e) in spans.items() if e - b >= min_seconds]
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("junit", type=Path)
    p.add_argument("--top", type=int, default=15, help="slowest files listed")
    p.add_argument("--min-seconds", type=float, default=15.0, help="shortest file shown on a timeline")
    args = p.parse_args()
    cases = read_cases(args.junit)
    print("\n".join(slowest_files(cases, args.top) + [""] + timelines(cases, args.min_seconds)))


if __name__ == "__main__":
    main()
