"""This process's CPU time by part, for a bench that runs several parts in one process (the end-to-end
bench runs the Voyager simulator beside its load generator, and its ceiling's worker beside the
ceiling's client).

How it counts: :func:`part` names the part of the code run inside it; asyncio copies the context
into every task, callback, transport and listening socket created there, so the name follows
the part's work. While :class:`LoopAccount` is installed, the main thread's CPU time
(``time.thread_time``) around every event-loop callback (``asyncio.Handle._run``, pure Python in
CPython 3.11, as bench/activity_account.py times the worker's) and the CPU time of every
``asyncio.to_thread`` call are charged to the part of their context (unnamed: :data:`DEFAULT`).
"""

from __future__ import annotations

import asyncio
import asyncio.events
import contextlib
import contextvars
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator

#: The part of code that :func:`part` did not name.
DEFAULT = "bench"
_PART: contextvars.ContextVar[str] = contextvars.ContextVar("bench_part", default=DEFAULT)


def part_of(context: contextvars.Context) -> str:
    """The part :func:`part` named in ``context`` (:data:`DEFAULT` when none)."""
    return context.get(_PART, DEFAULT)


@contextlib.contextmanager
def part(name: str) -> Iterator[None]:
    """Charge what is started inside to ``name`` (tasks, servers and connections created here keep it)."""
    token = _PART.set(name)
    try:
        yield
    finally:
        _PART.reset(token)


class LoopAccount:
    """``with LoopAccount() as account:`` … ``account.seconds()``: CPU seconds by part so far (the
    main thread's event-loop callbacks and, with ``to_thread``, the ``to_thread`` work of each part).
    ``key``: a context's part (default :func:`part_of`; bench/activity_account.py names the
    running activity instead)."""

    def __init__(self, key: Callable[[contextvars.Context], str] = part_of, *, to_thread: bool = True) -> None:
        self._key, self._to_thread = key, to_thread
        self._cpu: defaultdict[str, float] = defaultdict(float)
        self._lock = threading.Lock()  # to_thread work ends on several threads
        self._saved: tuple = ()

    def seconds(self) -> dict[str, float]:
        with self._lock:
            return dict(self._cpu)

    def _charge(self, name: str, seconds: float) -> None:
        with self._lock:
            self._cpu[name] += seconds

    def __enter__(self) -> LoopAccount:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        asyncio.events.Handle._run, asyncio.to_thread = self._saved  # type: ignore[method-assign]

    def install(self) -> LoopAccount:
        """Start counting on this thread's event loop (until ``__exit__``)."""
        main, key = threading.get_ident(), self._key
        run, to_thread = asyncio.events.Handle._run, asyncio.to_thread

        def timed_run(handle: asyncio.events.Handle) -> None:
            if threading.get_ident() != main:
                return run(handle)
            t0 = time.thread_time()
            try:
                return run(handle)
            finally:
                self._charge(key(handle._context), time.thread_time() - t0)  # type: ignore[attr-defined]

        async def timed_to_thread(func, /, *args, **kwargs):
            name = key(contextvars.copy_context())

            def timed():
                t0 = time.thread_time()
                try:
                    return func(*args, **kwargs)
                finally:
                    self._charge(name, time.thread_time() - t0)

            return await to_thread(timed)

        self._saved = (run, to_thread)
        asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
        if self._to_thread:
            asyncio.to_thread = timed_to_thread  # type: ignore[assignment]
        return self
