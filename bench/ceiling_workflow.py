"""Ceilings of the benches: a bare workflow that runs two no-op activities (orders end to end,
history), a bare workflow that waits for a signal (worker memory), and the same wait after the
commands a waiting order has issued, with nothing of Stellar's (worker memory: what the SDK keeps
for a waiting workflow of the order's shape).

Kept in its own file with nothing but temporalio imports, so the worker's workflow sandbox loads it
as cheaply as any workflow can be loaded.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
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


class _WaitsForFinish:
    """The bench's handle on a waiting ceiling workflow: signal ``finish`` ends the wait, query
    ``waiting`` is true once the workflow waits and until it is finished. A plain base class: the
    SDK takes signal and query handlers from a workflow class's bases (``@workflow.run`` must be on
    the class itself; an override of a handler must carry its decorator again; temporalio
    ``workflow/_definition.py``)."""

    def __init__(self) -> None:
        self._finished = False
        self._waiting = False

    async def _wait_for_finish(self) -> None:
        self._waiting = True
        await workflow.wait_condition(lambda: self._finished)

    @workflow.signal
    def finish(self) -> None:
        self._finished = True

    @workflow.query
    def waiting(self) -> bool:
        return self._waiting and not self._finished


@workflow.defn(name="BenchBareWaiting")
class BareWaiting(_WaitsForFinish):
    """Waits until signalled ``finish``: the least a workflow waiting for its night can hold."""

    @workflow.run
    async def run(self, value: int) -> int:
        await self._wait_for_finish()
        return value


@dataclass
class Padded:
    """A no-op step's payload: ``reply`` = the byte length of the JSON payload the step returns,
    ``data`` = padding that brings this payload's own JSON to the size asked (:func:`padded`)."""

    reply: int
    data: str = ""


def padded(size: int, reply: int = 0) -> Padded:
    """A :class:`Padded` whose JSON payload (``{"reply":…,"data":"…"}``) is ``size`` bytes."""
    return Padded(reply, "x" * max(0, size - len(f'{{"reply":{reply},"data":""}}')))


@activity.defn(name="bench.padded")
async def reply_padded(arg: Padded) -> str:
    """A string whose JSON payload is ``arg.reply`` bytes: a no-op step with the result size of an
    order's step."""
    return "x" * max(0, arg.reply - 2)


#: Payload sizes (bytes of JSON) of a waiting order's steps, M42 with one shot (as a recorded
#: order history holds them): ``load_order``'s result, ``price_and_hold``'s request and result,
#: ``submit_target``'s request and result.
LOAD_RESULT, HOLD_REQUEST, HOLD_RESULT, SUBMIT_REQUEST, SUBMIT_RESULT = 633, 237, 462, 621, 173
#: The deadline timer of a waiting order (an order's default lifetime), the patches it checks.
_DEADLINE = timedelta(days=30)
#: One patch check, as the order's before its first night (the life cycle in fewer steps; the order
#: checks the night-from-the-monitor patch only when a night ends).
_PATCH = "bench-order-shaped"
_STEP = timedelta(seconds=60)


@workflow.defn(name="BenchOrderShaped")
class OrderShaped(_WaitsForFinish):
    """The commands an order issues before it waits for its night (workflows/order.py, up to its
    first wait for a session), with no-op steps of the order's payload sizes and nothing of
    Stellar's, then waits until signalled ``finish``: one patch check; the initial visibility (four
    search attributes, the summary memo); ``load_order`` as a local activity; the deadline timer
    and the abort arbiter as tasks; the hold as an activity, then ``held``; the submit as an
    activity awaited beside the interruption check, then ``submitted``; the wait on a condition.
    The order's handlers are there too (two session signals, abort as a signal and as a validated
    update, the status query), doing nothing; the order keeps the hold's result and drops the
    loaded order, so does this. ``waiting`` is true once it waits."""

    def __init__(self) -> None:
        super().__init__()
        self._value = 0
        self._status = "pending"
        self._hold = ""
        self._target = ""
        self._candidates: list[str] = []
        self._deadline_reached = False

    def _visibility(self, initial: bool = False) -> None:
        updates = [_STATUS.value_set(self._status)]
        if initial:
            updates += [_CUSTOMER.value_set("12"), _TARGET.value_set("M42"), _PLAN.value_set("nebula")]
        workflow.upsert_search_attributes(updates)
        summary: dict = {"order_id": self._value, "customer_id": 12, "plan": "nebula", "target_name": "M42",
                         "status": self._status, "reason": ""}
        if self._hold:
            summary["cost"] = 1
        if self._target:
            summary["target_guid"] = self._target
        workflow.upsert_memo({"summary": summary})

    def _interrupted(self) -> bool:
        return bool(self._candidates) or self._deadline_reached

    async def _deadline_timer(self) -> None:
        await workflow.sleep(_DEADLINE)
        self._deadline_reached = True

    async def _arbitrate(self) -> None:
        await workflow.wait_condition(lambda: bool(self._candidates))

    @workflow.run
    async def run(self, value: int) -> int:
        workflow.patched(_PATCH)
        self._value = value
        self._visibility(initial=True)
        loaded = await workflow.execute_local_activity(reply_padded, padded(16, LOAD_RESULT),
                                                       start_to_close_timeout=_STEP)
        deadline = asyncio.create_task(self._deadline_timer())
        arbiter = asyncio.create_task(self._arbitrate())
        self._target = str(workflow.uuid4())  # the order draws its Target and Shot GUIDs here
        workflow.uuid4()
        self._hold = await workflow.execute_activity(reply_padded, padded(HOLD_REQUEST, HOLD_RESULT),
                                                     start_to_close_timeout=_STEP)
        self._status = "held"
        self._visibility()
        del loaded  # the submit request is built from it, then it is dropped
        submit = workflow.start_activity(reply_padded, padded(SUBMIT_REQUEST, SUBMIT_RESULT),
                                         start_to_close_timeout=_STEP)
        await workflow.wait_condition(lambda: submit.done() or self._interrupted())
        submit.result()
        self._status = "submitted"
        self._visibility()
        await self._wait_for_finish()
        for task in (deadline, arbiter):
            task.cancel()
        return value

    @workflow.signal(name="session_started")
    def session_started(self, sig: dict) -> None:
        """No session comes while the bench holds it."""

    @workflow.signal(name="session_ended")
    def session_ended(self, sig: dict) -> None:
        """No session comes while the bench holds it."""

    @workflow.signal(name="abort")
    def abort_signal(self, req: dict) -> None:
        self._candidates.append("signal")

    @workflow.update(name="abort")
    async def abort_update(self, req: dict) -> bool:
        self._candidates.append("update")
        return True

    @abort_update.validator
    def _validate_abort(self, req: dict) -> None:
        pass

    @workflow.query(name="status")
    def status(self) -> str:
        return self._status
