"""Ceilings of the benches: a bare workflow that runs two no-op activities (orders end to end,
history), and a bare workflow that waits for a signal (worker memory).

Kept in its own file with nothing but temporalio imports, so the worker's workflow sandbox loads it
as cheaply as any workflow can be loaded.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench.noop")
async def noop(value: int) -> int:
    """Return ``value``: an activity that does nothing."""
    return value


@workflow.defn(name="BenchTwoActivities")
class TwoActivities:
    """Two no-op activities in sequence, then return: the least a two-step workflow costs."""

    @workflow.run
    async def run(self, value: int) -> int:
        first = await workflow.execute_activity(noop, value, start_to_close_timeout=timedelta(seconds=60))
        return await workflow.execute_activity(noop, first + 1, start_to_close_timeout=timedelta(seconds=60))


@workflow.defn(name="BenchBareWaiting")
class BareWaiting:
    """Waits until signalled ``finish``: the least a workflow waiting for its night can hold."""

    def __init__(self) -> None:
        self._finished = False

    @workflow.run
    async def run(self, value: int) -> int:
        await workflow.wait_condition(lambda: self._finished)
        return value

    @workflow.signal
    def finish(self) -> None:
        self._finished = True

    @workflow.query
    def waiting(self) -> bool:
        return not self._finished
