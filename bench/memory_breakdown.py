"""Where a waiting workflow's memory goes (bench/worker_memory.py): the Python heap it adds (the
difference of two bench/heap_worker.py statistics, with one and with n waiting workflows) and the
history the SDK's core was fed for it (bytes of its events, by event type), the part of the
worker's memory outside the Python heap that Stellar's payloads decide.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client


@dataclass
class HeapDiff:
    """Python-heap growth between two :func:`bench.heap_worker.heap_stats`, per waiting workflow
    past the first: ``pymalloc`` bytes (allocations ≤ 512 B), ``blocks`` allocated, ``objects`` and
    ``object_bytes`` of garbage-collected objects, and ``by_type``: the types that grew most,
    (name, objects, bytes) per workflow."""

    workflows: int
    pymalloc: float
    blocks: float
    objects: float
    object_bytes: float
    by_type: list[tuple[str, float, float]] = field(default_factory=list)


def heap_diff(one: Path, full: Path, workflows: int, top: int = 8) -> HeapDiff:
    """Per-workflow growth from stats ``one`` (1 waiting) to ``full`` (``workflows`` waiting)."""
    a, b = json.loads(one.read_text()), json.loads(full.read_text())
    n = max(1, workflows - 1)
    grew = {k: (v[0] - a["by_type"].get(k, [0, 0])[0], v[1] - a["by_type"].get(k, [0, 0])[1])
            for k, v in b["by_type"].items()}
    by_type = sorted(((k, c / n, z / n) for k, (c, z) in grew.items() if z > 0), key=lambda t: -t[2])[:top]
    return HeapDiff(workflows, (b["pymalloc_bytes"] - a["pymalloc_bytes"]) / n, (b["blocks"] - a["blocks"]) / n,
                    sum(c for c, _ in grew.values()) / n, sum(z for _, z in grew.values()) / n, by_type)


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
