"""Workflow history events and billable Temporal actions per order (bench report "History"), for a 1-night
order, the same night with 3× the frames, and a 3-night order of the same shots (repeat 3).

    .venv/bin/python -m bench.history [--speed 1200]

All three are POSTed to the API and run by the worker (child processes) against the Voyager
simulator (in this process, from just before a good M42 night; it fast-forwards idle days). History comes
from ``handle.fetch_history()``. The reference row is the bare two-activity workflow
(bench/ceiling_workflow.py) on the same server: the least a two-step workflow records.

Billable actions are *estimated from the history* with Temporal Cloud's rules
(docs.temporal.io/cloud/actions): 1 per workflow start (and continue-as-new, child workflow start);
1 per activity attempt (``ActivityTaskScheduled``, counting retries from the ``attempt`` of its
``ActivityTaskStarted``); 1 per workflow task that ran local activities (``MarkerRecorded`` named
``core_local_activity``, grouped by workflow task); 1 per other marker (side effect, version); 1 per
``TimerStarted``; 1 per signal received (``WorkflowExecutionSignaled``); 1 per accepted update
(``WorkflowExecutionUpdateAccepted``; rejected updates count too but leave no event); 1 per
``UpsertWorkflowSearchAttributes`` (attributes given at start are free). Memo upserts
(``WorkflowPropertiesModified``) are not listed as actions. Not in the history, so not counted:
queries, rejected updates, and **activity heartbeats** — estimated apart as 1 + the activity's
run time ÷ a third of its heartbeat timeout (how often Stellar's activities heartbeat).
"""

from __future__ import annotations

import argparse
import uuid
from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Worker

from bench._processes import progress
from bench._stack import BenchStack, run_standalone
from bench.ceiling_workflow import TwoActivities, noop
from worker import HEARTBEAT_THROTTLE
from workflows import _options as opt

E = EventType
LOCAL_ACTIVITY_MARKER = "core_local_activity"
SHOTS = [{"filter": "L", "exposure": 60, "quantity": 3}, {"filter": "R", "exposure": 60, "quantity": 2}]
FRAME_TOLERANCE = 10  # events by which signal timing varies (session seen running or only ended)
ACTION_KINDS = ("workflow", "activity attempts", "local-activity tasks", "timers", "signals", "updates",
                "search-attribute upserts", "markers", "child workflows")


@dataclass
class HistoryCount:
    """One workflow's history: ``events``, ``actions`` by kind, estimated ``heartbeats``."""

    events: int
    actions: Counter = field(default_factory=Counter)
    heartbeats: int = 0

    @property
    def billable(self) -> int:
        return sum(self.actions.values())


def heartbeat_period(options: dict) -> float:
    """Seconds between heartbeats reaching the server for an activity with these options: Stellar's
    activities heartbeat every third of the heartbeat timeout (activities/_heartbeat.py), and the SDK
    sends at most one per throttle interval (min(``worker.HEARTBEAT_THROTTLE``, 0.8 × timeout))."""
    timeout = options["heartbeat_timeout"].total_seconds()
    return max(timeout / 3, min(HEARTBEAT_THROTTLE.total_seconds(), 0.8 * timeout))


def count_history(history: WorkflowHistory) -> HistoryCount:
    """Events, estimated billable actions and heartbeats of one history (rules: module docstring)."""
    events = list(history.events)
    started = {e.activity_task_started_event_attributes.scheduled_event_id: e
               for e in events if e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_STARTED}
    closed = {}
    for e in events:
        for attr in ("activity_task_completed_event_attributes", "activity_task_failed_event_attributes",
                     "activity_task_canceled_event_attributes", "activity_task_timed_out_event_attributes"):
            if e.HasField(attr):
                closed[getattr(e, attr).scheduled_event_id] = e
    out = HistoryCount(events=len(events))
    la_tasks: set[int] = set()
    simple = {
        E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: "workflow",
        E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "workflow",
        E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED: "child workflows",
        E.EVENT_TYPE_TIMER_STARTED: "timers",
        E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: "signals",
        E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: "updates",
        E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: "search-attribute upserts",
    }
    for e in events:
        if e.event_type in simple:
            out.actions[simple[e.event_type]] += 1
        elif e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            start = started.get(e.event_id)
            out.actions["activity attempts"] += max(1, start.activity_task_started_event_attributes.attempt) if start else 1
            hb = e.activity_task_scheduled_event_attributes.heartbeat_timeout.ToTimedelta().total_seconds()
            end = closed.get(e.event_id)
            if hb > 0 and start is not None and end is not None:
                ran = (end.event_time.ToDatetime() - start.event_time.ToDatetime()).total_seconds()
                out.heartbeats += 1 + int(ran // (hb / 3))
        elif e.event_type == E.EVENT_TYPE_MARKER_RECORDED:
            attrs = e.marker_recorded_event_attributes
            if attrs.marker_name == LOCAL_ACTIVITY_MARKER:
                la_tasks.add(attrs.workflow_task_completed_event_id)
            else:
                out.actions["markers"] += 1
    out.actions["local-activity tasks"] = len(la_tasks)
    return out


async def reference(stack: BenchStack) -> HistoryCount:
    """History of one bare two-activity workflow on the same server."""
    queue = f"bench-history-ref-{uuid.uuid4().hex[:6]}"
    async with Worker(stack.client, task_queue=queue, workflows=[TwoActivities], activities=[noop]):
        handle = await stack.client.start_workflow(TwoActivities.run, 1, id=queue, task_queue=queue)
        await handle.result()
        return count_history(await handle.fetch_history())


async def run(stack: BenchStack, speed: float = 1200.0, shots: list[dict] | None = None,
              timeout: float = 300.0) -> str:
    """Run the three orders; returns the markdown section."""
    shots = shots or SHOTS
    triple = [{**s, "quantity": s["quantity"] * 3} for s in shots]
    per_night = sum(s["quantity"] for s in shots)
    plan = {
        f"1 night, {per_night} frames": {"shots": shots},
        f"1 night, {3 * per_night} frames": {"shots": triple},
        f"3 nights, {per_night} frames a night (repeat 3)": {"shots": shots, "repeat": 3},
    }
    progress("history: starting simulator, worker and API; 3 orders")
    async with stack.deployment("history", sim={"speed": speed}) as dep:
        (customer,) = await stack.customers(1, credits=30)
        ids = {}
        for label, extra in plan.items():
            ids[label] = (await dep.post_order(customer.api_key, {"target_name": "M42", "priority": 0, **extra}))["id"]
        await dep.wait_final(list(ids.values()), 60, label="history: submitted",
                             statuses=("submitted", "running", "settling", "completed", "partial", "failed"))
        counts = await dep.wait_final(list(ids.values()), timeout, label="history")
        async with stack.engine.connect() as conn:
            rows = {r.order_id: r for r in (await conn.execute(sa.text(
                "SELECT order_id, count(*) AS frames, count(*) FILTER (WHERE accepted) AS accepted, "
                "count(DISTINCT session_guid) AS sessions "
                "FROM shot_done WHERE order_id = ANY(:ids) GROUP BY order_id"), {"ids": list(ids.values())}))}
            statuses = dict((await conn.execute(sa.text(
                'SELECT id, status FROM "order" WHERE id = ANY(:ids)'), {"ids": list(ids.values())})).all())
        results: dict[str, HistoryCount] = {}
        for label, order_id in ids.items():
            results[label] = count_history(await stack.client.get_workflow_handle(f"order-{order_id}").fetch_history())
        await stack.terminate([f"order-{i}" for i in ids.values()])  # only if one did not finish
    ref = await reference(stack)

    def row(label: str, h: HistoryCount, nights: str, frames: str, status: str) -> str:
        kinds = " · ".join(f"{h.actions[k]}" for k in ACTION_KINDS[:7])
        return f"| {label} | {status} | {nights} | {frames} | {h.events} | {h.billable} | {kinds} | {h.heartbeats} |"

    shot_text = ", ".join(f"{s['filter']} {s['quantity']}×{s['exposure']} s" for s in shots)
    lines = [
        f"Same shots ({shot_text} a night), "
        f"M42, simulator at {speed:g}× (idle days fast-forwarded by the simulator). "
        f"Actions by kind: {' · '.join(ACTION_KINDS[:7])} (markers and child workflows: none).",
        "",
        "| workflow | status | sessions | frames taken (accepted) | history events | billable actions (history) | by kind | heartbeats (est.) |",
        "|---|---|---:|---:|---:|---:|---|---:|",
        row("reference: bare workflow, 2 no-op activities", ref, "–", "–", "completed"),
    ]
    for label, order_id in ids.items():
        r = rows.get(order_id)
        lines.append(row(label, results[label], str(r.sessions if r else 0),
                         f"{r.frames} ({r.accepted})" if r else "0",
                         statuses.get(order_id, "?")))
    one, many, three = (results[k] for k in plan)
    nights3 = rows[ids[list(plan)[2]]].sessions if ids[list(plan)[2]] in rows else 0
    extra = max(nights3 - 1, 1)
    frames_delta = many.events - one.events
    verdict = ("Frames do not add history" if abs(frames_delta) <= FRAME_TOLERANCE else
               "**Frames add history** (per-frame events belong in the database, not in the workflow)")
    watch, monitor = heartbeat_period(opt.WATCH_SESSION), heartbeat_period(opt.MONITOR_WATCH)
    lines += [
        "",
        f"{verdict}: 3× the frames in one night change the count by {frames_delta:+d} events "
        f"({many.billable - one.billable:+d} actions; up to ±{FRAME_TOLERANCE} come from whether the monitor saw a "
        f"session running before it ended). Nights add a constant: the 3-night order has "
        f"{three.events - many.events:+d} events ({three.billable - many.billable:+d} actions) more than the "
        f"1-night order of as many frames, {(three.events - many.events) / extra:.0f} events and "
        f"{(three.billable - many.billable) / extra:.0f} actions per extra night (signals, one session watch, "
        f"status changes). Statuses: {', '.join(f'{s} {n}' for s, n in sorted(counts.items()))}.",
        "",
        f"Heartbeats are not history but are billable. The session watch heartbeats every {watch:g} s while a "
        f"session runs, so a real-time night costs about {3600 / watch:,.0f} actions per observing hour per order "
        f"(the accelerated sessions here last about a second); the observatory monitor adds one every "
        f"{monitor:g} s per telescope ({3600 / monitor:,.0f} an hour), whatever the number of orders.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    """Run the bench on its own stack; print and return the markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=1200.0, help="simulated seconds per real second")
    parser.add_argument("--timeout", type=float, default=300.0)
    a = parser.parse_args(argv)
    return run_standalone(run, speed=a.speed, timeout=a.timeout)


if __name__ == "__main__":
    main()
