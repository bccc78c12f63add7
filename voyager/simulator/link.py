"""The socket callbacks of one simulator connection: a stream until the session starts, then a callback.

Telling raw TCP from a WebSocket (``transport.sniff``) reads the first bytes with an
``asyncio.StreamReader``; once the session runs, each chunk the socket delivers goes straight to the
session's ``on_data`` (no read task: no future, no task wake-up per request, a reply leaves in the
step its request arrived). The ``StreamWriter`` stays the session's output side, with its flow
control (``drain``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class _SniffReader(asyncio.StreamReader):
    """The reader of the sniffing phase; hands over what it still holds when the session starts."""

    def take_buffered(self) -> bytes:
        # The stream API has no "what is already here" read; the buffer is the base class's own.
        data = bytes(self._buffer)
        self._buffer.clear()
        self._maybe_resume_transport()
        return data


class SessionLink(asyncio.StreamReaderProtocol):
    """``StreamReaderProtocol`` (``client_connected(reader, writer)`` is called as with
    ``asyncio.start_server``) whose received bytes go to a session once it :meth:`attach`-es.

    ``limit``: the reader's buffer limit in bytes (the sniffing phase)."""

    def __init__(self, client_connected: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
                 limit: int) -> None:
        self._reader = _SniffReader(limit=limit)
        super().__init__(self._reader, client_connected)
        self._on_data: Callable[[bytes], None] | None = None
        self._on_end: Callable[[], None] | None = None

    def attach(self, on_data: Callable[[bytes], None], on_end: Callable[[], None]) -> None:
        """From now on every chunk received goes to ``on_data``, and the end of the input (EOF, the
        link lost) to ``on_end``, called once. Bytes already read into the stream go first, at once."""
        self._on_data, self._on_end = on_data, on_end
        reader = self._reader
        data = reader.take_buffered()
        if data:
            on_data(data)
        if reader.at_eof() or reader.exception() is not None:
            self._end()

    def data_received(self, data: bytes) -> None:
        on_data = self._on_data
        if on_data is None:
            super().data_received(data)
        else:
            on_data(data)

    def eof_received(self) -> bool:
        keep_open = super().eof_received()
        self._end()
        return keep_open

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._end()

    def _end(self) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            self._on_data = _ignore  # nothing is read after the end
            on_end()


def _ignore(data: bytes) -> None:
    pass
