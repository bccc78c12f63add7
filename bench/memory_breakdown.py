"""Where a waiting workflow's memory goes (bench/worker_memory.py): the Python heap it adds (the
difference of two bench/heap_worker.py statistics, with one and with n waiting workflows), the
history the SDK's core was fed for it (bytes of its events, by event type), the part of the
worker's memory outside the Python heap that Stellar's payloads decide, and what the workflow
sandbox itself costs per run (bench/sandbox_cost.py, in a process of its own).
"""

from __future__ import annotations

import asyncio
import json
import sys
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


async def sandbox_costs(instances: int = 100, timeout: float = 600.0) -> dict[str, dict[str, dict]]:
    """bench/sandbox_cost.py's JSON (workflow → runner → bytes per instance, own modules), run in a
    process of its own so its instances leave nothing in the caller. Raises RuntimeError when it
    fails."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.sandbox_cost", "--instances", str(instances),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(timeout):
        out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"bench.sandbox_cost exited {proc.returncode}: {err.decode()[-2000:]}")
    return json.loads(out.decode().strip().splitlines()[-1])
