"""Replay every stored workflow history with today's workflow code (CI runs this).

Histories in ``tests/replay/histories/`` were recorded from real runs (``STELLAR_RECORD_HISTORIES=1
pytest tests/workflows tests/e2e``); ``*.before_fewer_steps.json`` are the same paths recorded before
the life cycle in fewer steps, ``*.before_night_from_monitor.json`` before the monitor closed the
nights (each a ``workflow.patched``), kept so orders started then still replay (the second ones take
the session watch). A change to a workflow's command sequence that is not behind
``workflow.patched(...)`` makes its replay raise a non-determinism error and fails this test — the
guard against breaking orders that are running in production while a new worker is deployed.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from core.temporal import DATA_CONVERTER
from models.orders import OrderWorkflowInput
from models.temporal_contract import PATCH_ORDER_FEWER_STEPS, PATCH_ORDER_NIGHT_FROM_MONITOR
from workflows.observatory_monitor import ObservatoryMonitorWorkflow
from workflows.order import OrderWorkflow

HISTORIES = sorted((Path(__file__).resolve().parent / "histories").glob("*.json"))


def _load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))


def test_histories_cover_every_path():
    names = {p.stem for p in HISTORIES}
    assert {"order_completed_one_night", "order_completed_three_nights", "order_expired_waiting",
            "order_aborted_waiting", "order_aborted_mid_session", "order_submit_retried",
            "order_clouds_then_clear", "observatory_monitor_running", "order_voyager_down_at_submit",
            "order_watch_failed_three_times", "order_one_night_two_sessions",
            "order_local_db_step_timed_out_then_replayed"} <= names


#: Histories of orders started before the life cycle in fewer steps (recorded then, kept so those
#: orders keep replaying: the workflow's old branch).
BEFORE_FEWER_STEPS = ".before_fewer_steps"
#: Histories of orders started before the monitor closed the nights (their session watches).
BEFORE_NIGHT_FROM_MONITOR = ".before_night_from_monitor"


def _patches(history: WorkflowHistory) -> set[str]:
    """The ``workflow.patched`` ids the history recorded."""
    out = set()
    for event in history.events:
        attrs = event.marker_recorded_event_attributes
        if event.HasField("marker_recorded_event_attributes") and attrs.marker_name == "core_patch":
            out |= {json.loads(p.data)["id"] for p in attrs.details["patch-data"].payloads}
    return out


#: Today's recorded orders that never decided a night: no ``order-night-from-monitor`` marker.
_NO_NIGHT_DECIDED = {"order_aborted_mid_session", "order_aborted_waiting", "order_expired_waiting",
                     "order_voyager_down_at_submit"}


def test_every_life_cycle_shape_is_replayed():
    """Every path is recorded with today's life cycle and kept from before each patch, so both
    branches of ``workflow.patched(PATCH_ORDER_FEWER_STEPS)`` and of
    ``workflow.patched(PATCH_ORDER_NIGHT_FROM_MONITOR)`` are replayed."""
    orders = {p.stem: _patches(_load(p)) for p in HISTORIES if p.stem.startswith("order_")}
    for suffix, patch, before in ((BEFORE_FEWER_STEPS, PATCH_ORDER_FEWER_STEPS, set()),
                                  (BEFORE_NIGHT_FROM_MONITOR, PATCH_ORDER_NIGHT_FROM_MONITOR,
                                   {PATCH_ORDER_FEWER_STEPS})):
        old = {s for s in orders if s.endswith(suffix)}
        assert old and all(patch not in orders[s] and before <= orders[s] for s in old), suffix
        for stem in old:
            current = stem.removesuffix(suffix)
            # The night's patch is checked when the order decides its first night: an order that
            # never decided one (waiting, failed at submit, aborted mid-session) records none.
            assert patch in orders[current] or (patch == PATCH_ORDER_NIGHT_FROM_MONITOR
                                                and current in _NO_NIGHT_DECIDED), stem


def test_nights_closed_by_the_monitor_run_no_session_watch():
    """Today's recorded orders that observed heard of each night from the monitor: no session watch
    (the watch path is replayed by the ``before_night_from_monitor`` histories and the fallback of
    a session the monitor could not ingest, ``order_watch_failed_three_times``)."""
    for stem in ("order_completed_one_night", "order_completed_three_nights", "order_clouds_then_clear",
                 "order_one_night_two_sessions", "order_aborted_mid_session", "order_submit_retried"):
        history = _load(next(p for p in HISTORIES if p.stem == stem))
        scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
                     if e.HasField("activity_task_scheduled_event_attributes")]
        assert "ingest.watch_session" not in scheduled, (stem, scheduled)
        assert (PATCH_ORDER_NIGHT_FROM_MONITOR in _patches(history)) == (stem not in _NO_NIGHT_DECIDED), stem


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_stored_history_replays_deterministically(path: Path):
    replayer = Replayer(workflows=[OrderWorkflow, ObservatoryMonitorWorkflow], data_converter=DATA_CONVERTER)
    result = await replayer.replay_workflow(_load(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


@workflow.defn(name="OrderWorkflow", sandboxed=False)
class _ReorderedOrderWorkflow:
    """A deliberately incompatible change: sleeps before its first activity."""

    @workflow.run
    async def run(self, inp: OrderWorkflowInput) -> None:
        await workflow.sleep(timedelta(seconds=1))


async def test_an_incompatible_change_fails_the_replay():
    replayer = Replayer(workflows=[_ReorderedOrderWorkflow], data_converter=DATA_CONVERTER)
    history = next(p for p in HISTORIES if p.stem.startswith("order_"))
    result = await replayer.replay_workflow(_load(history), raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, NondeterminismError)
