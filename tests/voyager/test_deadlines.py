"""voyager/deadlines.py: many futures' deadlines behind one loop timer."""

from __future__ import annotations

import asyncio

import pytest

from voyager.deadlines import Deadlines


async def test_each_future_fails_at_its_own_deadline_and_completed_ones_are_left_alone():
    loop = asyncio.get_running_loop()
    deadlines = Deadlines()
    late, early, done = loop.create_future(), loop.create_future(), loop.create_future()
    t0 = loop.time()
    deadlines.add(late, t0 + 0.30)
    deadlines.add(early, t0 + 0.10)  # earlier than the armed timer: re-armed for it
    deadlines.add(done, t0 + 0.05)
    done.set_result("answered")
    deadlines.discard(done)

    with pytest.raises(TimeoutError):
        await early
    assert 0.08 < loop.time() - t0 < 0.25 and not late.done()
    with pytest.raises(TimeoutError):
        await late
    assert loop.time() - t0 >= 0.28
    assert done.result() == "answered" and len(deadlines) == 0


async def test_close_forgets_every_future():
    loop = asyncio.get_running_loop()
    deadlines = Deadlines()
    fut = loop.create_future()
    deadlines.add(fut, loop.time() + 0.05)
    deadlines.close()
    await asyncio.sleep(0.15)
    assert not fut.done() and len(deadlines) == 0
