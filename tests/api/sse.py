"""A small Server-Sent Events reader for tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import AsyncIterator

import httpx


@dataclass
class SseMessage:
    id: int | None
    event: str
    data: dict
    comment: bool = False


async def read_sse(response: httpx.Response) -> AsyncIterator[SseMessage]:
    """Messages of a ``text/event-stream`` response as they arrive; comments as ``comment=True``."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields:
                yield SseMessage(int(fields["id"]) if "id" in fields else None, fields.get("event", "message"),
                                 json.loads(fields["data"]))
            fields = {}
        elif line.startswith(":"):
            yield SseMessage(None, "", {}, comment=True)
        else:
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
