"""Ceilings of the benches: a bare workflow that runs two no-op activities (orders end to end,
history), a bare workflow that waits for a signal (worker memory), and the same wait after the
commands a waiting order has issued, with nothing of Stellar's (worker memory: what the SDK keeps
for a waiting workflow of the order's shape).

Kept in its own file with nothing but temporalio imports, so the worker's workflow sandbox loads it
as cheaply as any workflow can be loaded.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import SearchAttributeKey

#: Search attributes the order workflow upserts (the bench's Temporal server registers them).
_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
_CUSTOMER = SearchAttributeKey.for_keyword("CustomerId")
_TARGET = SearchAttributeKey.for_keyword("TargetName")
_PLAN = SearchAttributeKey.for_keyword("Plan")


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


@workflow.defn(name="BenchOrderShaped")
class OrderShaped:
    """The commands of an order before its night, with no-op steps and small payloads, then waits
    until signalled ``finish``: the order's four status upserts (search attributes + memo), four
    local activities (load, two status writes, GUIDs), two activities (hold, submit), a deadline
    timer task and an abort-arbiter task (workflows/order.py). ``waiting`` is true once it waits."""

    def __init__(self) -> None:
        self._finished = False
        self._waiting = False

    def _visibility(self, status: str, initial: bool = False) -> None:
        updates = [_STATUS.value_set(status)]
        if initial:
            updates += [_CUSTOMER.value_set("1"), _TARGET.value_set("M42"), _PLAN.value_set("bench")]
        workflow.upsert_search_attributes(updates)
        workflow.upsert_memo({"summary": {"status": status}})

    async def _local(self, value: int) -> int:
        return await workflow.execute_local_activity(noop, value, start_to_close_timeout=timedelta(seconds=60))

    async def _deadline(self) -> None:
        await workflow.sleep(timedelta(days=30))

    @workflow.run
    async def run(self, value: int) -> int:
        self._visibility("pending", initial=True)
        await self._local(value)
        deadline = asyncio.create_task(self._deadline())
        arbiter = asyncio.create_task(workflow.wait_condition(lambda: self._finished))
        await workflow.execute_activity(noop, value, start_to_close_timeout=timedelta(seconds=60))
        self._visibility("held")
        await self._local(value)
        await self._local(value)
        await workflow.execute_activity(noop, value, start_to_close_timeout=timedelta(seconds=60))
        self._visibility("submitted")
        await self._local(value)
        self._waiting = True
        await workflow.wait_condition(lambda: self._finished)
        for task in (deadline, arbiter):
            task.cancel()
        return value

    @workflow.signal
    def finish(self) -> None:
        self._finished = True

    @workflow.query
    def waiting(self) -> bool:
        return self._waiting and not self._finished
