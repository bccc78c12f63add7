"""Chaos smoke: the chaos benchmark's small version (``bench.chaos.SMOKE``) on a system of its own —
10 orders through the API, a worker ``kill -9``, a 30 s PostgreSQL outage right after the orders are
posted, one Voyager drop of every connection — and the promises it checks: every order terminal, no
hold open on a terminal order, nothing captured or ingested twice, ledger invariants, no order
workflow failed or terminated. The full run is ``make chaos`` (bench/chaos.md)."""

from __future__ import annotations

import pytest

from bench.chaos import SMOKE, ChaosParams, run

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]


async def test_chaos_smoke_orders_and_credits_survive_a_worker_kill_a_database_outage_and_a_voyager_drop(tmp_path):
    params = ChaosParams(**{**SMOKE.__dict__})
    text, inv = await run(params, tmp_path)

    assert inv["missing"] == [], text  # every order the API accepted is in the database
    assert sum(inv["statuses"].values()) == params.orders, text
    assert inv["not_terminal"] == 0, text
    assert inv["open_holds_on_terminal"] == 0, text
    assert inv["double_capture"] == 0 and inv["double_hold"] == 0, text
    assert inv["frames"] > 0 and inv["frames_twice"] == 0, text
    assert inv["ledger_violations"] == [], text
    assert inv["workflows_bad"] == {}, text
    assert inv["drift_after"] == 0, text  # the repair sweep finds nothing left to mend
    for fault in ("PostgreSQL stopped 30 s", "worker kill -9 and restart", "Voyager drops every connection"):
        assert fault in text, text  # the fault really happened (it is on the timeline)
