"""The ceiling of the end-to-end orders bench: a bare workflow that runs two no-op activities.

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
