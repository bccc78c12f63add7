"""The end-to-end row as a CPU budget (bench report "Orders end to end"): what one settled order and
one bare two-activity workflow cost each process, measured in the same run, and why the order's
rate is where it is on this machine.

CPU by process is bench/_processes.py's ``cpu_seconds`` over each run's window (the Temporal server,
the worker and API child processes, PostgreSQL, the bench process), the bench process split by
bench/_loop_account.py: the order's simulator apart from the bench's client, the ceiling's
in-process worker apart from its client. Temporal actions per workflow come from the histories
(bench/history.py's ``count_history``: history events and billable actions).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from temporalio.client import WorkflowHistory

from bench._loop_account import DEFAULT, LoopAccount
from bench._processes import BENCH_PROCESS, ChildProcess, cpu_seconds, cpu_used, machine_busy_seconds
from bench.history import count_history

#: The columns of the table, in order: each process (or part of the bench process) of a run.
PROCESSES = ("Temporal server", "worker", "API", "PostgreSQL", "simulator", "bench client")
#: The parts an order needs that the ceiling does not run (its worker runs no Stellar activity).
NOT_IN_CEILING = ("simulator", "API", "PostgreSQL")
#: Goal of the row: the order's rate at least this share of the lower ceiling.
GOAL_SHARE = 0.5
#: Per-event server CPU within this factor of the ceiling's counts as "the same cost per event".
SAME_COST = 1.5


@dataclass
class RunCost:
    """One run's window: ``done`` workflows settled at ``rate`` per second; ``ms``: CPU ms per
    settled workflow by process (keys of :data:`PROCESSES`; absent = not run); ``machine_ms``: the
    whole machine's busy CPU ms per settled workflow (other processes included); ``events`` and
    ``actions``: history events and billable actions per workflow (mean of its histories);
    ``steps``: what its histories hold per workflow (activities by name, signals by name)."""

    label: str
    done: int
    rate: float
    ms: dict[str, float]
    machine_ms: float
    events: float = math.nan
    actions: float = math.nan
    steps: Counter = field(default_factory=Counter)

    @property
    def total(self) -> float:
        return sum(self.ms.values())

    def allows(self, cores: int) -> float:
        """Workflows per second this run's CPU alone allows on ``cores`` (nothing else running)."""
        return cores * 1000.0 / self.total if self.total > 0 else math.nan


class CpuWindow:
    """CPU used from its creation to :meth:`stop`: by process (``cpu_seconds``: ``before``,
    ``after``), by part of the bench process (``account``) and by the whole machine."""

    def __init__(self, account: LoopAccount, worker: ChildProcess | None = None, api: ChildProcess | None = None):
        self.account, self.worker, self.api = account, worker, api
        self.before, self._parts, self._machine = self._read()
        self.after, self._parts_after, self._machine_after = self.before, self._parts, self._machine

    def _read(self) -> tuple[dict[str, float], dict[str, float], float]:
        return cpu_seconds(self.worker, self.api), self.account.seconds(), machine_busy_seconds()

    def stop(self) -> None:
        self.after, self._parts_after, self._machine_after = self._read()

    def cost(self, label: str, done: int, rate: float, *, simulator: bool) -> RunCost:
        """The window as a :class:`RunCost` of ``done`` workflows settled at ``rate``/s (``simulator``:
        :func:`per_workflow`)."""
        parts = {k: v - self._parts.get(k, 0.0) for k, v in self._parts_after.items()}
        ms = per_workflow(cpu_used(self.before, self.after), parts, done, simulator=simulator)
        return RunCost(label, done, rate, ms, (self._machine_after - self._machine) * 1e3 / max(done, 1))


def per_workflow(used: dict[str, float], parts: dict[str, float], done: int, *, simulator: bool) -> dict[str, float]:
    """CPU ms per settled workflow by process from a window's ``used`` seconds (``cpu_used``) and
    the bench process's ``parts`` (bench/_loop_account.py). ``simulator``: the order's run (the
    bench process holds the simulator and the client); else the ceiling's (its worker and client)."""
    n = max(done, 1)
    bench = used.get(BENCH_PROCESS, 0.0)
    out = {"Temporal server": used.get("Temporal server", 0.0), "PostgreSQL": used.get("PostgreSQL", 0.0)}
    if simulator:
        sim = parts.get("simulator", 0.0)
        out |= {"worker": used.get("worker", 0.0), "API": used.get("API", 0.0), "simulator": sim,
                "bench client": bench - sim}
    else:
        client = parts.get(DEFAULT, 0.0)
        out |= {"worker": bench - client, "bench client": client}
    return {k: v * 1e3 / n for k, v in out.items()}


def add_histories(run: RunCost, histories: list[WorkflowHistory]) -> None:
    """Set ``run``'s events, billable actions and steps per workflow from ``histories``."""
    if not histories:
        return
    counts = [count_history(h) for h in histories]
    n = len(counts)
    run.events = sum(c.events for c in counts) / n
    run.actions = sum(c.billable for c in counts) / n
    steps: Counter = Counter()
    for c in counts:
        local = c.actions.get("local-activity tasks", 0)
        if local:  # an order's first step (its load); the marker does not name it
            steps["local-activity task"] += local
        for kind, k in c.by_type.items():
            if kind.startswith("activity_task_scheduled "):
                steps[f"`{kind.split(' ', 1)[1]}`"] += k
            elif kind.startswith("workflow_execution_signaled "):
                steps[f"signal `{kind.split(' ', 1)[1]}`"] += k
    run.steps = Counter({k: v / n for k, v in steps.items()})


def _cell(run: RunCost, key: str) -> str:
    return f"{run.ms[key]:.1f}" if key in run.ms else "–"


def _steps(run: RunCost) -> str:
    return ", ".join(f"{k} ×{v:.1f}" if abs(v - 1) > 0.05 else k for k, v in run.steps.items())


def budget(order: RunCost, ceiling: RunCost, cores: int, telescope_rate: float, monitor_ms: float) -> list[str]:
    """Markdown lines: the CPU table of both runs, the Temporal server per action, what the ceiling
    does not run, and why the order's rate is not at its goal (every number from ``order`` and
    ``ceiling``, measured in one run). ``telescope_rate``: the simulated telescope's bound
    (orders/s); ``monitor_ms``: the observatory monitor's activity, worker main-thread CPU ms per
    order (bench/activity_account.py)."""
    lines = [f"**CPU budget.** CPU per settled order / per bare workflow, by process (ms; each run's window ÷ the workflows "
             f"it settled; both runs measured here, one after the other; `–`: not run). What the CPU alone "
             f"allows = {cores} cores × 1000 ms ÷ all; the machine's other processes (the other work sharing "
             "these cores) are beside, not in all:", "",
             "| run | " + " | ".join(PROCESSES) + " | all | other processes on the machine | /s the CPU allows "
             "| /s measured |",
             "|---|" + "---:|" * (len(PROCESSES) + 4)]
    for run in (ceiling, order):
        lines.append(f"| {run.label} | " + " | ".join(_cell(run, k) for k in PROCESSES)
                     + f" | **{run.total:.1f}** | {max(0.0, run.machine_ms - run.total):.1f} | "
                     f"{run.allows(cores):.1f} | {run.rate:.1f} |")
    lines.append("| order − ceiling | " + " | ".join(
        f"{order.ms.get(k, 0.0) - ceiling.ms.get(k, 0.0):+.1f}" for k in PROCESSES)
        + f" | **{order.total - ceiling.total:+.1f}** | | | |")
    dominant = max(PROCESSES, key=lambda k: order.ms.get(k, 0.0))
    lines += ["", f"The order's simulator: its event-loop callbacks and `to_thread` work in the bench process "
              f"(bench/_loop_account.py); the bench client: the rest of that process (the POSTs, "
              f"the SSE streams of the followed orders, the frame events, the status polls: the measurement's, "
              f"not an order's). The ceiling's worker runs in the bench process: its column is that process but "
              f"the client's event-loop callbacks (the SDK's Rust core, which the client shares, counted "
              f"with the worker). The {dominant} takes the most of an order: {order.ms[dominant]:.1f} ms of "
              f"{order.total:.1f} ({order.ms[dominant] / order.total:.0%}).", ""]
    lines += _per_action(order, ceiling)
    missing = {k: order.ms.get(k, 0.0) for k in NOT_IN_CEILING}
    lines += [f"Not in the ceiling, per order: the simulator {missing['simulator']:.1f} ms, the API "
              f"{missing['API']:.1f} ms, PostgreSQL {missing['PostgreSQL']:.1f} ms (this bench's status polls "
              f"included), {sum(missing.values()):.1f} ms together; and in the worker's column the observatory "
              f"monitor's activity, {monitor_ms:.1f} ms of its main thread (the table above), beside the order's own "
              "steps.", ""]
    lines += _why(order, ceiling, cores, telescope_rate)
    return lines


def _per_action(order: RunCost, ceiling: RunCost) -> list[str]:
    """The Temporal server's CPU per history event and per billable action, order vs ceiling."""
    server = "Temporal server"
    if not (order.events > 0 and ceiling.events > 0 and order.actions > 0 and ceiling.actions > 0):
        return []
    o_ev, c_ev = order.ms[server] / order.events, ceiling.ms[server] / ceiling.events
    o_act, c_act = order.ms[server] / order.actions, ceiling.ms[server] / ceiling.actions
    ratio = o_ev / c_ev if c_ev > 0 else math.nan
    if 1 / SAME_COST <= ratio <= SAME_COST:
        verdict = (f"per event the server costs about the same ({ratio:.1f}×); the difference is the number of "
                   f"events ({order.events / ceiling.events:.1f}×)")
    else:
        verdict = (f"per event the server costs {ratio:.1f}× the ceiling's, on {order.events / ceiling.events:.1f}× "
                   "the events: not only the number of events differs (the server's CPU in the order's window "
                   "also serves what is not in the orders' histories: the API's start requests, the observatory "
                   "monitor's own workflow and heartbeats)")
    return [f"The Temporal server per action: the order {o_ev:.2f} ms per history event ({order.events:.1f} an "
            f"order) and {o_act:.1f} ms per billable action ({order.actions:.1f}); the ceiling {c_ev:.2f} ms per "
            f"event ({ceiling.events:.1f}) and {c_act:.1f} ms per action ({ceiling.actions:.1f}): {verdict}."
            + (f" The order's steps: {_steps(order)}; the ceiling's: {_steps(ceiling)}." if order.steps else ""), ""]


def _why(order: RunCost, ceiling: RunCost, cores: int, telescope_rate: float) -> list[str]:
    """The paragraph "why this row is not at goal", from the measured values (nothing when it is)."""
    lower = min(ceiling.rate, telescope_rate)
    goal = GOAL_SHARE * lower
    if order.rate >= goal or order.total <= 0:
        return []
    need = cores * 1000.0 / goal
    parts = sorted(((k, v) for k, v in order.ms.items() if v > 0), key=lambda kv: -kv[1])
    others = max(0.0, order.machine_ms - order.total)
    if order.total > need:
        # the fewest largest parts that alone use the whole budget
        biggest, acc = [], 0.0
        for k, _v in parts:
            if acc >= need:
                break
            biggest.append(k)
            acc += order.ms[k]
        verdict = (f"; the {' and the '.join(biggest)} alone use {acc:.1f} ms, more than the whole budget"
                   if len(biggest) < len(parts) else "") + "."
    else:
        verdict = (". The order's CPU fits that budget: in this window the machine's other processes held the "
                   "rate down, not the order's own CPU.")
    no_client = order.total - order.ms.get("bench client", 0.0)
    made_of = ", ".join(f"{k} {v:.1f} ms (" + (f"the ceiling's {ceiling.ms[k]:.1f}" if k in ceiling.ms
                                               else "not in the ceiling") + ")" for k, v in parts)
    by_cpu = min(ceiling.allows(cores), telescope_rate)
    return [f"**Why this row is not at goal.** The goal, ≥ {GOAL_SHARE:.0%} of the lower ceiling (the bare "
            f"workflows {ceiling.rate:.1f}/s, the simulated telescope's bound {telescope_rate:.1f}/s), is "
            f"{goal:.1f} orders/s; on {cores} cores that leaves at most {cores} × 1000 ÷ {goal:.1f} = **{need:.0f} ms "
            f"of CPU per order**, every process together. The order uses **{order.total:.0f} ms** "
            f"({order.total / need:.1f}× that; the CPU alone allows {order.allows(cores):.1f}/s, measured "
            f"{order.rate:.1f}/s while the machine's other processes used {others:.0f} ms per order of the same "
            f"cores), {no_client:.0f} ms without the bench's own client ({cores * 1000.0 / no_client:.1f}/s)"
            f"{verdict} Made of: {made_of}. By CPU alone, the order allows {order.allows(cores):.1f}/s and the "
            f"ceiling's {ceiling.total:.0f} ms per workflow {ceiling.allows(cores):.1f}/s: the order is "
            f"**{order.allows(cores) / by_cpu:.0%}** of the lower of that and the telescope's bound (goal ≥ "
            f"{GOAL_SHARE:.0%}), the row's comparison with the machine's other load left out.", ""]
