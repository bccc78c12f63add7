"""A bare JSON-lines Voyager client for the simulator tests, and its fixtures.

Speaks the wire through ``voyager.protocol`` helpers only, so the simulator tests do not depend on
``voyager/client.py``. Fixtures (registered in ``conftest.py``): ``raw_client(sim)`` opens a
connected :class:`RawClient` (closed at teardown); ``night_sim(**overrides)`` starts a simulator
from ``sim_factory`` with a paused clock at ``SIM_START`` and small frames.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest_asyncio

from voyager import protocol, wire
from voyager.simulator import VoyagerSimulator

#: Afternoon at the OHP, three days before the new moon of 2026-01-18: a dark night follows.
SIM_START = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
#: Seconds a write may wait for the socket (a server that stopped reading fails the test, not hangs it).
WRITE_TIMEOUT = 10.0
# idle_timeout: these tests keep a client quiet while ``run_until`` computes whole nights, which on a
# loaded machine outlasts Voyager's 15 s idle cutoff (tested on its own in test_client_session.py).
NIGHT_DEFAULTS: dict[str, Any] = {"start_time": SIM_START, "speed": 0, "frame_width": 200, "frame_height": 150, "seed": 42,
                                  "idle_timeout": 600.0}


def _conf():  # the test credentials live in conftest, which imports this module's fixtures
    from tests.voyager import conftest

    return conftest


class RawClient:
    """One raw connection. ``session_key``: the Version Timestamp text exactly as received."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.ids = itertools.count(1)
        self.session_key = ""
        self.version: dict[str, Any] = {}
        self.backlog: list[dict[str, Any]] = []
        self.seen: list[str] = []  # names of every event read so far

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=protocol.MAX_LINE)
        client = cls(reader, writer)
        async with asyncio.timeout(5):
            raw = await reader.readline()
        client.version = protocol.decode_line(raw)
        client.session_key = protocol.timestamp_text(raw) or ""
        return client

    async def _write(self, data: bytes) -> None:
        """Put one CR LF-terminated message on the wire (a WebSocket client frames it instead)."""
        self.writer.write(data)
        async with asyncio.timeout(WRITE_TIMEOUT):
            await self.writer.drain()

    async def _readline(self) -> bytes:
        """The next message as one line; b"" at EOF."""
        return await self.reader.readline()

    async def send(self, msg: dict[str, Any]) -> None:
        await self._write(protocol.encode_message(msg))

    async def request(self, method: str, params: dict[str, Any] | None = None, *, mac: str | None = None) -> tuple[int, str]:
        """Send a request (UID added; manager-mode Hash / RoboTarget MAC computed unless ``mac``); → (id, uid)."""
        req_id = next(self.ids)
        params = dict(params or {})
        uid = params.setdefault("UID", protocol.new_uid())
        words = _conf().SIM_WORDS
        if method == wire.M_MANAGER_MODE:
            params.setdefault(wire.P_MAC_KEY, _conf().SIM_MAC_KEY)
            params[wire.P_HASH] = mac or protocol.compute_mac(words, self.session_key, req_id, uid)
        elif wire.needs_mac(method):
            params[wire.P_MAC] = mac or protocol.compute_mac(words, self.session_key, req_id, uid)
        await self._write(protocol.encode_request(method, params, req_id))
        return req_id, uid

    async def read(self, timeout: float = 10.0) -> dict[str, Any] | None:
        """The next message (backlog first); None at EOF."""
        if self.backlog:
            return self.backlog.pop(0)
        async with asyncio.timeout(timeout):
            raw = await self._readline()
        if not raw:
            return None
        msg = protocol.decode_line(raw)
        if "Event" in msg:
            self.seen.append(msg["Event"])
        return msg

    async def wait_for(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
        """Read until a message matches ``pred``; the others are dropped."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.read(timeout)
                if msg is None:
                    raise ConnectionError("closed while waiting")
                if pred(msg):
                    return msg

    async def command(self, method: str, params: dict[str, Any] | None = None, *, mac: str | None = None,
                      timeout: float = 10.0) -> tuple[dict[str, Any], dict[str, Any]]:
        """Request → (immediate reply, RemoteActionResult matched by UID); other messages are dropped."""
        req_id, uid = await self.request(method, params, mac=mac)
        reply: dict[str, Any] | None = None
        result: dict[str, Any] | None = None
        async with asyncio.timeout(timeout):
            while reply is None or result is None:
                msg = await self.read(timeout)
                if msg is None:
                    raise ConnectionError("closed while waiting")
                if protocol.is_reply(msg) and msg["id"] == req_id:
                    reply = msg
                elif msg.get("Event") == protocol.E_ACTION_RESULT and msg.get("UID") == uid:
                    result = msg
        return reply, result

    async def login(self, username: str | None = None, password: str | None = None, manager: bool = True) -> None:
        username = _conf().SIM_USER if username is None else username
        password = _conf().SIM_PASSWORD if password is None else password
        req_id, _ = await self.request(protocol.M_AUTHENTICATE, {"Base": protocol.auth_base(username, password)})
        reply = await self.wait_for(lambda m: protocol.is_reply(m) and m["id"] == req_id)
        assert "authbase" in reply, reply
        if manager:
            _, result = await self.command(wire.M_MANAGER_MODE)
            assert result["ActionResultInt"] == 4 and result["ParamRet"][wire.RET] == wire.RET_DONE, result

    async def robotarget(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """A RoboTarget command that must succeed (4 and ret DONE); returns its ParamRet."""
        _, result = await self.command(method, params)
        assert result["ActionResultInt"] == 4 and result["ParamRet"][wire.RET] == wire.RET_DONE, result
        return result["ParamRet"]

    async def closed(self, timeout: float = 10.0) -> bool:
        """Wait for the server to close the link; messages before EOF are kept in ``backlog``."""
        async with asyncio.timeout(timeout):
            while True:
                raw = await self._readline()
                if not raw:
                    return True
                self.backlog.append(protocol.decode_line(raw))

    async def drain_events(self, quiet: float = 0.3) -> list[dict[str, Any]]:
        """Everything already sent to us (reads until ``quiet`` s pass without a line)."""
        out = list(self.backlog)
        self.backlog.clear()
        while True:
            try:
                async with asyncio.timeout(quiet):
                    raw = await self._readline()
            except TimeoutError:
                return out
            if not raw:
                return out
            out.append(protocol.decode_line(raw))

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


@pytest_asyncio.fixture
async def raw_client() -> AsyncIterator[Callable[[VoyagerSimulator], Awaitable[RawClient]]]:
    clients: list[RawClient] = []

    async def connect(sim: VoyagerSimulator) -> RawClient:
        client = await RawClient.connect(sim.port)
        clients.append(client)
        return client

    yield connect
    for c in clients:
        await c.close()


@pytest_asyncio.fixture
async def night_sim(sim_factory: Callable[..., Awaitable[VoyagerSimulator]]) -> Callable[..., Awaitable[VoyagerSimulator]]:
    """``await night_sim(**overrides)``: a paused simulator at ``SIM_START`` with small seeded frames."""

    async def make(**overrides: Any) -> VoyagerSimulator:
        return await sim_factory(**(NIGHT_DEFAULTS | overrides))

    return make
