"""How one simulator connection frames its messages: CR LF lines or WebSocket text frames.

Voyager protocol §1: raw TCP carries one JSON object per line ending in ``\\r\\n``; a client that
opens with an HTTP ``GET`` Upgrade request on the same port gets a WebSocket instead, one JSON object
per text frame. :func:`sniff` tells the two apart from the first bytes the client sends; the
WebSocket handshake and framing (masking, fragmentation, ping/pong, close) are the sans-I/O
``websockets.server.ServerProtocol``'s job, not ours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from voyager import protocol
from voyager.errors import VoyagerProtocolError

#: Longest HTTP upgrade request accepted (bytes): a handshake is a few hundred.
MAX_HANDSHAKE = 16 * 1024


class Framing(Protocol):
    """Bytes ↔ messages of one connection. ``feed`` returns complete messages (JSON text, bytes);
    ``encode`` turns one CR LF-terminated message into what goes on the wire (None: the line goes
    as it is); ``take_output`` gives bytes the framing itself must send (WebSocket pong and close
    frames), ``goodbye`` the bytes that close it cleanly; ``closed``: the peer closed the framing
    (WebSocket close frame)."""

    closed: bool
    #: None when a line goes on the wire as it is (raw TCP: no call per line).
    encode: Callable[[bytes], bytes] | None

    def feed(self, data: bytes) -> list[bytes]: ...
    def take_output(self) -> bytes: ...
    def goodbye(self) -> bytes: ...


class LineFraming:
    """Raw TCP: one JSON object per CR LF line (Voyager protocol §1)."""

    closed = False
    encode = None  # a CR LF line is its own wire form

    def __init__(self) -> None:
        self._splitter = protocol.LineSplitter()
        self.feed = self._splitter.feed  # the framer itself: one call less per chunk

    def take_output(self) -> bytes:
        return b""

    def goodbye(self) -> bytes:
        return b""


class WebSocketFraming:
    """WebSocket after the handshake: one JSON object per text frame, no CR LF needed."""

    def __init__(self, ws: ServerProtocol) -> None:
        self._ws = ws
        self.closed = False

    def feed(self, data: bytes) -> list[bytes]:
        self._ws.receive_data(data)
        messages: list[bytes] = []
        for frame in self._ws.events_received():
            if frame.opcode is Opcode.TEXT or frame.opcode is Opcode.BINARY:
                # Clients may still end a message with CR LF, or put several lines in one frame.
                messages.extend(ln for ln in bytes(frame.data).split(b"\n") if ln.strip())
            elif frame.opcode is Opcode.CLOSE:
                self.closed = True
        if self._ws.state is State.CLOSED or self._ws.close_rcvd is not None:
            self.closed = True
        return messages

    def encode(self, line: bytes) -> bytes:
        if self._ws.state is not State.OPEN:
            return b""
        self._ws.send_text(line.rstrip(b"\r\n"))
        return self.take_output()

    def take_output(self) -> bytes:
        return b"".join(self._ws.data_to_send())

    def goodbye(self) -> bytes:
        """A close frame (1000) for a clean close of the session."""
        if self._ws.state is State.OPEN:
            self._ws.send_close(1000)
        return self.take_output()


async def sniff(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, wait: float) -> tuple[Framing, bytes]:
    """Choose the framing of a new connection from what the client sends within ``wait`` seconds.

    A raw Voyager client sends nothing before the ``Version`` event, so silence means raw TCP. A
    WebSocket client sends its HTTP ``GET`` at once: the handshake is completed here and its
    response written. Returns the framing and bytes already read that belong to it. Raises
    VoyagerProtocolError on a malformed or refused upgrade request (the response is sent first).
    """
    try:
        async with asyncio.timeout(wait):
            first = await reader.read(4096)
    except TimeoutError:
        return LineFraming(), b""
    if not first.startswith(b"GET "):
        return LineFraming(), first
    ws = ServerProtocol(max_size=protocol.MAX_LINE)
    data = first
    while True:
        ws.receive_data(data)
        events = ws.events_received()
        if events:
            break
        if len(data) > MAX_HANDSHAKE:
            raise VoyagerProtocolError("WebSocket handshake too long")
        async with asyncio.timeout(5.0):
            data = await reader.read(4096)
        if not data:
            raise VoyagerProtocolError("closed during the WebSocket handshake")
    request = events[0]
    assert isinstance(request, Request)
    response = ws.accept(request)
    ws.send_response(response)
    writer.write(b"".join(ws.data_to_send()))
    await writer.drain()
    if ws.state is not State.OPEN:
        raise VoyagerProtocolError(f"WebSocket upgrade refused: {response.status_code}")
    # Frames that came with the handshake stay in the protocol's buffer: the first feed() reads them.
    return WebSocketFraming(ws), b""
