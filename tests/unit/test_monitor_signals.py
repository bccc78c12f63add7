"""The monitor's signals of one poll (``activities.monitor._all_of``): several in flight at once,
within a bound, each one run to its end even when another fails, then the first failure raised."""

from __future__ import annotations

import asyncio

import pytest

from activities.monitor import SIGNAL_CONCURRENCY, _all_of


async def test_signals_of_a_poll_run_concurrently_within_the_bound():
    running = peak = 0

    async def step(i: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return i % 2

    assert await _all_of([step(i) for i in range(40)], SIGNAL_CONCURRENCY) == [i % 2 for i in range(40)]
    assert peak == SIGNAL_CONCURRENCY > 1


async def test_a_failed_signal_lets_the_others_finish_then_fails_the_poll():
    finished: list[int] = []

    async def step(i: int) -> int:
        await asyncio.sleep(0.01 * (i % 3))
        if i == 1:
            raise ConnectionError("Temporal away")
        finished.append(i)
        return 1

    with pytest.raises(ConnectionError):
        await _all_of([step(i) for i in range(10)], 4)
    assert sorted(finished) == [i for i in range(10) if i != 1]
