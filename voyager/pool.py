"""A pool of authenticated, manager-mode Voyager connections (docs/voyager-protocol.md §2.5).

Activities borrow a connection with ``async with pool.connection() as conn``. Broken connections
are replaced in the background with jittered exponential back-off; idle ones are health-checked.
Nothing is ever re-sent: a command whose link dropped fails with ``VoyagerConnectionError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog

from voyager import protocol
from voyager.client import VoyagerConnection
from voyager.deadlines import Deadlines
from voyager.errors import VoyagerAuthError, VoyagerConnectionError, VoyagerError, VoyagerTimeout

log = structlog.get_logger(__name__)


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Jittered exponential back-off (§2.5): uniform in [d/2, d], d = min(cap, base·2^attempt)."""
    d = min(cap, base * (2 ** min(attempt, 30)))
    return random.uniform(d / 2, d)


class _IdleConnections:
    """Idle connections handed to borrowers strictly first come, first served.

    (``asyncio.Queue`` lets a task that just released a connection take it straight back ahead of
    earlier waiters, which starves some borrowers and blows up tail latency under load.)
    """

    def __init__(self) -> None:
        self._conns: deque[VoyagerConnection] = deque()
        self._waiters: deque[asyncio.Future[VoyagerConnection]] = deque()

    def qsize(self) -> int:
        return len(self._conns)

    def put(self, conn: VoyagerConnection) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._conns.append(conn)

    def fail_waiters(self, exc: BaseException) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(exc)

    def take_all(self) -> list[VoyagerConnection]:
        conns = list(self._conns)
        self._conns.clear()
        return conns

    def take(self) -> VoyagerConnection | None:
        """An idle connection if one is free and nobody queues before us, else None."""
        if self._conns and not self._waiters:
            return self._conns.popleft()
        return None

    def wait(self) -> asyncio.Future[VoyagerConnection]:
        """Queue for the next connection put back: a future, first come, first served."""
        waiter: asyncio.Future[VoyagerConnection] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter

    def give_up(self, waiter: asyncio.Future[VoyagerConnection]) -> None:
        """Leave the queue (timed out, cancelled); a connection handed over just then is passed on."""
        if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
            self.put(waiter.result())
        else:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)


class _Borrow:
    """``async with pool.connection()``: a plain class, not a generator-based context manager,
    because it runs once per command on the hot path."""

    __slots__ = ("_pool", "_timeout", "_conn")

    def __init__(self, pool: VoyagerPool, timeout: float) -> None:
        self._pool, self._timeout = pool, timeout
        self._conn: VoyagerConnection | None = None

    async def __aenter__(self) -> VoyagerConnection:
        pool = self._pool
        conn = pool._idle.take() if not pool._closed else None  # no coroutine when one is free
        if conn is None or not conn.is_usable:
            if conn is not None:
                pool._discard(conn)
            conn = await pool._acquire(self._timeout)
        self._conn = conn
        return conn

    async def __aexit__(self, *exc: object) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool._release(conn)


class VoyagerPool:
    """``size`` connections in RoboTarget manager mode, each built by ``factory``.

    ``factory``: returns a fresh, unconnected ``VoyagerConnection`` (``core/voyager_clients.py``
    builds one from settings); ``acquire_timeout``: seconds to wait for a free connection;
    ``health_interval``: seconds between health checks of idle connections (``RemoteGetStatus``);
    ``backoff_base``/``backoff_max``: seconds of the reconnect back-off.
    """

    def __init__(
        self,
        factory: Callable[[], VoyagerConnection],
        size: int = 4,
        *,
        acquire_timeout: float = 10.0,
        health_interval: float = 15.0,
        backoff_base: float = 0.2,
        backoff_max: float = 30.0,
    ) -> None:
        self.size = size
        self.acquire_timeout = acquire_timeout
        self.health_interval = health_interval
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self._factory = factory
        self._idle = _IdleConnections()
        self._deadlines = Deadlines()
        self._live: set[VoyagerConnection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.replacements = 0  # connections opened after start(), for monitoring and tests
        self.last_error: VoyagerError | None = None

    # ------------------------------------------------------------ life

    async def start(self, *, strict: bool = True) -> VoyagerPool:
        """Open ``size`` connections concurrently. Failed slots are retried in the background.

        ``strict``: raise the first error (after closing the pool) when *no* connection opened.
        Raises VoyagerConnectionError, VoyagerTimeout, VoyagerAuthError, VoyagerActionFailed.
        """
        results = await asyncio.gather(*(self._open() for _ in range(self.size)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        for r in results:
            if isinstance(r, VoyagerConnection):
                self._idle.put(r)
        if errors and len(errors) == self.size and strict:
            await self.close()
            raise errors[0]
        for _ in errors:
            self._spawn(self._replace_slot())
        self._spawn(self._health_loop())
        log.info("voyager_pool.started", size=self.size, open=self.size - len(errors))
        return self

    async def close(self) -> None:
        """Stop background work and close every connection (each sends ``disconnect``)."""
        self._closed = True
        self._idle.fail_waiters(VoyagerConnectionError("the Voyager pool is closed"))
        self._deadlines.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        conns = list(self._live)
        self._live.clear()
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
        log.info("voyager_pool.closed")

    async def __aenter__(self) -> VoyagerPool:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def idle(self) -> int:
        """Connections waiting to be borrowed."""
        return self._idle.qsize()

    @property
    def live(self) -> int:
        """Open connections (idle or borrowed)."""
        return len(self._live)

    # ------------------------------------------------------------ borrowing

    def connection(self, timeout: float | None = None) -> _Borrow:
        """Borrow a usable connection for the ``async with`` body.

        ``timeout``: seconds to wait for a free one (default ``acquire_timeout``);
        raises VoyagerTimeout when none frees up, VoyagerConnectionError when the pool is closed.
        A connection that broke while borrowed is replaced, never handed out again.
        """
        return _Borrow(self, self.acquire_timeout if timeout is None else timeout)

    async def _acquire(self, timeout: float) -> VoyagerConnection:
        # One coroutine frame for the wait (it is resumed once per borrow at high concurrency).
        idle, deadlines = self._idle, self._deadlines
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if self._closed:
                raise VoyagerConnectionError("the Voyager pool is closed")
            conn = idle.take()
            if conn is None:
                waiter = idle.wait()
                deadlines.add(waiter, deadline)  # one timer for all borrowers, not a timeout scope each
                try:
                    conn = await waiter
                except TimeoutError:
                    idle.give_up(waiter)
                    detail = f" (last error: {self.last_error})" if self.last_error else ""
                    raise VoyagerTimeout(f"no free Voyager connection within {timeout:g} s{detail}") from None
                except BaseException:
                    idle.give_up(waiter)
                    raise
                finally:
                    deadlines.discard(waiter)
            if conn.is_usable:
                return conn
            self._discard(conn)

    def _release(self, conn: VoyagerConnection) -> None:
        if self._closed:
            self._spawn(conn.close())
        elif conn.is_usable:
            self._idle.put(conn)
        else:
            self._discard(conn)

    def _discard(self, conn: VoyagerConnection) -> None:
        """Close a broken connection and start replacing its slot."""
        if conn in self._live:
            self._live.discard(conn)
            log.warning("voyager_pool.connection_lost", conn=conn.name, error=str(conn.broken))
            self._spawn(conn.close())
            if not self._closed:
                self._spawn(self._replace_slot())

    # ------------------------------------------------------------ background

    async def _open(self) -> VoyagerConnection:
        conn = self._factory()
        await conn.connect()
        conn.on_lost = self._discard  # replace at once, even while the connection sits idle
        self._live.add(conn)
        return conn

    async def _replace_slot(self) -> None:
        attempt = 0
        while not self._closed:
            await asyncio.sleep(backoff_delay(attempt, self.backoff_base, self.backoff_max))
            try:
                conn = await self._open()
            except VoyagerError as exc:
                self.last_error = exc
                attempt += 1
                level = log.error if isinstance(exc, VoyagerAuthError) else log.warning
                level("voyager_pool.reconnect_failed", attempt=attempt, error=str(exc))
                continue
            if self._closed:
                await conn.close()
                return
            self.replacements += 1
            log.info("voyager_pool.reconnected", conn=conn.name, attempt=attempt)
            self._idle.put(conn)
            return

    async def _health_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.health_interval)
            for conn in self._idle.take_all():
                if conn.is_usable and await self._ping(conn):
                    self._idle.put(conn)
                else:
                    self._discard(conn)

    async def _ping(self, conn: VoyagerConnection) -> bool:
        try:
            await conn.send_command(protocol.M_GET_STATUS, timeout=min(5.0, conn.command_timeout))
        except VoyagerError as exc:
            log.warning("voyager_pool.health_check_failed", conn=conn.name, error=str(exc))
            if conn.is_usable:
                # Alive but not answering: drop it rather than hand out a wedged link.
                await conn.close()
            return False
        return True

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
