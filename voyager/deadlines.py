"""Deadlines of many waiting futures behind one loop timer: the timeouts of the pool's hot path.

``asyncio.timeout()`` (or a ``call_at`` handle) per command pushes a timer onto the event loop's
heap for every round trip and cancels it a moment later; at thousands of round trips a second that
heap work, and the periodic rebuilds that purge the cancelled handles, cost more than the reply
matching. A :class:`Deadlines` keeps ``{future: deadline}`` and arms a single timer at the earliest
one: a future that completes is merely forgotten (a dict delete), and only a future still waiting at
its deadline is failed, with ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any


class Deadlines:
    """Fails each registered future with ``TimeoutError`` once its deadline (loop time, seconds)
    passes, unless it was :meth:`discard`-ed or completed first. Needs a running loop for :meth:`add`."""

    def __init__(self) -> None:
        self._due: dict[asyncio.Future[Any], float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._when = math.inf

    def __len__(self) -> int:
        return len(self._due)

    def add(self, fut: asyncio.Future[Any], deadline: float) -> None:
        """Watch ``fut`` until ``deadline`` (``loop.time()`` scale)."""
        self._due[fut] = deadline
        if deadline < self._when:
            self._arm(deadline)

    def discard(self, fut: asyncio.Future[Any]) -> None:
        """Stop watching ``fut`` (it completed or its waiter gave up); the timer stays as it is."""
        self._due.pop(fut, None)

    def close(self) -> None:
        """Forget every future and cancel the timer."""
        self._due.clear()
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._when = None, math.inf

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._when = when
        self._timer = asyncio.get_running_loop().call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer, self._when = None, math.inf
        now = asyncio.get_running_loop().time()
        following = math.inf
        for fut, deadline in list(self._due.items()):
            if deadline <= now:
                del self._due[fut]
                if not fut.done():
                    fut.set_exception(TimeoutError())
            elif deadline < following:
                following = deadline
        if following < math.inf:
            self._arm(following)
