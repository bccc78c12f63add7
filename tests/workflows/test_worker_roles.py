"""``stellar worker --role``: a ``workflows`` and an ``activities`` process on one task queue do
what one worker does; the ``workflows`` one runs the order's local database steps itself and takes
no activity task (worker.py ``ROLES``, docs/operations.md §5)."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.api.enums.v1 import PendingActivityState
from typer.testing import CliRunner

from models.orders import OrderStatus
from stellar_cli.main import app
from tests.workflows.support import create_customer, create_order, order_row, status_sequence, events_of, wait_for
from worker import ROLES, main, open_worker, parse_role

pytestmark = pytest.mark.timeout(240)
L2 = [{"filter": "L", "exposure": 60.0, "quantity": 2}]


async def test_a_workflows_and_an_activities_process_complete_an_order(temporal_env, order_stack, engine):
    stack = await order_stack(temporal_env, start_worker=False)
    await stack.start_worker(role="workflows", start_reconciliation=False)
    customer = await create_customer(engine, credits=10)
    order_id = await create_order(engine, customer, L2)
    handle = await stack.start(order_id, customer)

    async def hold_scheduled() -> bool:
        pending = (await handle.describe()).raw_description.pending_activities
        return any(a.activity_type.name == "ledger.price_and_hold" for a in pending)

    # The workflows process ran load_order (a local activity) and scheduled the hold, which it does not take.
    await wait_for(hold_scheduled, 60, "the hold scheduled")
    await asyncio.sleep(2.0)
    (hold,) = [a for a in (await handle.describe()).raw_description.pending_activities
               if a.activity_type.name == "ledger.price_and_hold"]
    assert hold.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED and hold.attempt == 1
    assert (await order_row(engine, order_id)).status == "pending"

    await stack.start_worker(role="activities", start_reconciliation=False)
    result = await asyncio.wait_for(stack.result(handle), 150)

    assert result.status == OrderStatus.COMPLETED, result.reason
    assert (result.credits_captured, result.frames_accepted) == (1, 2)
    assert status_sequence(await events_of(engine, order_id))[-1] == "completed"


async def test_an_unknown_role_is_refused_before_any_connection(capsys):
    with pytest.raises(ValueError, match="unknown worker role 'both'"):
        async with open_worker(role="both"):
            pass
    assert await main("both") == 2
    assert "unknown role 'both': one of all, workflows, activities" in capsys.readouterr().err
    assert parse_role([]) == "all" and parse_role(["--role", "workflows"]) == "workflows"
    with pytest.raises(SystemExit):
        parse_role(["--role", "both"])
    assert ROLES == ("all", "workflows", "activities")


def test_stellar_worker_offers_the_roles():
    out = CliRunner().invoke(app, ["worker", "--help"], terminal_width=200).output
    assert "--role" in out and "workflows" in out and "activities" in out
