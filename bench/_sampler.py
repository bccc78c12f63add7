"""A wall-clock stack sampler for the benches: every ``interval`` seconds a thread reads every other
thread's Python stack (``sys._current_frames``), the way py-spy samples a process from outside, so
work handed to threads (the astropy checks run in ``asyncio.to_thread``) is seen as well as the event
loop's. :meth:`StackSampler.summary` names where the busy samples fall: by package of the innermost
frame, and Stellar's functions inclusive. An event loop waiting in ``select`` and executor threads
waiting for work count as idle; SQLAlchemy's greenlets leave a statement's asyncpg frame visible
while its answer is awaited, so those samples read as "in a PostgreSQL statement".
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Stellar's own packages (the repository's top-level folders whose functions are listed).
OWN = ("api", "billing", "core", "models", "web", "mail", "voyager", "workflows", "activities")
_IDLE = {("selectors.py", "select"), ("threading.py", "wait"), ("queue.py", "get"), ("thread.py", "_worker")}


def _package(filename: str) -> str:
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].split(".")[0]
    try:
        return path.relative_to(ROOT).parts[0]
    except ValueError:
        return "python"


class StackSampler:
    """``with StackSampler() as s: …`` then ``s.summary()``. ``interval``: seconds between samples."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.samples = 0
        self.idle = 0
        self.ticks = 0  # sampling rounds
        self.loop: Counter[str] = Counter()  # event loop thread: "database" / "python" rounds
        self.by_package: Counter[str] = Counter()
        self.inclusive: Counter[str] = Counter()
        self.functions: Counter[str] = Counter()  # innermost function outside the standard library
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def __enter__(self) -> "StackSampler":
        self._loop_thread = threading.get_ident()  # the thread that starts sampling: the event loop's
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self.interval):
            self.ticks += 1
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                self.samples += 1
                code = frame.f_code
                if (Path(code.co_filename).name, code.co_name) in _IDLE:
                    self.idle += 1
                    continue
                seen: set[str] = set()
                innermost = None  # the innermost frame outside the standard library
                f = frame
                while f is not None:
                    c = f.f_code
                    pkg = _package(c.co_filename)
                    if innermost is None and pkg != "python":
                        innermost = pkg
                        self.functions[f"{pkg}:{Path(c.co_filename).name}:{c.co_name}"] += 1
                    if pkg in OWN:
                        name = f"{Path(c.co_filename).relative_to(ROOT)}:{c.co_name}"
                        if name not in seen:
                            seen.add(name)
                            self.inclusive[name] += 1
                    f = f.f_back
                self.by_package[innermost or "asyncio/stdlib"] += 1
                if ident == self._loop_thread:
                    self.loop[("database" if innermost == "asyncpg" else "python")] += 1

    def summary(self, top: int = 8) -> list[str]:
        """Markdown lines: the event loop's busy share, busy samples (every thread) by package of the
        innermost frame outside the standard library, Stellar's functions inclusive."""
        busy = sum(self.by_package.values()) or 1
        packages = ", ".join(f"{p} {n / busy:.0%}" for p, n in self.by_package.most_common(top))
        own = ", ".join(f"`{k}` {n / busy:.0%}" for k, n in self.inclusive.most_common(top))
        ticks = max(self.ticks, 1)
        return [f"event loop thread: {self.loop['database'] / ticks:.0%} of the samples in a PostgreSQL "
                "statement (asyncpg; SQLAlchemy's greenlet shows its wait for the answer there), "
                f"{self.loop['python'] / ticks:.0%} running other Python, the rest waiting in `select` "
                "(Temporal, HTTP)",
                f"busy samples by package (innermost frame outside the standard library): {packages}",
                "busiest functions there: " + ", ".join(f"`{k}` {n / busy:.0%}"
                                                        for k, n in self.functions.most_common(top)),
                f"Stellar functions on the stack (inclusive, share of busy samples): {own}"]

