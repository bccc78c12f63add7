"""One client connection of the simulator: the session protocol of docs/voyager-protocol.md §1–§5.

The same session runs over raw TCP (CR LF lines) or a WebSocket (text frames): the framing is a
``transport.py`` object chosen when the connection opened.

``Version`` first (its ``Timestamp`` text is the SessionKey), the authentication window, ``authbase``
replies or ``Authentication Rejected`` then close, ``Polling`` after ``poll_interval`` of sending
silence, a drop after ``idle_timeout`` without a valid line, ``disconnect`` → reply 0 then close.
Received bytes come from the socket's callback (``link.py``: no read task). Outgoing messages are
whole lines collected during one loop step and written to the transport in one write at the end of
it — at the end of the received chunk they answer, or of the loop step for the others (a reply and
its result go out together; nothing interleaves inside a line). Quick commands are answered in the
reading step; the others run as tasks (so a delayed reply does not stop the reading of Polling);
their handling is in ``commands.py``. The session key, the reading of requests and the MAC checks
are ``voyager.protocol.ServerProtocol``'s.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from voyager import protocol
from voyager.errors import VoyagerProtocolError
from voyager.simulator.clock import SimClock
from voyager.simulator.config import SimulatorConfig
from voyager.simulator.link import SessionLink
from voyager.simulator.transport import Framing, LineFraming

log = structlog.get_logger(__name__)
VERSION_TEXT = "Release 2.3.14 - Built 2024-11-20 (Stellar simulator)"
_ids = itertools.count(1)
#: Lines sent while the client has not taken the previous ones (the transport still buffers):
#: past this many, a client that stopped reading is cut off.
MAX_QUEUE = 20000


class ClientSession:
    """Server side of one connection. ``dashboard``: dashboard events wanted (§4); ``log_events``:
    ``LogEvent`` lines wanted (``RemoteSetLogEvent``, §4a).

    ``config``: the simulator's settings (credentials, MAC words, keep-alive timings, host name);
    ``clock``: the simulated clock (timestamps); ``run_command(session, method, id, params)``:
    answers one command (``Commands.run``) and returns None, or what is left to run as a task; ``on_close(session)``: called when the session ends.
    ``framing``: CR LF lines or WebSocket text frames (``transport.py``); ``pending``: bytes already
    read that belong to that framing."""

    def __init__(self, config: SimulatorConfig, clock: SimClock,
                 run_command: Callable[[ClientSession, str, int, dict[str, Any]], Awaitable[None] | None],
                 on_close: Callable[[ClientSession], None],
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 framing: Framing | None = None, pending: bytes = b"") -> None:
        self.clock = clock
        self._run_command, self._on_close = run_command, on_close
        self.framing: Framing = framing or LineFraming()
        self._pending = pending
        self.cfg = config
        self.protocol = protocol.ServerProtocol(config.mac_words)
        self.reader = reader
        self.writer = writer
        self.name = f"client-{next(_ids)}"
        self.peer = writer.get_extra_info("peername")
        self.authenticated = not self.cfg.auth_enabled
        self.manager_mode = False
        self.dashboard = False
        self.log_events = False
        self.closed = asyncio.Event()
        self.inflight: dict[str, asyncio.Task[None]] = {}
        self._out: list[bytes] = []  # lines of this loop step, written by _flush
        self._flush_handle: asyncio.Handle | None = None
        self._answering = False  # in _on_data: what it sends leaves at its end, in one write
        self._input_end: asyncio.Future[None] | None = None  # resolved when nothing more is read
        self._backlog = 0  # lines sent since the transport's buffer was last empty
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_rx = self._last_tx = self._opened = time.monotonic()

    @property
    def session_key(self) -> str:
        """The Version Timestamp text this session issued (§2.1); "" before it is sent."""
        return self.protocol.session_key or ""

    # ------------------------------------------------------------ output

    def timestamp(self, t: float | None = None) -> float:
        """Simulated epoch seconds printed with 1–5 decimals, as Voyager does (§2.1)."""
        return round(self.clock.now() if t is None else t, 1 + int(random.random() * 5))  # 1–5

    def send(self, msg: dict[str, Any]) -> None:
        """Queue one message for the end of this loop step (never blocks); dropped once closing.

        A client that stops reading while events keep coming is cut off past ``MAX_QUEUE`` lines.
        """
        if self.closed.is_set():
            return
        self._out.append(protocol.encode_message(msg))
        if self._flush_handle is None and not self._answering:
            # Not a write per message: everything sent in this step leaves in one write().
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    def send_line(self, line: bytes) -> None:
        """``send`` for a message already encoded (one CR LF-terminated JSON line)."""
        if self.closed.is_set():
            return
        self._out.append(line)
        if self._flush_handle is None and not self._answering:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    def event(self, name: str, t: float | None = None, **fields: Any) -> None:
        self.send(protocol.make_event(name, self.cfg.host_name, self.cfg.inst, timestamp=self.timestamp(t), **fields))

    def _flush(self) -> None:
        self._flush_handle = None
        lines, self._out = self._out, []
        if not lines or self.writer.is_closing():
            return
        encode = self.framing.encode
        self._backlog = self._backlog + len(lines) if self.writer.transport.get_write_buffer_size() else len(lines)
        self.writer.write(b"".join(lines if encode is None else [encode(line) for line in lines]))
        self._last_tx = time.monotonic()
        if self._backlog > MAX_QUEUE and self.writer.transport.get_write_buffer_size():
            log.warning("voyager_sim.slow_client_dropped", client=self.name, queued=self._backlog)
            self.abort()

    # ------------------------------------------------------------ life cycle

    async def run(self) -> None:
        """Serve the connection until it closes."""
        keepalive = asyncio.create_task(self._keepalive_loop())
        self._tasks.add(keepalive)
        self._input_end = asyncio.get_running_loop().create_future()
        # Sub-millisecond jitter: even on a paused clock no two connections share a SessionKey.
        ts = self.timestamp(self.clock.now() + random.random() * 1e-3)
        self.send(self.protocol.version_event(ts, self.cfg.host_name, self.cfg.inst,
                                              VOYVersion=VERSION_TEXT, VOYSubver="", MsgVersion=1))
        log.info("voyager_sim.connected", client=self.name, peer=str(self.peer))
        # No read task: the socket's callback hands each chunk to _on_data (link.py).
        link = self.writer.transport.get_protocol()
        assert isinstance(link, SessionLink), link
        data, self._pending = self._pending, b""
        if data:
            self._on_data(data)
        link.attach(self._on_data, self._end_input)
        try:
            await asyncio.wait({self._input_end, keepalive}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await self.close()

    async def close(self, flush: bool = True, timeout: float = 2.0) -> None:
        """Close the connection; ``flush`` first writes what is queued (e.g. a reply, ``ShutDown``)."""
        if self.closed.is_set():
            return
        self.closed.set()
        self._end_input()
        current = asyncio.current_task()
        for task in list(self.inflight.values()):
            task.cancel()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        if flush and not self.writer.is_closing():
            self._flush()
            self.writer.write(self.framing.goodbye())
            try:
                async with asyncio.timeout(timeout):
                    await self.writer.drain()
            except (TimeoutError, Exception):  # noqa: BLE001 - closing anyway
                pass
        for task in self._tasks:
            if task is not current:
                task.cancel()
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001 - transport already gone
            pass
        self._on_close(self)
        log.info("voyager_sim.disconnected", client=self.name)

    def abort(self) -> None:
        """Drop the link at once, without ``ShutDown`` (a network failure or a crash)."""
        self.closed.set()
        self._end_input()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        for task in [*self._tasks, *self.inflight.values()]:
            task.cancel()
        self.writer.transport.abort()
        self._on_close(self)

    async def _keepalive_loop(self) -> None:
        tick = min(self.cfg.poll_interval, self.cfg.idle_timeout, self.cfg.auth_window) / 5
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if not self.authenticated and now - self._opened >= self.cfg.auth_window:
                log.info("voyager_sim.auth_timeout", client=self.name)
                return
            if now - self._last_rx >= self.cfg.idle_timeout:
                log.info("voyager_sim.idle_cutoff", client=self.name)
                return
            if now - self._last_tx >= self.cfg.poll_interval and self.authenticated:
                self.event(protocol.E_POLLING)
                self._last_tx = now

    # ------------------------------------------------------------ input

    def _end_input(self) -> None:
        """Nothing more is read (EOF, the link lost, a bad frame, ``disconnect``): ``run`` closes."""
        end = self._input_end
        if end is not None and not end.done():
            end.set_result(None)

    def _on_data(self, data: bytes) -> None:
        """One chunk received: answer its requests; what they send leaves in one write at the end."""
        end = self._input_end
        if end is None or end.done():
            return
        framing = self.framing
        try:
            lines = framing.feed(data)
        except VoyagerProtocolError:
            self._end_input()
            return
        control = framing.take_output()  # WebSocket pong / close reply
        if control:
            self.writer.write(control)
        if framing.closed:
            self._end_input()
            return
        receive_line, valid = self.protocol.receive_line, False
        self._answering = True
        try:
            for line in lines:
                try:
                    request = receive_line(line)
                except VoyagerProtocolError:
                    continue  # not valid: does not count for the idle cutoff
                valid = True
                if request is None:
                    continue  # client Polling, or no request at all
                if isinstance(request, dict):
                    self.send(request)  # the error reply to a malformed request
                    continue
                if not self._on_request(request):
                    self._end_input()
                    break
        finally:
            self._answering = False
            if valid:
                self._last_rx = time.monotonic()
            if self._out and self._flush_handle is None:
                self._flush()

    def _on_request(self, request: protocol.Request) -> bool:
        """Handle one request (never waits: slow commands become tasks); False ends the session."""
        method, req_id, params = request.method, request.id, request.params
        if method == protocol.M_AUTHENTICATE:
            return self._authenticate(req_id, params)
        if not self.authenticated:
            self.send(protocol.make_reply_error(req_id, 1, protocol.AUTH_REJECTED_MESSAGE))
            return False
        if method == protocol.M_DISCONNECT:
            self.send(protocol.make_reply_result(req_id, 0))
            return False
        rest = self._run_command(self, method, req_id, params)
        if rest is None:
            return True  # answered at once
        task = asyncio.ensure_future(rest)
        # RemoteActionAbort's UID names the action to abort, so it is not tracked under it.
        key = f"id:{req_id}" if method == protocol.M_ACTION_ABORT else (str(params.get("UID", "")) or f"id:{req_id}")
        self.inflight[key] = task
        task.add_done_callback(lambda _t, key=key: self.inflight.pop(key, None) if self.inflight.get(key) is _t else None)
        return True

    def _authenticate(self, req_id: int, params: dict[str, Any]) -> bool:
        user = password = ""
        try:
            decoded = base64.b64decode(str(params.get("Base", "")), validate=True).decode("utf-8")
            user, _, password = decoded.partition(":")
        except (binascii.Error, UnicodeDecodeError):
            pass
        if self.cfg.auth_enabled and (user != self.cfg.username or password != self.cfg.password):
            log.info("voyager_sim.auth_rejected", client=self.name, username=user)
            self.send(protocol.make_reply_error(req_id, 1, protocol.AUTH_REJECTED_MESSAGE))
            return False
        self.authenticated = True
        self.send(protocol.make_authbase_reply(req_id, user or (self.cfg.username or "")))
        return True
