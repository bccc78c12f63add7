"""A task stopped by ``cancel()`` stops, even when the wait it sits in finishes at that moment.

On Python 3.11 (the version Stellar runs) ``asyncio.wait_for`` runs its awaitable in a task of its
own; a cancel that arrives in the loop step where that inner task completes is swallowed:
``wait_for`` returns the result and the caller carries on as if never cancelled (CPython fixed it
in 3.12 by building ``wait_for`` on ``asyncio.timeout``). A loop stopped by cancellation (the
observatory monitor, the session watch, the simulator's run loop, a reader task) then runs on and
whoever awaits its end hangs: a test of the dashboard conformance suite hung for 5 minutes on one.
So Stellar's code bounds a wait with ``async with asyncio.timeout(...)``, which awaits in the same
task and lets a cancel through; the first test keeps ``asyncio.wait_for`` out of it.
"""

from __future__ import annotations

import ast
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from activities.ingest import MIN_POLL_GAP, _wait_wake
from voyager.simulator.clock import SimClock

ROOT = Path(__file__).resolve().parents[2]
#: Stellar's own code (tests are not scanned: their one-shot waits are never cancelled in a loop).
PRODUCT = ["activities", "api", "billing", "core", "mail", "models", "stellar_cli", "voyager", "web",
           "workflows", "bench", "worker.py", "site_worker.py"]


def wait_for_calls(source: str) -> list[int]:
    """Lines of ``source`` that call ``asyncio.wait_for`` or import ``wait_for`` from asyncio."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Attribute) and node.attr == "wait_for"
                and isinstance(node.value, ast.Name) and node.value.id == "asyncio"):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "asyncio" and any(a.name == "wait_for" for a in node.names):
            lines.append(node.lineno)
    return lines


def product_files() -> list[Path]:
    files: list[Path] = []
    for name in PRODUCT:
        path = ROOT / name
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return files


def test_the_scan_sees_both_spellings():
    assert wait_for_calls("import asyncio\nasync def f(e):\n    await asyncio.wait_for(e.wait(), 1)\n") == [3]
    assert wait_for_calls("from asyncio import wait_for, sleep\n") == [1]
    assert wait_for_calls("async def f(e):\n    async with asyncio.timeout(1):\n        await e.wait()\n") == []


def test_stellar_code_bounds_its_waits_with_asyncio_timeout():
    files = product_files()
    assert len(files) > 100, "the scan found too few files: is PRODUCT still the layout?"
    found = [f"{path.relative_to(ROOT)}:{line}" for path in files for line in wait_for_calls(path.read_text())]
    assert not found, ("asyncio.wait_for can swallow a cancel on Python 3.11 (this module's docstring); "
                       f"use `async with asyncio.timeout(...)`: {found}")


async def stops_when_cancelled_as_woken(wait: Callable[[], Awaitable[object]], wake: Callable[[], None],
                                        settle: float) -> bool:
    """Run ``while True: await wait()`` in a task; once it waits, ``wake()`` it and cancel the task in
    the same loop step. True when the task ended cancelled, False when it ran on."""

    async def loop() -> None:
        while True:
            await wait()

    task = asyncio.create_task(loop())
    await asyncio.sleep(settle)  # the task is now inside its wait
    wake()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2.0)
    if not done:
        task.cancel()  # a second cancel lands: the loop was swallowing the first
        await asyncio.gather(task, return_exceptions=True)
        return False
    return task.cancelled()


def event_wait(wait: Callable[[asyncio.Event], Awaitable[object]]) -> tuple[Callable[[], Awaitable[object]], Callable[[], None]]:
    """``(wait, wake)`` around one event: each wait starts with it cleared, ``wake`` sets it."""
    woken = asyncio.Event()

    async def wait_once() -> object:
        woken.clear()
        return await wait(woken)

    return wait_once, woken.set


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="wait_for no longer swallows a cancel from 3.12 on")
async def test_wait_for_swallows_a_cancel_on_this_python():
    """The hazard is real here: the same loop around ``asyncio.wait_for`` runs on after its cancel."""
    wait, wake = event_wait(lambda e: asyncio.wait_for(e.wait(), 10))
    assert not await stops_when_cancelled_as_woken(wait, wake, settle=0.05)


async def test_the_session_watch_wait_stops_when_cancelled_as_a_frame_wakes_it():
    wait, wake = event_wait(lambda e: _wait_wake(e, 10.0))
    assert await stops_when_cancelled_as_woken(wait, wake, settle=MIN_POLL_GAP + 0.1)


async def test_the_simulator_run_loop_wait_stops_when_cancelled_as_the_clock_changes():
    clock = SimClock(speed=0)
    assert await stops_when_cancelled_as_woken(lambda: clock.wait_change(10.0), lambda: clock.set_time(clock.now()),
                                               settle=0.05)
