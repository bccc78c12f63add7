"""One Voyager Application Server connection (docs/voyager-protocol.md §1–§5).

The I/O layer over ``voyager.protocol.ClientProtocol``: ``VoyagerConnection`` owns a socket whose
asyncio protocol callback feeds received bytes straight to the sans-IO protocol (no reader task:
a reply wakes its caller in the same loop step it arrives) and a keep-alive task; the protocol numbers,
signs, matches and judges the commands. It is never reconnected: once broken it stays broken and
every pending command fails with ``VoyagerConnectionError`` (never re-sent, §2.5);
``voyager/pool.py`` replaces broken connections. Configuration comes in as plain arguments (the
settings-based construction lives with the callers, ``core/voyager_clients.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from typing import Any

import structlog

from voyager import protocol, wire
from voyager.deadlines import Deadlines
from voyager.errors import VoyagerConnectionError, VoyagerError, VoyagerTimeout
from voyager.types import ActionResult

log = structlog.get_logger(__name__)

_ids = itertools.count(1)


class VoyagerConnection:
    """One authenticated TCP connection to Voyager.

    ``host``/``port``: the Application Server; ``username`` (None = no authentication) and
    ``password``; ``mac_key`` and ``mac_words`` (the four licence words, §5); ``manager_mode``: send
    ``RemoteSetRoboTargetManagerMode`` after authentication (needed for RoboTarget commands);
    ``dashboard``: send ``RemoteSetDashboardMode`` so dashboard events flow. Timeouts in seconds.
    Errors: ``VoyagerConnectionError``, ``VoyagerTimeout``, ``VoyagerAuthError``,
    ``VoyagerRejected``, ``VoyagerActionFailed`` (see ``voyager/errors.py``).
    """

    def __init__(
        self,
        host: str,
        port: int = protocol.DEFAULT_PORT,
        *,
        username: str | None = None,
        password: str = "",
        mac_key: str = "",
        mac_words: list[str] | None = None,
        manager_mode: bool = True,
        dashboard: bool = False,
        connect_timeout: float = 5.0,
        command_timeout: float = 30.0,
        poll_interval: float = protocol.POLL_INTERVAL,
        idle_timeout: float = protocol.IDLE_TIMEOUT,
        name: str | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.username, self._password = username, password
        self._mac_key = mac_key
        self.manager_mode, self.dashboard = manager_mode, dashboard
        self.connect_timeout, self.command_timeout = connect_timeout, command_timeout
        self.poll_interval, self.idle_timeout = poll_interval, idle_timeout
        self.name = name or f"voyager-{next(_ids)}"
        self.protocol = protocol.ClientProtocol(mac_words)
        self._transport: asyncio.Transport | None = None
        self._link: _Link | None = None
        self._deadlines = Deadlines()
        self._version: asyncio.Future[None] | None = None
        self._subscribers: list[asyncio.Queue[dict[str, Any] | None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._broken: VoyagerError | None = None
        self._closing = False
        self._closed = False
        #: Called once when the link dies on its own (not on ``close()``); the pool replaces it.
        self.on_lost: Callable[[VoyagerConnection], None] | None = None
        self._last_sent = self._last_recv = time.monotonic()
        self._log = log.bind(conn=self.name, host=host, port=port)

    # ------------------------------------------------------------ state

    @property
    def session_key(self) -> str | None:
        """The ``Version`` Timestamp text (§2.1); None before it arrived."""
        return self.protocol.session_key

    @property
    def version(self) -> dict[str, Any]:
        """The server's ``Version`` event ({} before it arrived)."""
        return self.protocol.version

    @property
    def is_usable(self) -> bool:
        """Connected, handshake done, not broken and not closing."""
        return self._transport is not None and self._broken is None and not self._closing

    @property
    def broken(self) -> VoyagerError | None:
        """Why the link died (None while it is up)."""
        return self._broken

    @property
    def pending(self) -> int:
        """Outstanding waits of the commands in flight: one per reply, one per result."""
        return self.protocol.pending

    # ------------------------------------------------------------ open / close

    async def connect(self) -> VoyagerConnection:
        """Open the socket, read ``Version``, authenticate, enter manager/dashboard mode (§2, §5).

        Raises VoyagerConnectionError (refused, dropped), VoyagerTimeout, VoyagerAuthError,
        VoyagerActionFailed (manager mode refused, e.g. a bad MAC). On failure the socket is closed.
        """
        loop = asyncio.get_running_loop()
        self._version = loop.create_future()  # before the socket: Version may come with the connect
        try:
            async with asyncio.timeout(self.connect_timeout):
                self._transport, self._link = await loop.create_connection(lambda: _Link(self), self.host, self.port)
        except TimeoutError:
            raise VoyagerTimeout(f"connect to {self.host}:{self.port} timed out") from None
        except OSError as exc:
            raise VoyagerConnectionError(f"connect to {self.host}:{self.port} failed: {exc}") from exc
        try:
            async with asyncio.timeout(self.connect_timeout):
                await self._version
            self._last_recv = self._last_sent = time.monotonic()
            self._tasks = [asyncio.create_task(self._keepalive_loop(), name=f"{self.name}-keepalive")]
            await self._handshake()
        except BaseException as exc:
            await self._abort(exc if isinstance(exc, VoyagerError) else VoyagerConnectionError(str(exc)))
            if isinstance(exc, TimeoutError):
                raise VoyagerTimeout(f"no Version from {self.host}:{self.port}") from None
            raise
        self._log.info("voyager.connected", session_key=self.session_key, version=self.version.get("VOYVersion"))
        return self

    async def _handshake(self) -> None:
        t = self.connect_timeout  # each step; authentication must land inside the 5 s window (§2.2)
        if self.username:
            params = {"Base": protocol.auth_base(self.username, self._password)}
            # The authbase reply is the outcome; any later RemoteActionResult finds no waiter.
            await self.send_command(protocol.M_AUTHENTICATE, params, expect_result=False, timeout=t)
        if self.manager_mode:
            await self.send_command(wire.M_MANAGER_MODE, {wire.P_MAC_KEY: self._mac_key}, timeout=t)
        if self.dashboard:
            await self.send_command(protocol.M_DASHBOARD_MODE, {wire.DASHBOARD_IS_ON: True}, timeout=t)

    async def close(self, timeout: float = 2.0) -> None:
        """Clean close (§2.4): send ``disconnect``, wait briefly for its reply, stop the tasks.

        Idempotent; commands still waiting fail with VoyagerConnectionError.
        """
        if self._closed:
            return
        self._closed = True
        was_usable = self.is_usable
        self._closing = True  # the server's EOF after our disconnect is not a lost link
        if was_usable:
            with contextlib.suppress(VoyagerError):
                await self.send_command(protocol.M_DISCONNECT, None, expect_result=False, timeout=timeout)
        await self._abort(VoyagerConnectionError("connection closed by the client"))
        self._log.info("voyager.closed")

    async def __aenter__(self) -> VoyagerConnection:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _abort(self, exc: VoyagerError) -> None:
        """Mark broken, fail every waiter, cancel and await the tasks, close the socket."""
        self._closing = True
        self._mark_broken(exc)
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._deadlines.close()
        if self._transport is not None and self._link is not None:
            self._transport.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await asyncio.shield(self._link.closed)

    def _mark_broken(self, exc: VoyagerError) -> None:
        if self._broken is None:
            self._broken = exc
            if not self._closing:
                self._log.warning("voyager.link_lost", error=str(exc))
                if self.on_lost is not None:
                    self.on_lost(self)
        if self._version is not None and not self._version.done():
            self._version.set_exception(exc)
            self._version.exception()  # retrieved: connect() may already have given up waiting
        for call in self.protocol.fail_all():
            fut = call.waiter
            if fut is not None and not fut.done():
                fut.set_exception(VoyagerConnectionError(f"link lost while waiting: {exc}"))
        for queue in self._subscribers:
            _put_dropping_oldest(queue, None)
        if self._transport is not None:
            self._transport.close()  # the transport is gone either way

    # ------------------------------------------------------------ commands

    async def send_command(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        expect_result: bool = True,
        timeout: float | None = None,
    ) -> ActionResult:
        """Send one command and wait for its reply and (``expect_result``) its ``RemoteActionResult``.

        Adds ``UID`` (unless given, and except for ``disconnect``/``Abort``) and, for RoboTarget
        methods, the ``MAC`` of this very request (§5). ``timeout``: seconds for the whole exchange
        (default ``command_timeout``). Success: ActionResultInt 4, and for RoboTarget methods
        ``ParamRet.ret == "DONE"`` (§3). Raises VoyagerRejected (error reply), VoyagerActionFailed,
        VoyagerTimeout, VoyagerConnectionError (link down or dropped: outcome unknown, not re-sent).
        """
        if self._broken is not None or self._transport is None or (self._closing and method != protocol.M_DISCONNECT):
            raise VoyagerConnectionError(f"connection {self.name} is not usable: {self._broken}")
        # Registered before the write: the result may overtake the reply (§3).
        call, line = self.protocol.send_request(method, params, expect_result=expect_result)
        loop = asyncio.get_running_loop()
        call.waiter = done = loop.create_future()
        try:
            self._write_now(line)
            if self._link is not None and self._link.paused:
                await self._drained()
            # One timer for all the calls in flight (voyager/deadlines.py), not a timeout scope each.
            self._deadlines.add(done, loop.time() + (timeout if timeout is not None else self.command_timeout))
            await done  # resolved by _on_data once complete; the protocol has forgotten the call then
        except TimeoutError:
            self.protocol.forget(call)
            if self._broken is not None:
                raise VoyagerConnectionError(f"link lost while waiting for {call.waiting_for()}") from None
            raise VoyagerTimeout(f"timed out waiting for {call.waiting_for()}") from None
        except BaseException:
            self.protocol.forget(call)  # cancelled, or the link died (already forgotten then)
            raise
        finally:
            self._deadlines.discard(done)
        return call.outcome()

    async def _write(self, data: bytes) -> None:
        """Write one whole line; past the transport's high-water mark, wait (bounded) until it drains."""
        self._write_now(data)
        if self._link is not None and self._link.paused:
            await self._drained()

    def _write_now(self, data: bytes) -> None:
        # One write() call per whole line, so concurrent commands never interleave inside a line.
        # The transport sends at once or buffers (no coroutine on this hot path); only past its
        # high-water mark (asyncio pauses the protocol) does a writer wait, in ``_drained``.
        transport = self._transport
        if transport is None or self._link is None or self._broken is not None:
            raise VoyagerConnectionError(f"connection {self.name} is down: {self._broken}")
        try:
            transport.write(data)
        except (OSError, RuntimeError) as exc:
            err = VoyagerConnectionError(f"write failed: {exc}")
            self._mark_broken(err)
            raise err from exc
        self._last_sent = time.monotonic()

    async def _drained(self) -> None:
        """Wait, at most ``command_timeout``, until the transport's write buffer drains."""
        link = self._link
        assert link is not None
        try:
            async with asyncio.timeout(self.command_timeout):
                await link.drained()
        except TimeoutError as exc:
            err = VoyagerConnectionError("write failed: the peer stopped reading")
            self._mark_broken(err)
            raise err from exc

    # ------------------------------------------------------------ events

    def subscribe(self, maxsize: int = 1000) -> asyncio.Queue[dict[str, Any] | None]:
        """A queue receiving every event other than replies, results and Polling; ``None`` marks
        the end of the link. When full, the oldest event is dropped."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize)
        if self._broken is not None:
            queue.put_nowait(None)
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(queue)

    # ------------------------------------------------------------ tasks

    def _on_data(self, data: bytes) -> None:
        """Bytes from the socket (``_Link.data_received``): feed the protocol, wake the callers."""
        proto = self.protocol
        seen = proto.received
        try:
            for item in proto.receive_data(data):
                if type(item) is protocol.CallComplete:  # the hot path: wake the caller here
                    fut = item.call.waiter
                    if fut is not None and not fut.done():
                        fut.set_result(None)
                else:
                    self._on_received(item)
        except VoyagerError as exc:
            if self._version is not None and not self._version.done():
                self._version.set_exception(exc)  # connect() raises what broke the link, as it is
            self._mark_broken(exc if isinstance(exc, VoyagerConnectionError) else VoyagerConnectionError(str(exc)))
        if proto.received != seen:
            self._last_recv = time.monotonic()

    def _on_received(self, item: protocol.Received) -> None:
        if isinstance(item, protocol.Event):
            msg = item.message
            for queue in self._subscribers:
                _put_dropping_oldest(queue, msg)
            if msg.get("Event") == protocol.E_SHUTDOWN:
                self._mark_broken(VoyagerConnectionError("Voyager is shutting down"))
        elif isinstance(item, protocol.Version):
            if self._version is not None and not self._version.done():
                self._version.set_result(None)
        elif self._version is not None and not self._version.done():
            raise item.error  # a broken line before Version fails the connect (§2.1)
        else:
            self._log.warning("voyager.bad_line", error=str(item.error))

    async def _keepalive_loop(self) -> None:
        tick = min(self.poll_interval, self.idle_timeout) / 5
        while self._broken is None:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if now - self._last_recv > self.idle_timeout:
                self._mark_broken(VoyagerConnectionError(f"nothing received for {self.idle_timeout:g} s"))
                return
            if now - self._last_sent >= self.poll_interval:
                with contextlib.suppress(VoyagerConnectionError):
                    await self._write(protocol.encode_message(protocol.make_polling()))


class _Link(asyncio.Protocol):
    """The socket callbacks of one connection: bytes go to ``VoyagerConnection._on_data`` as they
    arrive; ``paused``/``drained()`` follow the transport's write-buffer flow control; ``closed``
    resolves when the socket is gone."""

    def __init__(self, conn: VoyagerConnection) -> None:
        self._conn = conn
        # Bytes go straight to the connection: asyncio calls this attribute, one call less per read.
        self.data_received = conn._on_data  # type: ignore[method-assign]
        self.paused = False
        self._drain: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:  # replaced per instance in __init__
        self._conn._on_data(data)

    def eof_received(self) -> bool:
        self._conn._mark_broken(VoyagerConnectionError("connection closed by Voyager"))
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"read failed: {exc}" if exc else "connection closed by Voyager"
        self._conn._mark_broken(VoyagerConnectionError(reason))
        self.resume_writing()
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None

    async def drained(self) -> None:
        """Return once the transport's write buffer fell below its low-water mark (or it closed)."""
        if not self.paused:
            return
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._drain)  # several writers may wait on the one future


def _put_dropping_oldest(queue: asyncio.Queue[Any], item: Any) -> None:
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    queue.put_nowait(item)
