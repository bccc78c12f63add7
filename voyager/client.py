"""One Voyager Application Server connection (docs/voyager-protocol.md §1–§5).

``VoyagerConnection`` owns a socket, a reader task and a keep-alive task. It is never reconnected:
once broken it stays broken and every pending command fails with ``VoyagerConnectionError``
(never re-sent, §2.5); ``voyager/pool.py`` replaces broken connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from typing import Any

import structlog

from core.settings import VoyagerSettings
from voyager import protocol, wire
from voyager.errors import (
    VoyagerActionFailed,
    VoyagerAuthError,
    VoyagerConnectionError,
    VoyagerError,
    VoyagerProtocolError,
    VoyagerRejected,
    VoyagerTimeout,
)
from voyager.types import ActionResult

log = structlog.get_logger(__name__)

_ids = itertools.count(1)


class VoyagerConnection:
    """One authenticated TCP connection to Voyager.

    ``mac_words``: the four licence words (§5); ``manager_mode``: send
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
        self._mac_words = list(mac_words or ["", "", "", ""])
        self.manager_mode, self.dashboard = manager_mode, dashboard
        self.connect_timeout, self.command_timeout = connect_timeout, command_timeout
        self.poll_interval, self.idle_timeout = poll_interval, idle_timeout
        self.name = name or f"voyager-{next(_ids)}"
        self.session_key: str | None = None
        self.version: dict[str, Any] = {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._write_lock = asyncio.Lock()
        self._next_id = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._results: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._subscribers: list[asyncio.Queue[dict[str, Any] | None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._broken: VoyagerError | None = None
        self._closing = False
        self._closed = False
        #: Called once when the link dies on its own (not on ``close()``); the pool replaces it.
        self.on_lost: Callable[[VoyagerConnection], None] | None = None
        self._last_sent = self._last_recv = time.monotonic()
        self._log = log.bind(conn=self.name, host=host, port=port)

    @classmethod
    def from_settings(cls, settings: VoyagerSettings, **kwargs: Any) -> VoyagerConnection:
        """A connection configured from ``core.settings.VoyagerSettings`` (kwargs override)."""
        opts: dict[str, Any] = dict(
            username=settings.username or None,
            password=settings.password.get_secret_value(),
            mac_key=settings.mac_key.get_secret_value(),
            mac_words=settings.mac_word_list(),
            connect_timeout=settings.connect_timeout,
            command_timeout=settings.command_timeout,
        )
        opts.update(kwargs)
        return cls(settings.effective_host(), settings.port, **opts)

    # ------------------------------------------------------------ state

    @property
    def is_usable(self) -> bool:
        """Connected, handshake done, not broken and not closing."""
        return self._writer is not None and self._broken is None and not self._closing

    @property
    def broken(self) -> VoyagerError | None:
        """Why the link died (None while it is up)."""
        return self._broken

    @property
    def pending(self) -> int:
        """Commands waiting for a reply or result."""
        return len(self._replies) + len(self._results)

    # ------------------------------------------------------------ open / close

    async def connect(self) -> VoyagerConnection:
        """Open the socket, read ``Version``, authenticate, enter manager/dashboard mode (§2, §5).

        Raises VoyagerConnectionError (refused, dropped), VoyagerTimeout, VoyagerAuthError,
        VoyagerActionFailed (manager mode refused, e.g. a bad MAC). On failure the socket is closed.
        """
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, limit=protocol.MAX_LINE), self.connect_timeout
            )
        except TimeoutError:
            raise VoyagerTimeout(f"connect to {self.host}:{self.port} timed out") from None
        except OSError as exc:
            raise VoyagerConnectionError(f"connect to {self.host}:{self.port} failed: {exc}") from exc
        try:
            await asyncio.wait_for(self._read_version(), self.connect_timeout)
            self._last_recv = self._last_sent = time.monotonic()
            self._tasks = [
                asyncio.create_task(self._read_loop(), name=f"{self.name}-reader"),
                asyncio.create_task(self._keepalive_loop(), name=f"{self.name}-keepalive"),
            ]
            await self._handshake()
        except BaseException as exc:
            await self._abort(exc if isinstance(exc, VoyagerError) else VoyagerConnectionError(str(exc)))
            if isinstance(exc, TimeoutError):
                raise VoyagerTimeout(f"no Version from {self.host}:{self.port}") from None
            raise
        self._log.info("voyager.connected", session_key=self.session_key, version=self.version.get("VOYVersion"))
        return self

    async def _read_version(self) -> None:
        assert self._reader is not None
        while True:
            raw = await self._readline()
            msg = protocol.decode_line(raw)
            if msg.get("Event") == protocol.E_VERSION:
                self.version = msg
                # §2.1: the SessionKey is the Timestamp *text*; re-formatting the float breaks MACs.
                self.session_key = protocol.timestamp_text(raw) or str(msg.get("Timestamp", ""))
                return

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
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.wait_closed(), 1.0)

    def _mark_broken(self, exc: VoyagerError) -> None:
        if self._broken is None:
            self._broken = exc
            if not self._closing:
                self._log.warning("voyager.link_lost", error=str(exc))
                if self.on_lost is not None:
                    self.on_lost(self)
        for fut in [*self._replies.values(), *self._results.values()]:
            if not fut.done():
                fut.set_exception(VoyagerConnectionError(f"link lost while waiting: {exc}"))
                fut.exception()  # a result future whose reply failed first is never awaited: no warning
        self._replies.clear()
        self._results.clear()
        for queue in self._subscribers:
            _put_dropping_oldest(queue, None)
        if self._writer is not None:
            self._writer.close()  # wakes the reader; the transport is gone either way

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
        if self._broken is not None or self._writer is None or (self._closing and method != protocol.M_DISCONNECT):
            raise VoyagerConnectionError(f"connection {self.name} is not usable: {self._broken}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout if timeout is not None else self.command_timeout)
        request_id = next(self._next_id)
        uid = ""
        if method not in protocol.NO_RESULT_METHODS:
            params = dict(params or {})
            uid = params.setdefault(wire.P_UID, protocol.new_uid())
            if method == wire.M_MANAGER_MODE:
                params[wire.P_HASH] = self._mac(request_id, uid)
            elif wire.needs_mac(method):
                params[wire.P_MAC] = self._mac(request_id, uid)
        expect_result = expect_result and method not in protocol.NO_RESULT_METHODS
        reply_fut: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._replies[request_id] = reply_fut
        result_fut: asyncio.Future[dict[str, Any]] | None = None
        if expect_result:
            # Registered before the write: the result may overtake the reply (§3).
            result_fut = loop.create_future()
            self._results[uid] = result_fut
        try:
            await self._write(protocol.encode_request(method, params, request_id))
            reply = await self._wait(reply_fut, deadline, f"reply to {method} id={request_id}")
            if "error" in reply:
                err = reply["error"] or {}
                code, message = int(err.get("code", -1)), str(err.get("message", ""))
                cls = VoyagerAuthError if method == protocol.M_AUTHENTICATE else VoyagerRejected
                raise cls(code, message)
            if result_fut is None:
                return ActionResult(uid=uid, reply=reply)
            event = await self._wait(result_fut, deadline, f"result of {method} uid={uid}")
        finally:
            self._replies.pop(request_id, None)
            if uid:
                self._results.pop(uid, None)
        return _check_result(method, uid, event, reply)

    def _mac(self, request_id: int, uid: str) -> str:
        return protocol.compute_mac(self._mac_words, self.session_key or "", request_id, uid)

    async def _wait(self, fut: asyncio.Future[dict[str, Any]], deadline: float, what: str) -> dict[str, Any]:
        try:
            async with asyncio.timeout_at(deadline):
                return await fut
        except TimeoutError:
            if self._broken is not None:
                raise VoyagerConnectionError(f"link lost while waiting for {what}") from None
            raise VoyagerTimeout(f"timed out waiting for {what}") from None

    async def _write(self, data: bytes) -> None:
        if self._writer is None or self._broken is not None:
            raise VoyagerConnectionError(f"connection {self.name} is down: {self._broken}")
        async with self._write_lock:
            try:
                self._writer.write(data)
                await self._writer.drain()
            except (OSError, RuntimeError) as exc:
                err = VoyagerConnectionError(f"write failed: {exc}")
                self._mark_broken(err)
                raise err from exc
            self._last_sent = time.monotonic()

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

    async def _readline(self) -> bytes:
        assert self._reader is not None
        try:
            raw = await self._reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            raise VoyagerConnectionError("connection closed by Voyager") from exc
        except asyncio.LimitOverrunError as exc:
            raise VoyagerProtocolError(f"line longer than {protocol.MAX_LINE} bytes") from exc
        except (OSError, ValueError) as exc:
            raise VoyagerConnectionError(f"read failed: {exc}") from exc
        return raw

    async def _read_loop(self) -> None:
        try:
            while True:
                raw = await self._readline()
                try:
                    msg = protocol.decode_line(raw)
                except VoyagerProtocolError as exc:
                    self._log.warning("voyager.bad_line", error=str(exc))
                    continue
                self._last_recv = time.monotonic()
                self._dispatch(msg)
        except VoyagerError as exc:
            self._mark_broken(exc if isinstance(exc, VoyagerConnectionError) else VoyagerConnectionError(str(exc)))

    def _dispatch(self, msg: dict[str, Any]) -> None:
        if protocol.is_reply(msg):
            fut = self._replies.get(msg.get("id"))  # type: ignore[arg-type]
            if fut is not None and not fut.done():
                fut.set_result(msg)
            return
        event = msg.get("Event")
        if event == protocol.E_ACTION_RESULT:
            fut = self._results.get(str(msg.get("UID", "")))
            if fut is not None and not fut.done():
                fut.set_result(msg)
            return
        if event == protocol.E_POLLING:
            return
        for queue in self._subscribers:
            _put_dropping_oldest(queue, msg)
        if event == protocol.E_SHUTDOWN:
            self._mark_broken(VoyagerConnectionError("Voyager is shutting down"))

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


def _check_result(method: str, uid: str, event: dict[str, Any], reply: dict[str, Any]) -> ActionResult:
    param_ret = event.get("ParamRet") or {}
    if not isinstance(param_ret, dict):
        param_ret = {"value": param_ret}
    code = int(event.get("ActionResultInt", -1))
    motivo = str(event.get("Motivo", "") or "")
    ok = code == protocol.ActionResultInt.OK
    if ok and wire.needs_mac(method):
        ok = param_ret.get(wire.RET) == wire.RET_DONE  # RoboTarget success needs ret == "DONE" (§3)
    elif ok and method == wire.M_MANAGER_MODE:
        ok = param_ret.get(wire.RET, wire.RET_DONE) == wire.RET_DONE
    if not ok:
        raise VoyagerActionFailed(code, motivo, param_ret)
    return ActionResult(uid=uid, result_code=code, motivo=motivo, param_ret=param_ret, reply=reply)


def _put_dropping_oldest(queue: asyncio.Queue[Any], item: Any) -> None:
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    queue.put_nowait(item)
