"""A worker process that runs nothing but the memory ceilings (bench/ceiling_workflow.py:
``BenchBareWaiting``, ``BenchOrderShaped``): the ceiling of bench/worker_memory.py, a worker holding
as many bare waiting workflows as Stellar's worker holds waiting orders.

    python -m bench.bare_worker ADDRESS NAMESPACE TASK_QUEUE [STATS_DIR]

Like for like with ``worker.py``: the same ``Worker`` options (``worker.worker_options``: the
sandbox with the same passthrough modules, ``bench.ceiling_workflow`` passed through as
``workflows`` is; ``max_cached_workflows`` the SDK's 1,000) and the same data converter
(``core.temporal.DATA_CONVERTER``); runs until SIGINT/SIGTERM. With ``STATS_DIR``, SIGUSR1/SIGUSR2
write heap statistics there (bench/heap_worker.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from bench.ceiling_workflow import BareWaiting, OrderShaped, noop, reply_padded
from bench.heap_worker import install_stats_handler
from core.temporal import DATA_CONVERTER
from worker import worker_options


async def main(address: str, namespace: str, task_queue: str, stats_dir: str | None = None) -> int:
    client = await Client.connect(address, namespace=namespace, data_converter=DATA_CONVERTER)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if stats_dir:
        install_stats_handler(Path(stats_dir))
    async with Worker(client, task_queue=task_queue, workflows=[BareWaiting, OrderShaped], activities=[noop, reply_padded],
                      **worker_options(BareWaiting.__module__)):
        print("bare worker ready", flush=True)
        await stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:5])))
