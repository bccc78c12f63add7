"""Where a waiting workflow's memory goes (bench/worker_memory.py): the Python heap it adds (a
``tracemalloc`` snapshot diff of bench/heap_worker.py between one and n waiting workflows) and the
history the SDK's core was fed for it (bytes of its events, by event type), the part of the
worker's memory outside the Python heap that Stellar's payloads decide.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench._processes import ROOT

@dataclass
class HeapDiff:
    """Python-heap growth between two snapshots, per waiting workflow (bytes): ``total``, and the
    same bytes by the code that allocated them (``by_origin``: the innermost Stellar frame of each
    allocation, else its library) and by allocating library (``by_library``)."""

    workflows: int
    total: float
    blocks: float
    by_origin: list[tuple[str, float]] = field(default_factory=list)
    by_library: list[tuple[str, float]] = field(default_factory=list)


def _stellar(filename: str) -> str | None:
    """``workflows/order.py`` for a file of this repository (not of its virtualenv), else None."""
    path = Path(filename)
    if ROOT not in path.parents or ".venv" in path.parts:
        return None
    return str(path.relative_to(ROOT))


def _library(filename: str) -> str:
    """``pydantic``, ``temporalio``, ``stdlib asyncio``, … or a repository path."""
    own = _stellar(filename)
    if own is not None:
        return own
    parts = Path(filename).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            return parts[parts.index(marker) + 1].removesuffix(".py")
    versions = [i for i, p in enumerate(parts) if p.startswith("python3")]
    if versions and len(parts) > versions[-1] + 1:  # the standard library
        return f"stdlib {parts[versions[-1] + 1].removesuffix('.py')}"
    return Path(filename).name


def _origin(trace: tracemalloc.Trace) -> str:
    """The innermost frame in Stellar's own code (``file:line``, bench/ excluded), else the
    allocating library."""
    frames = list(trace.traceback)  # oldest first
    for frame in reversed(frames):
        own = _stellar(frame.filename)
        if own is not None and not own.startswith("bench/"):
            return f"{own}:{frame.lineno}"
    return _library(frames[-1].filename) if frames else "?"


def heap_diff(one: Path, full: Path, workflows: int, top: int = 6) -> HeapDiff:
    """Per-workflow heap growth from snapshot ``one`` (1 waiting) to ``full`` (``workflows``
    waiting); the ``top`` origins and libraries by bytes (only growing ones)."""
    before, after = tracemalloc.Snapshot.load(str(one)), tracemalloc.Snapshot.load(str(full))
    n = max(1, workflows - 1)

    def sums(snapshot: tracemalloc.Snapshot) -> tuple[Counter, Counter, int, int]:
        origin: Counter = Counter()
        library: Counter = Counter()
        size = blocks = 0
        for trace in snapshot.traces:
            origin[_origin(trace)] += trace.size
            library[_library(list(trace.traceback)[-1].filename) if len(trace.traceback) else "?"] += trace.size
            size += trace.size
            blocks += 1
        return origin, library, size, blocks

    o0, l0, s0, b0 = sums(before)
    o1, l1, s1, b1 = sums(after)
    grow = lambda a, b: sorted(((k, (a[k] - b.get(k, 0)) / n) for k in a if a[k] > b.get(k, 0)),  # noqa: E731
                               key=lambda kv: -kv[1])[:top]
    return HeapDiff(workflows, (s1 - s0) / n, (b1 - b0) / n, grow(o1, o0), grow(l1, l0))


@dataclass
class HistorySize:
    """Bytes of a workflow's history events (protobuf encoding) as the worker receives them:
    ``total`` and ``events`` per workflow (means over ``sampled`` workflows), ``by_type``: event
    type → (events, bytes) per workflow, biggest first."""

    sampled: int
    events: float
    total: float
    by_type: list[tuple[str, float, float]]


async def history_size(client: Client, workflow_ids: list[str], concurrency: int = 8) -> HistorySize:
    """:class:`HistorySize` of ``workflow_ids`` (their histories as they are now)."""
    sem = asyncio.Semaphore(concurrency)
    count: Counter = Counter()
    size: Counter = Counter()

    async def one(wid: str) -> None:
        async with sem:
            history = await client.get_workflow_handle(wid).fetch_history()
        for event in history.events:
            kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").lower()
            count[kind] += 1
            size[kind] += event.ByteSize()

    await asyncio.gather(*(one(w) for w in workflow_ids))
    n = max(1, len(workflow_ids))
    by_type = sorted(((k, count[k] / n, size[k] / n) for k in size), key=lambda t: -t[2])
    return HistorySize(len(workflow_ids), sum(count.values()) / n, sum(size.values()) / n, by_type)
