"""Smoke runs of the benchmarks with tiny sizes: each bench function runs for real (PostgreSQL,
Temporal dev server, worker and API child processes, the Voyager simulator) and returns a table
whose structure and numbers make sense. No timing thresholds: speed is measured by ``make bench``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Worker

from bench import api_latency, e2e_budget, history, orders_e2e, worker_memory
from bench._stack import open_stack
from bench.ceiling_workflow import BareWaiting, OrderShaped, TwoActivities, noop, reply_padded
from core.database import make_engine
from tests.scratch_db import scratch_database
from worker import worker_options

pytestmark = pytest.mark.timeout(420)
ROOT = Path(__file__).resolve().parents[2]


def rows(markdown: str) -> list[list[str]]:
    """Cells of every table row of ``markdown`` except header separators."""
    out = []
    for line in markdown.splitlines():
        if line.startswith("|") and not set(line) <= set("|-: "):
            out.append([c.strip() for c in line.strip().strip("|").split("|")])
    return out


def number(cell: str) -> float:
    return float(cell.replace(",", "").split()[0])


@pytest.fixture
async def stack(database_url, temporal_env, tmp_path):
    async with open_stack(database_url=database_url, temporal=temporal_env, tmp=tmp_path) as s:
        yield s


async def test_bare_two_activity_workflow_history_counts_17_events_and_3_actions(temporal_env):
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    async with Worker(temporal_env.client, task_queue=queue, workflows=[TwoActivities], activities=[noop]):
        handle = await temporal_env.client.start_workflow(TwoActivities.run, 1, id=queue, task_queue=queue)
        assert await handle.result() == 2
    counted = history.count_history(await handle.fetch_history())
    # started, 3 × (workflow task scheduled/started/completed), 2 × (activity scheduled/started/completed), completed
    assert counted.events == 17
    assert dict(+counted.actions) == {"workflow": 1, "activity attempts": 2}
    assert counted.billable == 3 and counted.heartbeats == 0


def _events_and_sizes(history: WorkflowHistory) -> list[tuple[str, int]]:
    """(event type, bytes of its activity/local-activity payloads) of each event of ``history``,
    workflow-task events left out: a loaded machine splits a workflow task in two (a local activity
    past the task's heartbeat), which changes how many there are, not the commands or their payloads."""
    out = []
    for event in history.events:
        kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        if kind.startswith("WORKFLOW_TASK_"):
            continue
        attrs = getattr(event, event.WhichOneof("attributes"))
        fields = {f.name for f in attrs.DESCRIPTOR.fields}
        size = 0
        if kind in ("ACTIVITY_TASK_SCHEDULED", "ACTIVITY_TASK_COMPLETED"):
            size = sum(len(p.data) for p in (attrs.input if "input" in fields else attrs.result).payloads)
        elif kind == "MARKER_RECORDED" and "result" in attrs.details:
            size = sum(len(p.data) for p in attrs.details["result"].payloads)
        out.append((kind, size))
    return out


async def test_order_shaped_ceiling_issues_a_waiting_orders_commands_with_its_payload_sizes(temporal_env):
    """``BenchOrderShaped`` records, up to its wait, the events of a recorded order waiting for its
    night (tests/replay: the history the order workflow replays), step payloads of the same sizes;
    ``waiting``/``finish`` (shared with ``BenchBareWaiting``) report and end the wait."""
    recorded = WorkflowHistory.from_json("order", json.loads(
        (ROOT / "tests/replay/histories/order_expired_waiting.json").read_text()))
    order = _events_and_sizes(recorded)
    order = order[:[k for k, _ in order].index("TIMER_FIRED")]  # waiting for its night, until the deadline
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    client = temporal_env.client
    async with Worker(client, task_queue=queue, workflows=[OrderShaped, BareWaiting], activities=[reply_padded],
                      **worker_options(OrderShaped.__module__)):
        shaped = await client.start_workflow(OrderShaped.run, 22, id=f"{queue}-shaped", task_queue=queue)
        bare = await client.start_workflow(BareWaiting.run, 7, id=f"{queue}-bare", task_queue=queue)
        for handle in (shaped, bare):
            for _ in range(200):
                if await handle.query(OrderShaped.waiting):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"{handle.id} never waited")
        assert await shaped.query("status") == "submitted"
        assert _events_and_sizes(await shaped.fetch_history()) == order
        await shaped.signal(OrderShaped.finish)
        await bare.signal(BareWaiting.finish)
        assert await shaped.result() == 22 and await bare.result() == 7
        assert await bare.query(BareWaiting.waiting) is False


async def test_orders_end_to_end_settles_every_order_beside_the_ceiling(stack):
    text = await orders_e2e.run(stack, orders=3, customers=2, concurrency=2, timeout=240)

    header, ceiling, stellar, phases, spans = rows(text)[:5]
    assert header[0] == "run" and ceiling[0].startswith("ceiling") and stellar[0].startswith("Stellar order")
    assert number(ceiling[1]) == 3 and number(ceiling[3]) > 0
    assert number(stellar[1]) == 3, text  # every order reached a final status
    assert number(stellar[3]) > 0 and number(stellar[4]) <= number(stellar[5])  # p50 ≤ p99
    assert "Final statuses: completed 3." in text
    assert "CPU used in the window: " in text
    # where the time goes: every order passed pending → held → submitted, and settled
    assert phases[:3] == ["pending → held", "held → submitted", "submitted → running"]
    assert spans[0].endswith("(3)") and spans[1].endswith("(3)") and spans[-1].endswith("(3)"), text
    # every frame of the 3 followed orders was seen taken and then delivered on its SSE stream (one
    # shot each; a frame Voyager rejects is taken again, so there may be more frames than shots)
    sse = re.search(r"p50 \*\*([\d.]+) s\*\*, p99 \*\*([\d.]+) s\*\*, max [\d.]+ s over (\d+) frames of 3 orders", text)
    assert sse is not None, text
    assert int(sse.group(3)) >= 3 and 0 < float(sse.group(1)) <= float(sse.group(2))
    # where those frames waited: every stage, its shares adding up to the whole latency
    waits = {r[0].split(" (")[0]: r for r in rows(text)[5:] if " → " in r[0]}
    assert list(waits) == [label for label, _ in orders_e2e.WAIT_STAGES], text
    assert sum(number(r[-1].rstrip("%")) for r in waits.values()) == pytest.approx(100, abs=len(waits))
    # each frame waited either in the monitor's own ingest or along the order's watch, never both
    stages = [label for label, _ in orders_e2e.WAIT_STAGES]
    by_monitor = number(waits[stages[0]][3])
    assert by_monitor + max(number(waits[label][3]) for label in stages[1:-1]) <= int(sse.group(3)), text
    assert "activities (" in text and "`ingest.watch_session`" not in text, text  # the monitor closed the nights
    # what the worker spent per activity: every step of an order ran SQL and CPU in the worker (a
    # step of single statements runs them in autocommit: no transaction begun)
    account = {r[0].strip("`"): r for r in rows(text) if r[0].startswith("`") and len(r) == 5}
    for name in ("local:order_store.load_order", "ledger.price_and_hold", "voyager.submit_target",
                 "ingest.close_target", "ledger.settle_and_finalize"):
        runs, statements, transactions, cpu_ms = (number(c) for c in account[name][1:])
        assert runs == 1 and statements >= 1 and 0 <= transactions <= statements and cpu_ms > 0, (name, text)
    assert number(account["ledger.settle_and_finalize"][3]) >= 1, text  # its lock, progress and finalize
    assert "The worker's CPU per order by thread: " in text and "tokio" in text, text
    # the CPU budget: both runs by process, per settled workflow, measured in this run
    budget = rows(text.split("**CPU budget.** CPU per settled order / per bare workflow, by process (ms", 1)[1])
    head, bare, order, delta = budget[:4]
    assert head[1:7] == list(e2e_budget.PROCESSES) and head[7] == "all", text
    cells = [dict(zip(head, r)) for r in (bare, order)]
    for r in cells:
        total = number(r["all"].strip("*"))
        assert number(r["Temporal server"]) > 0 and number(r["worker"]) > 0 and total > 0, text
        assert sum(number(r[k]) for k in e2e_budget.PROCESSES if r[k] != "–") == pytest.approx(total, abs=0.5)
        assert number(r["/s the CPU allows"]) == pytest.approx((os.cpu_count() or 1) * 1000 / total, rel=0.05)
    assert cells[0]["API"] == cells[0]["simulator"] == "–" and number(cells[1]["simulator"]) > 0, text  # not in the ceiling
    assert number(cells[1]["API"]) > 0 and delta[0] == "order − ceiling", text
    assert "The Temporal server per action: the order " in text and "Not in the ceiling, per order: " in text, text


def test_cpu_budget_says_what_the_goal_needs_and_what_the_order_uses():
    """The paragraph's numbers come from the runs given: the goal is half the lower ceiling, its CPU
    per order is cores × 1000 ms ÷ that rate; nothing is said when the order is at goal."""
    ceiling = e2e_budget.RunCost("ceiling", 200, 20.0, {"Temporal server": 40.0, "worker": 35.0,
                                                        "PostgreSQL": 1.0, "bench client": 4.0}, 90.0, 17, 3)
    order = e2e_budget.RunCost("Stellar order", 200, 4.0, {"Temporal server": 150.0, "worker": 140.0, "API": 25.0,
                                                          "PostgreSQL": 30.0, "simulator": 20.0,
                                                          "bench client": 35.0}, 450.0, 48, 16)
    text = "\n".join(e2e_budget.budget(order, ceiling, 2, 19.0, 37.0))
    # lower ceiling 19.0/s (the telescope), goal 9.5/s: 2 × 1000 ÷ 9.5 = 211 ms per order; the order uses 400
    assert "is 9.5 orders/s" in text and "**211 ms of CPU per order**" in text and "**400 ms**" in text, text
    assert "the Temporal server and the worker alone use 290.0 ms, more than the whole budget" in text, text
    assert "Temporal server 150.0 ms (the ceiling's 40.0)" in text and "API 25.0 ms (not in the ceiling)" in text
    assert "3.75 ms per event" not in text and "3.12 ms per history event (48.0 an order)" in text, text
    assert "per event the server costs 1.3× the ceiling's" not in text and "about the same (1.3×)" in text, text
    assert "the simulator 20.0 ms, the API 25.0 ms, PostgreSQL 30.0 ms" in text and "37.0 ms of its main" in text
    # by CPU alone: 2000 ÷ 400 = 5.0/s against min(2000 ÷ 80 = 25.0/s, the telescope's 19.0/s): 26 %
    assert "the order is **26%** of the lower of that and the telescope's bound" in text, text
    # a ceiling slowed by the machine's other load: the order's CPU fits the budget, the paragraph says so
    slow = e2e_budget.RunCost("ceiling", 200, 6.0, ceiling.ms, 90.0, 17, 3)
    slowed = e2e_budget.RunCost("Stellar order", 200, 2.0, order.ms, 900.0, 48, 16)
    loaded = "\n".join(e2e_budget.budget(slowed, slow, 2, 19.0, 37.0))
    assert "**667 ms of CPU per order**" in loaded and "The order's CPU fits that budget" in loaded, loaded
    assert "other processes used 500 ms per order of the same cores" in loaded, loaded
    assert "the machine's other processes held the rate down, not the order's own CPU" in loaded, loaded
    at_goal = e2e_budget.RunCost("Stellar order", 200, 10.0, order.ms, 450.0, 48, 16)
    assert "Why this row" not in "\n".join(e2e_budget.budget(at_goal, ceiling, 2, 19.0, 37.0))


def test_memory_says_whether_the_orders_shape_alone_is_past_the_goal():
    """From the measured bytes per waiting workflow: when the order-shaped bare workflow alone is past
    2× the bare one, the goal needs fewer commands before the wait; the KiB split adds up."""
    kib = 1024
    past = worker_memory.shape_verdict(147 * kib, 96.7 * kib, 44 * kib)
    assert "alone is **2.2×** the bare one, so ≤ 2× needs fewer commands before the wait" in past, past
    assert "+103.0 KiB over the bare workflow, +52.7 KiB is what the SDK keeps" in past and "+50.3 KiB is Stellar's own" in past
    within = worker_memory.shape_verdict(80 * kib, 70 * kib, 44 * kib)
    assert "1.6× the bare one: ≤ 2× is within the SDK's reach" in within and "+10.0 KiB" in within, within
    assert worker_memory.shape_verdict(80 * kib, 0, 44 * kib) == ""  # below the RSS noise: nothing to say


async def test_history_does_not_grow_with_frames_and_counts_actions(stack):
    text = await history.run(stack, shots=[{"filter": "L", "exposure": 60, "quantity": 1}], timeout=240)

    table = rows(text)
    assert table[0][:5] == ["workflow", "status", "sessions", "frames taken (accepted)", "history events"]
    ref, one, three_frames, three_nights = table[1:5]
    assert (number(ref[4]), number(ref[5])) == (17, 3)
    for row in (one, three_frames, three_nights):
        assert row[1] == "completed", text
        assert 0 < number(row[5]) < number(row[4])  # fewer billable actions than events
    assert abs(number(three_frames[4]) - number(one[4])) <= 10  # frames do not add history
    assert number(three_nights[2]) >= 3 and number(three_nights[4]) > number(three_frames[4])
    # where a night's events go: no session watch (the monitor closes the night), no heartbeat of the order's
    night = {r[0]: number(r[1]) for r in table if r[0].startswith("activity_task_")}
    assert night.get("activity_task_scheduled ingest.watch_session", 0) == 0, text
    assert "**0 heartbeats an observing hour**" in text
    # a whole night, part by part: the monitor's signal and its workflow task, no watch, no OrderStatus flip
    parts = {r[0]: number(r[1]) for r in table if r[0] in history.NIGHT_PARTS}
    assert parts[history.NIGHT_PARTS[0]] == 1 and parts[history.NIGHT_PARTS[1]] >= 3, text
    # No watch and no `OrderStatus` flip: the one upsert is the SDK's change version of the night's
    # patch, checked when the first night is decided (once an order: ≤ 1 over the 2 nights counted).
    assert parts[history.NIGHT_PARTS[2]] == 0 and parts[history.NIGHT_PARTS[3]] <= 0.5, text
    assert "One signal and its workflow task, 4 events, is the floor" in text, text
    # the cost section prices both orders, heartbeats included
    cost = {r[0]: r for r in table if r[0] in ("1-night order", "3-night order")}
    assert set(cost) == {"1-night order", "3-night order"}, text
    for r in cost.values():
        assert number(r[3]) == number(r[1]) + number(r[2]) and number(r[2]) >= 1
        assert number(r[4].lstrip("$")) == pytest.approx(number(r[3]) * 0.05, abs=0.01)  # $50 per million
    assert number(cost["3-night order"][3]) > number(cost["1-night order"][3])
    assert "$50 per million actions" in text


@pytest.fixture
async def own_db_stack(engine, database_url, temporal_env, tmp_path):
    """A stack on a database of its own: the latency bench puts three more telescopes online for a
    row, which would change where other suites' ``any`` orders go in the shared database. Order ids
    start far from 1: ``order-<id>`` workflows share the Temporal dev server with other suites."""
    async with scratch_database(engine, database_url, at_head=True) as url:
        own = make_engine(url)
        try:
            async with own.begin() as conn:
                await conn.execute(sa.text(f"ALTER SEQUENCE order_id_seq RESTART WITH {random.randrange(10**8, 2 * 10**9)}"))
        finally:
            await own.dispose()
        async with open_stack(database_url=url, temporal=temporal_env, tmp=tmp_path) as s:
            yield s


async def test_api_latency_measures_every_endpoint_at_each_concurrency(own_db_stack):
    text = await api_latency.run(own_db_stack, requests=6, concurrency=(1, 4))

    measured, goals, *_ = text.split("\n\n| ")[1:]
    table = rows("| " + measured)[1:]
    assert [(r[0], r[1]) for r in table] == [
        (name, c) for c in ("1", "4") for name in (
            "ceiling: bare POST, one INSERT", "POST /api/orders", "POST /api/orders, any of 4 online telescopes",
            "ceiling: bare GET, one-row SELECT", "GET /api/orders/{id}")]
    for r in table:
        assert number(r[2]) > 0 and 0 < number(r[3]) <= number(r[4]), r
        assert r[6] == "0", r  # no error answers
    goal_rows = rows("| " + goals)
    assert [r[0] for r in goal_rows[1:]] == ["POST /api/orders p50, concurrency 1",
                                             "POST /api/orders throughput, concurrency 4"]
    assert all(r[4] in ("≤ 5×", "≥ 40 %") for r in goal_rows[1:])
    # CPU per request by process at the highest concurrency: the API's and the bare app's own rows
    cpu = rows(text.split("CPU per request at concurrency 4, by process", 1)[1].split("\n\n", 2)[1])
    by = {r[0]: dict(zip(cpu[0][1:], r[1:])) for r in cpu[1:]}
    assert set(by) == {"ceiling: bare POST, one INSERT", "POST /api/orders", "POST /api/orders, any of 4 online telescopes"}
    assert number(by["POST /api/orders"]["API"]) > 0 and number(by["ceiling: bare POST, one INSERT"]["bare app"]) > 0
    assert number(by["POST /api/orders"]["all"]) > number(by["POST /api/orders"]["API"]), cpu
    profile = text.split("Profile of `POST /api/orders`", 1)[1]
    per_request = number(profile.split("SQL per request ", 1)[1])
    assert 1 <= per_request < 40, profile  # statements counted per POST
    assert "Stellar functions on the stack" in profile and "create_order" in profile


@pytest.mark.timeout(600)  # three workers filled in turn, and the sandbox's cost in a process of its own
async def test_worker_memory_reports_rss_idle_and_with_waiting_orders(stack):
    # Without the split comparison (one fill less; tests/workflows/test_worker_roles.py runs the roles).
    text = await worker_memory.run(stack, orders=3, customers=2, timeout=240, sandbox_instances=10, drift_seconds=2,
                                   split=False)

    table = rows(text)
    header, b_idle, b_one, b_full, s_full, idle, one, full = table[:8]
    assert header[:3] == ["worker state", "open workflows", "RSS MiB"]
    assert b_idle[0].startswith("ceiling") and b_full[0].startswith("ceiling") and not idle[0].startswith("ceiling")
    assert "order-shaped" in s_full[0] and number(s_full[1]) == 3, text
    assert number(b_idle[1]) == 0 and number(b_one[1]) == 1 and number(b_full[1]) == 3, text
    assert idle[0].startswith("Stellar worker idle"), text
    assert number(idle[1]) == 0 and number(one[1]) == 1 and number(full[1]) == 3, text
    assert all(number(r[2]) > 30 for r in (idle, one, full))  # a Python worker is tens of MiB
    assert all(number(r[2]) > 10 for r in (b_idle, b_one, b_full, s_full))
    assert number(b_idle[2]) < number(idle[2])  # the bare worker loads less than Stellar's
    assert "Statuses when measured: submitted 3." in text and "Drift with time alone: " in text
    assert re.search(r"KiB per bare waiting workflow: \*\*(-?[\d.]+×|n/a [^*]+)\*\* \(goal ≤ 2×\)", text), text
    # where it goes: the heap statistics and histories of the three workers, side by side
    where = {r[0]: r[1:] for r in table[8:]}
    assert table[8][:4] == ["per waiting workflow", "Stellar order", "order-shaped bare", "bare workflow"], text
    assert {"RSS growth", "allocator slack given back by malloc_trim", "pymalloc (Python allocations ≤ 512 B)", "RSS − pymalloc",
            "GC objects (count)", "history bytes", "history events"} <= set(where), text
    assert "nan" not in " ".join(where["allocator slack given back by malloc_trim"]), text  # every worker was trimmed
    # a waiting order's history (start, hold, submit, status markers) is longer than a bare one's, and
    # the order-shaped ceiling's too (the same commands: test above; a loaded machine may add a
    # timed-out workflow task to either, so not compared here)
    order_events, shaped_events, bare_events = (number(v) for v in where["history events"][:3])
    assert order_events > bare_events >= 3 and shaped_events > bare_events, text
    assert number(where["history bytes"][0]) > number(where["history bytes"][2]) > 0, text
    assert "GC objects that grew most per waiting order: " in text
    # the sandbox's own cost per run: the order's module is passed through, the SDK default's is not
    sandbox = text.split("The sandbox's own cost per workflow run", 1)[1]
    assert "OrderWorkflow under the worker's sandbox" in sandbox and "imports again" in sandbox, text
    worker_part = sandbox.split("OrderWorkflow under the worker's sandbox", 1)[1].split(", unsandboxed", 1)[0]
    assert "imports again" not in worker_part, sandbox


def test_report_command_writes_machine_facts_and_sections(tmp_path):
    out = tmp_path / "report.md"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.report", "--only", "pool", "ledger", "latency", "--pool-seconds", "0.1",
         "--ledger-ops", "10", "--latency-requests", "3", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=400)

    assert proc.returncode == 0, proc.stderr[-3000:]
    report = out.read_text()
    assert report.startswith("# Stellar benchmark report")
    for heading in ("## Machine", "## 3. API latency", "## 4a. Voyager connection pool", "## 4b. Credit ledger"):
        assert heading in report
    assert "## 1." not in report and "## 5." not in report  # only what was asked
    facts = dict(r[:2] for r in rows(report.split("## 3.")[0]))
    assert {"date", "git commit", "CPU", "RAM", "Python", "PostgreSQL", "Temporal"} <= set(facts)
    assert "logical cores" in facts["CPU"] and "GiB" in facts["RAM"]
    assert "FAILED" not in report
    ledger = report.split("## 4b.")[1]
    trips = re.search(r"\*\*([0-9.]+) round trips\*\* vs ([0-9.]+)", ledger)
    assert trips and float(trips.group(1)) >= 2 and float(trips.group(2)) >= 2  # a pair is ≥ 2 statements
    assert "µs in PostgreSQL" in ledger and "Invariant check on the 101 bench accounts: OK" in ledger
    pool = dict((r[0], r[1:]) for r in rows(report.split("## 4a.")[1].split("## 4b.")[0]))
    assert number(pool["JSON encodes + decodes"][0]) > 0 and number(pool["JSON encodes + decodes"][1]) == 0
