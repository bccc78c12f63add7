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
run time ÷ its heartbeat period (a third of its heartbeat timeout, 2 min for the session watch),
the session watch's run time being its session's length on Voyager's clock (real speed).

The cost section prices actions + heartbeats per 1-night and 3-night order at a published hosted
Temporal price (:data:`PRICE_PER_MILLION_ACTIONS`, :data:`PRICE_SOURCE`).
"""

from __future__ import annotations

import argparse
import math
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
from bench._stats import pct
from bench.frame_latency import SSE_GOAL, frame_latency
from core.settings import VoyagerSettings
from activities.ingest import WATCH_HEARTBEAT_EVERY
from worker import HEARTBEAT_THROTTLE
from workflows import _options as opt

E = EventType
SHOTS = [{"filter": "L", "exposure": 60, "quantity": 3}, {"filter": "R", "exposure": 60, "quantity": 2}]
FRAME_TOLERANCE = 10  # events by which signal and workflow-task timing varies
#: Goals (bench report): history events an extra night adds, heartbeats an observing hour.
NIGHT_GOAL = 8
HEARTBEAT_GOAL = 30
#: The published hosted-Temporal price the cost section uses, and where it is published.
PRICE_PER_MILLION_ACTIONS = 50.0
PRICE_SOURCE = ("Temporal Cloud pay-as-you-go list price, first 5 M actions of a month, and every volume on the "
                "Developer plan (docs.temporal.io/cloud/pricing, the pricing in force since February 2025; "
                "read 2026-12-01)")
#: The name of a local activity's marker event (the other markers: patches, side effects).
LOCAL_ACTIVITY_MARKER = "core_local_activity"
ACTION_KINDS = ("workflow", "activity attempts", "local-activity tasks", "timers", "signals", "updates",
                "search-attribute upserts", "markers", "child workflows")


@dataclass
class HistoryCount:
    """One workflow's history: ``events``, ``actions`` by kind, estimated ``heartbeats`` (as run
    here) and ``heartbeats_real`` (every activity but the session watch as run here, plus the
    watch's at real speed once :meth:`add_sessions` gave the sessions' lengths), ``by_type``:
    events by history event type (activities by name)."""

    events: int
    actions: Counter = field(default_factory=Counter)
    heartbeats: int = 0
    heartbeats_real: int = 0
    by_type: Counter = field(default_factory=Counter)

    @property
    def billable(self) -> int:
        return sum(self.actions.values())

    def add_sessions(self, seconds: list[float]) -> None:
        """Add the session watches' heartbeats at real speed: one as each starts, then one every
        ``WATCH_HEARTBEAT_EVERY`` s of its session (``seconds``: the sessions' lengths), for as many
        sessions as the history scheduled watches (none when the monitor closed every night)."""
        watches = self.by_type[f"activity_task_scheduled {SESSION_WATCH}"]
        self.heartbeats_real += sum(1 + int(max(0.0, d) // WATCH_HEARTBEAT_EVERY) for d in seconds[:watches])


#: Activities that heartbeat on a cadence of their own rather than a third of their timeout.
HEARTBEAT_EVERY = {"ingest.watch_session": WATCH_HEARTBEAT_EVERY}
#: The activity that lasts as long as a session: its heartbeats at real speed are estimated from the
#: sessions' own (simulated) start and end in ``voyager_session``, not from its accelerated run time.
SESSION_WATCH = "ingest.watch_session"
SUBMIT = "voyager.submit_target"


def heartbeat_period(options: dict, activity: str = "") -> float:
    """Seconds between heartbeats reaching the server for ``activity`` with these options: Stellar's
    activities heartbeat every third of the heartbeat timeout (activities/_heartbeat.py) unless
    :data:`HEARTBEAT_EVERY` names them, and the SDK sends at most one per throttle interval
    (min(``worker.HEARTBEAT_THROTTLE``, 0.8 × timeout))."""
    timeout = options["heartbeat_timeout"].total_seconds()
    every = HEARTBEAT_EVERY.get(activity, timeout / 3)
    return max(every, min(HEARTBEAT_THROTTLE.total_seconds(), 0.8 * timeout))


def _event_kind(e, names: dict[int, str]) -> str:
    """A short name of the event's type; activity events carry their activity's name."""
    kind = E.Name(e.event_type).removeprefix("EVENT_TYPE_").lower()
    if e.HasField("activity_task_scheduled_event_attributes"):
        return f"{kind} {e.activity_task_scheduled_event_attributes.activity_type.name}"
    for attr in ("activity_task_started_event_attributes", "activity_task_completed_event_attributes",
                 "activity_task_failed_event_attributes", "activity_task_canceled_event_attributes",
                 "activity_task_timed_out_event_attributes", "activity_task_cancel_requested_event_attributes"):
        if e.HasField(attr):
            return f"{kind} {names.get(getattr(e, attr).scheduled_event_id, '?')}"
    if e.HasField("workflow_execution_signaled_event_attributes"):
        return f"{kind} {e.workflow_execution_signaled_event_attributes.signal_name}"
    return kind


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
    names = {e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
             for e in events if e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED}
    out.by_type.update(_event_kind(e, names) for e in events)
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
            hb = e.activity_task_scheduled_event_attributes.heartbeat_timeout.ToTimedelta()
            end = closed.get(e.event_id)
            if hb.total_seconds() > 0 and start is not None and end is not None:
                name = names[e.event_id]
                period = heartbeat_period({"heartbeat_timeout": hb}, name)
                ran = (end.event_time.ToDatetime() - start.event_time.ToDatetime()).total_seconds()
                out.heartbeats += 1 + int(ran // period)
                if name != SESSION_WATCH:
                    out.heartbeats_real += 1 + int(ran // period)
        elif e.event_type == E.EVENT_TYPE_MARKER_RECORDED:
            attrs = e.marker_recorded_event_attributes
            if attrs.marker_name == LOCAL_ACTIVITY_MARKER:
                la_tasks.add(attrs.workflow_task_completed_event_id)
            else:
                out.actions["markers"] += 1
    out.actions["local-activity tasks"] = len(la_tasks)
    return out


#: The parts of a night in an order's history (:func:`night_parts`), in the order they happen.
NIGHT_PARTS = ("the monitor's signal", "workflow tasks (3 events each)", "the session watch (scheduled, started, "
               "completed)", "`OrderStatus` upserts (`running`, then `submitted`)")


@dataclass
class NightParts:
    """The nights of a multi-night order as its history recorded them: ``nights`` (events by
    part, one Counter a night, each from a session signal to the next one), ``upserts`` and
    ``upserts_sharing`` (upserts written by a workflow task that also wrote another command)."""

    nights: list[Counter] = field(default_factory=list)
    upserts: int = 0
    upserts_sharing: int = 0

    def mean(self, part: str) -> float:
        return sum(n[part] for n in self.nights) / len(self.nights) if self.nights else math.nan

    def events(self) -> float:
        return sum(sum(n.values()) for n in self.nights) / len(self.nights) if self.nights else math.nan


def night_parts(history: WorkflowHistory) -> NightParts:
    """Split ``history`` at its session signals: each span from one signal to the next is a whole
    night (signal, its workflow task, the watch, the workflow task of its result, the status
    upserts; the last night, which goes on to settle, is left out, and so is a night whose signal came
    before the submit's result). Counts the ``OrderStatus``
    upserts whose workflow task also wrote another command: sharing a task saves no event."""
    events = list(history.events)
    watches = {e.event_id for e in events if e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
               and e.activity_task_scheduled_event_attributes.activity_type.name == SESSION_WATCH}

    def part(e) -> str:
        t = e.event_type
        if t == E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            return NIGHT_PARTS[0]
        if t in (E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
                 E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED):
            return NIGHT_PARTS[1]
        if e.event_id in watches or (t in (E.EVENT_TYPE_ACTIVITY_TASK_STARTED, E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
                                     and (e.activity_task_started_event_attributes.scheduled_event_id
                                          if t == E.EVENT_TYPE_ACTIVITY_TASK_STARTED
                                          else e.activity_task_completed_event_attributes.scheduled_event_id) in watches):
            return NIGHT_PARTS[2]
        if t == E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            return NIGHT_PARTS[3]
        return E.Name(t).removeprefix("EVENT_TYPE_").lower()

    # A session that started before the submit activity returned (Voyager ran the target at once)
    # would count the submit's completion, its workflow task and the `submitted` upsert as the night's:
    # nights start at signals after the submit's result.
    submits = {e.event_id for e in events if e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
               and e.activity_task_scheduled_event_attributes.activity_type.name == SUBMIT}
    submitted = max((i for i, e in enumerate(events) if e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
                     and e.activity_task_completed_event_attributes.scheduled_event_id in submits), default=-1)
    starts = [i for i, e in enumerate(events) if i > submitted
              and e.event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
              and e.workflow_execution_signaled_event_attributes.signal_name.startswith("session_")]
    out = NightParts(nights=[Counter(part(e) for e in events[a:b]) for a, b in zip(starts, starts[1:])])
    # Commands each write an event; which workflow task wrote each one:
    by_task: Counter = Counter()
    upsert_tasks: list[int] = []
    for e in events:
        attrs = e.upsert_workflow_search_attributes_event_attributes if e.event_type == \
            E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES else None
        if attrs is not None:
            upsert_tasks.append(attrs.workflow_task_completed_event_id)
        for name in ("activity_task_scheduled_event_attributes", "upsert_workflow_search_attributes_event_attributes",
                     "timer_started_event_attributes", "marker_recorded_event_attributes",
                     "workflow_properties_modified_event_attributes"):
            if e.HasField(name):
                by_task[getattr(e, name).workflow_task_completed_event_id] += 1
    out.upserts = len(upsert_tasks)
    out.upserts_sharing = sum(1 for t in upsert_tasks if by_task[t] > 1)
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
    async with stack.deployment("history", sim={"speed": speed}) as dep, \
            frame_latency(VoyagerSettings(**{k: v for k, v in dep.groups["voyager"].items() if v is not None})) as frames:
        assert dep.http is not None
        (customer,) = await stack.customers(1, credits=30)
        ids = {}
        for label, extra in plan.items():
            ids[label] = (await dep.post_order(customer.api_key, {"target_name": "M42", "priority": 0, **extra}))["id"]
            frames.follow(dep.http, customer.api_key, ids[label])
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
            # A session's length on Voyager's (simulated) clock: its start to its end as the monitor
            # stored them, or, when the monitor has not stored the end yet, to its last frame's end.
            session_seconds: dict[int, list[float]] = {}
            for r in (await conn.execute(sa.text(
                    "SELECT d.order_id, d.session_guid, "
                    "  extract(epoch FROM coalesce(v.ended_at, max(d.taken_at + d.exposure * interval '1 second'))"
                    "                   - coalesce(v.started_at, min(d.taken_at))) AS seconds "
                    "FROM shot_done d LEFT JOIN voyager_session v ON v.session_guid = d.session_guid "
                    "WHERE d.order_id = ANY(:ids) GROUP BY d.order_id, d.session_guid, v.started_at, v.ended_at"),
                    {"ids": list(ids.values())})).all():
                session_seconds.setdefault(r.order_id, []).append(float(r.seconds or 0.0))
        results: dict[str, HistoryCount] = {}
        parts = NightParts()
        for label, order_id in ids.items():
            fetched = await stack.client.get_workflow_handle(f"order-{order_id}").fetch_history()
            results[label] = count_history(fetched)
            results[label].add_sessions(session_seconds.get(order_id, []))
            if label == list(plan)[2]:
                parts = night_parts(fetched)
        await stack.terminate([f"order-{i}" for i in ids.values()])  # only if one did not finish
        await frames.close()
    sse = frames.latencies()
    ref = await reference(stack)

    def row(label: str, h: HistoryCount, nights: str, frames: str, status: str) -> str:
        kinds = " · ".join(f"{h.actions[k]}" for k in ACTION_KINDS[:8])
        return (f"| {label} | {status} | {nights} | {frames} | {h.events} | {h.billable} | {kinds} | "
                f"{h.heartbeats_real} |")

    shot_text = ", ".join(f"{s['filter']} {s['quantity']}×{s['exposure']} s" for s in shots)
    lines = [
        f"Same shots ({shot_text} a night), "
        f"M42, simulator at {speed:g}× (idle days fast-forwarded by the simulator). "
        f"Actions by kind: {' · '.join(ACTION_KINDS[:8])} (markers: the `workflow.patched` ones; child "
        f"workflows: none). Heartbeats: "
        f"estimated at real speed (the session watch's from the sessions' length on Voyager's clock, every other "
        f"activity's as it ran).",
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
    per_night = (three.events - many.events) / extra
    verdict = ("Frames do not add history" if abs(frames_delta) <= FRAME_TOLERANCE else
               "**Frames add history** (per-frame events belong in the database, not in the workflow)")
    watch, monitor = heartbeat_period(opt.WATCH_SESSION, "ingest.watch_session"), heartbeat_period(opt.MONITOR_WATCH)
    lines += [
        "",
        f"{verdict}: 3× the frames in one night change the count by {frames_delta:+d} events "
        f"({many.billable - one.billable:+d} actions; up to ±{FRAME_TOLERANCE} come from signal and workflow-task "
        f"timing). Nights add a constant: the 3-night order has "
        f"{three.events - many.events:+d} events ({three.billable - many.billable:+d} actions) more than the "
        f"1-night order of as many frames, **{per_night:.0f} events** and "
        f"{(three.billable - many.billable) / extra:.0f} actions per extra night (goal ≤ +{NIGHT_GOAL} events). "
        f"Statuses: {', '.join(f'{s} {n}' for s, n in sorted(counts.items()))}.",
        "",
        "Where an extra night's events go (3-night order − 1-night order of as many frames, ÷ extra nights; "
        "activity events by activity, signals by name):",
        "",
        "| event | per extra night |",
        "|---|---:|",
        *(f"| {kind} | {n / extra:+.1f} |" for kind, n in sorted(((k, three.by_type[k] - many.by_type[k])
                                                                    for k in three.by_type | many.by_type),
                                                                   key=lambda kn: (-kn[1], kn[0])) if n),
        "",
        *night_text(parts),
        "",
        f"Frames of these three orders (sessions of several frames, each ingested by the observatory monitor as "
        f"it runs, no burst of "
        f"orders): **frame taken → SSE event delivered p50 {pct(sse, 50):.2f} s, p99 {pct(sse, 99):.2f} s** over "
        f"{len(sse)} frames (goal ≤ {SSE_GOAL:g} s; measured as in section 1).",
        "",
        heartbeat_text(list(results.values()), watch, monitor),
        "",
        cost_section({"1-night order": many, "3-night order": three}, monitor),
    ]
    return "\n".join(lines)


def heartbeat_text(orders: list[HistoryCount], watch: float, monitor: float) -> str:
    """Markdown: the heartbeats an order pays while its sessions run (none without a session watch)
    and the observatory monitor's, per telescope."""
    watches = sum(h.by_type.get(f"activity_task_scheduled {SESSION_WATCH}", 0) for h in orders)
    per_hour = f"{3600 / watch:,.0f}" if watches else "0"
    return (
        f"Heartbeats are not history but are billable. No activity of the order runs while its session does: "
        f"the observatory monitor ingests the frames and closes the night (docs/order-workflow.md, step 3), so an "
        f"order pays **{per_hour} heartbeats an observing hour** (goal ≤ {HEARTBEAT_GOAL}; these orders ran "
        f"{watches} session watch{'es' if watches != 1 else ''}, the fallback for a session the monitor could not "
        f"ingest, which heartbeats every {watch:g} s); the heartbeats in the table are those of its submit, close "
        f"and settle. The observatory monitor heartbeats every {monitor:g} s per telescope "
        f"({3600 / monitor:,.0f} an hour), whatever the number of orders; frames do not wait for heartbeats "
        f"(dashboard events wake the monitor: frame → SSE latency in section 1), nor do aborts.")


def night_text(parts: NightParts) -> list[str]:
    """Markdown: a whole night as the 3-night order's history recorded it, part by part, why that is
    the floor, and what the ``OrderStatus`` flip it no longer has would cost."""
    if not parts.nights:
        return ["The 3-night order's history has no two session signals to measure a night between."]
    flip = parts.mean(NIGHT_PARTS[3])
    events = parts.events()
    lines = [
        f"A whole night as the 3-night order's history recorded it (from one session signal to the next, "
        f"{len(parts.nights)} night{'s' if len(parts.nights) > 1 else ''}; the last night, which goes on to "
        f"settle, left out): **{events:.1f} events**.",
        "",
        "| part of a night | events |",
        "|---|---:|",
        *(f"| {p} | {parts.mean(p):.1f} |" for p in NIGHT_PARTS),
        *(f"| {p} | {parts.mean(p):.1f} |" for p in sorted({k for n in parts.nights for k in n} - set(NIGHT_PARTS))),
        "",
        f"The observatory monitor closes the night before the order hears of it: it writes `running` when it sees "
        f"the session run and ingests its frames as they come; when it sees the session finished it ingests the "
        f"last ones, recomputes the progress, writes `submitted` with the waiting reason when shots remain, and "
        f"signals `session_ended` carrying the progress. That signal wakes the workflow (one workflow task: "
        f"scheduled, started, completed), which decides on the progress — the next night, settle, or a one-night "
        f"order's wait for dawn — with no command of its own. One signal and its workflow task, 4 events, is the "
        f"floor of a night the order must hear of; session-watch and `OrderStatus` events above come only from a "
        f"session signalled without progress (the monitor could not ingest it: the order's watch takes over). "
        f"(The earlier floor, one watch activity a night with its two workflow tasks, held while the order "
        f"ingested its own sessions; the monitor has ingested every frame of the sessions it sees since "
        f"activities/monitor_ingest.py, so it closes them too.) The `OrderStatus` flip to `running` and back is "
        f"dropped with the watch — the workflow no longer knows that a session runs: operators list the orders "
        f"observing now from the database, the API (`GET /api/orders?status=running`) and the web app "
        f"(docs/order-workflow.md, Visibility). Kept, it would cost 2 events and 2 billable actions a night, "
        f"${2 * 1000 * PRICE_PER_MILLION_ACTIONS / 1e6:.2f} per 1,000 order-nights at the price below "
        f"(measured here: {flip:.1f} upserts a night; {parts.upserts_sharing} of this order's {parts.upserts} "
        f"upserts share their workflow task with another command, which saves no event).",
    ]
    return lines


def cost_section(orders: dict[str, HistoryCount], monitor_period: float) -> str:
    """Markdown: billable actions per order (history + real-time heartbeats) and their price per
    1,000 orders at :data:`PRICE_PER_MILLION_ACTIONS`."""
    lines = [
        "### Cost on a hosted Temporal",
        "",
        f"Price: **${PRICE_PER_MILLION_ACTIONS:g} per million actions** — {PRICE_SOURCE}. Actions per order = the "
        f"billable actions of its history + its heartbeats at real speed (estimated as above); queries are not "
        f"counted (the API does not query workflows).",
        "",
        "| order | actions (history) | heartbeats | actions in all | per 1,000 orders |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, h in orders.items():
        total = h.billable + h.heartbeats_real
        lines.append(f"| {label} | {h.billable} | {h.heartbeats_real} | {total} | "
                     f"${total * 1000 * PRICE_PER_MILLION_ACTIONS / 1e6:,.2f} |")
    per_hour = 3600 / monitor_period
    lines += ["", f"Shared by every order of a telescope: its observatory monitor, {per_hour:,.0f} heartbeats an hour "
              f"plus a continue-as-new about hourly (≈ ${per_hour * 24 * 30 * PRICE_PER_MILLION_ACTIONS / 1e6:,.2f} a "
              f"telescope-month in heartbeats)."]
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
