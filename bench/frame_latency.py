"""Frame taken → SSE event delivered, for the end-to-end bench (bench report "Orders end to end").

"Taken" is when Voyager announces the frame: the simulator's ``NewFITReady`` dashboard event
(docs/voyager-protocol.md §4), read by a dashboard connection of the bench's own. "Delivered" is
when the order's ``GET /api/orders/{id}/events`` stream, opened by the bench right after the POST,
yields the ``progress`` event whose ``frame.fits_path`` is that file. Both instants are read with
``time.monotonic()`` in the bench process, so the difference is the whole path: the worker's watch
woken by the event, RoboTarget polled, the JPG fetched, the ``shot_done`` row and its OrderEvent
committed, PostgreSQL's NOTIFY, the API's catch-up query and the HTTP stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx

from core.settings import VoyagerSettings
from core.voyager_clients import event_stream_from_settings


@dataclass
class FrameLatency:
    """Instants (``time.monotonic()`` seconds) per FITS path: ``taken`` from Voyager, ``delivered``
    from the SSE streams."""

    taken: dict[str, float] = field(default_factory=dict)
    delivered: dict[str, float] = field(default_factory=dict)
    streams: list[asyncio.Task] = field(default_factory=list)
    stream_errors: int = 0

    def latencies(self) -> list[float]:
        """Seconds from taken to delivered for every frame seen both ways."""
        return [self.delivered[f] - self.taken[f] for f in self.delivered if f in self.taken]

    def follow(self, http: httpx.AsyncClient, api_key: str, order_id: int) -> None:
        """Open the order's SSE stream now and record each frame's delivery until the stream ends."""
        self.streams.append(asyncio.create_task(self._follow(http, api_key, order_id)))

    async def _follow(self, http: httpx.AsyncClient, api_key: str, order_id: int) -> None:
        try:
            async with http.stream("GET", f"/api/orders/{order_id}/events",
                                   headers={"Authorization": f"Bearer {api_key}"}, timeout=None) as r:
                data = ""
                async for line in r.aiter_lines():
                    if line.startswith("data:"):
                        data = line[5:].strip()
                    elif line == "" and data:
                        payload, data = json.loads(data), ""
                        fits = (payload.get("frame") or {}).get("fits_path")
                        if payload.get("kind") == "progress" and fits:
                            self.delivered.setdefault(fits, time.monotonic())
        except (httpx.HTTPError, json.JSONDecodeError):
            self.stream_errors += 1

    async def close(self, timeout: float = 10.0) -> None:
        """Wait ``timeout`` s for the streams to end (they end once their order is final), then stop them."""
        if self.streams:
            _done, pending = await asyncio.wait(self.streams, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


@contextlib.asynccontextmanager
async def frame_latency(voyager: VoyagerSettings) -> AsyncIterator[FrameLatency]:
    """A :class:`FrameLatency` whose ``taken`` fills from a dashboard connection to ``voyager``
    while the ``async with`` body runs."""
    out = FrameLatency()
    stream = event_stream_from_settings(voyager, names={"NewFITReady"})
    await stream.start(timeout=30.0)  # connected before the first order can take a frame

    async def listen() -> None:
        async for event in stream:
            path = str(event.data.get("File") or "")
            if path:
                out.taken.setdefault(path, time.monotonic())

    task = asyncio.create_task(listen())
    try:
        yield out
    finally:
        await out.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await stream.close()
