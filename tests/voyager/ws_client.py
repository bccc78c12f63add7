"""The bare test client of ``raw_client.py`` over WebSocket (``ws://host:port/``, Voyager protocol §1).

Same methods as :class:`RawClient`; each JSON message is one text frame, framed by the
``websockets`` library's asyncio client, as a web dashboard or chat bot connects.
"""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.voyager.raw_client import WRITE_TIMEOUT, RawClient
from voyager import protocol


class WsClient(RawClient):
    """One WebSocket connection to the simulator."""

    def __init__(self, ws: ClientConnection) -> None:
        super().__init__(None, None)  # type: ignore[arg-type] - no stream pair: the library owns the socket
        self.ws = ws

    @classmethod
    async def connect(cls, port: int) -> WsClient:
        ws = await connect(f"ws://127.0.0.1:{port}/", max_size=protocol.MAX_LINE, open_timeout=5)
        client = cls(ws)
        async with asyncio.timeout(5):
            raw = await client._readline()
        client.version = protocol.decode_line(raw)
        client.session_key = protocol.timestamp_text(raw) or ""
        return client

    async def _write(self, data: bytes) -> None:
        async with asyncio.timeout(WRITE_TIMEOUT):
            await self.ws.send(data.rstrip(b"\r\n").decode("utf-8"))

    async def _readline(self) -> bytes:
        try:
            message = await self.ws.recv()
        except ConnectionClosed:
            return b""
        return message.encode("utf-8") if isinstance(message, str) else message

    async def close(self) -> None:
        try:  # the close handshake has its own timeout, but not the write that starts it
            async with asyncio.timeout(WRITE_TIMEOUT + 10):
                await self.ws.close()
        except TimeoutError:
            self.ws.transport.abort()
