"""Run a blocking call on a thread of its own and wait for it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def call_on_own_thread(fn: Callable[[], T], *, name: str) -> T:
    """``fn()`` on a new thread named ``name``, joined: for work that runs its own event loop
    (Alembic's env, ``asyncio.run``), which must not meet the caller's. Blocking; returns what
    ``fn`` returns and re-raises what it raises."""
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    t = threading.Thread(target=target, name=name)
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return result[0]
