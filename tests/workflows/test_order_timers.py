"""OrderWorkflow on the time-skipping test server: holds, rejections, the deadline timer, aborts.

Real activities throughout (PostgreSQL, the ledger, a Voyager simulator on a socket); the
simulator's clock sits at midsummer noon, so submitted targets just wait and the test server skips
the weeks to the deadline.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from models.billing import SettlementOutcome
from models.orders import AbortResult, AbortRole, OrderStatus, OrderStatusView, StatusQuery
from tests.workflows.support import (
    DAYTIME,
    create_customer,
    create_order,
    events_of,
    history_events,
    ledger_entries,
    order_row,
    save_history,
    settle_requests,
    status_sequence,
)
from voyager import wire
from core.order_control import AbortRefused, abort_order, query_order_status

pytestmark = pytest.mark.timeout(120)
L10 = [{"filter": "L", "exposure": 60.0, "quantity": 10}]


async def test_insufficient_credits_rejects_with_the_shortfall_and_sends_nothing(time_skipping_env, order_stack, engine):
    stack = await order_stack(time_skipping_env, sim={"speed": 0.0, "start_time": DAYTIME}, start_monitor=False)
    customer = await create_customer(engine, credits=3)
    # 30 × 300 s at priority 2 → 2.75 h × 1.2 = 3.3 → 4 credits; 3 available.
    order_id = await create_order(engine, customer, [{"filter": "Ha", "exposure": 300.0, "quantity": 30}], priority=2)
    handle = await stack.start(order_id, customer)

    result = await stack.result(handle)

    assert result.status == OrderStatus.REJECTED
    assert "short by 1" in result.reason and "costs 4" in result.reason
    assert stack.sim.store.targets == {} and stack.sim.store.sets == {}
    assert await ledger_entries(engine, order_id) == []
    row = await order_row(engine, order_id)
    assert (row.status, row.credits_held, row.set_guid, row.target_guid) == ("rejected", 0, None, None)
    events = await events_of(engine, order_id)
    assert status_sequence(events) == ["rejected"]
    assert events[-1].email_status == "pending"


async def test_deadline_expires_a_waiting_order_disables_its_target_and_releases_everything(
        time_skipping_env, order_stack, engine, capsys):
    stack = await order_stack(time_skipping_env, sim={"speed": 0.0, "start_time": DAYTIME}, start_monitor=False)
    customer = await create_customer(engine, credits=10)
    # The test server's clock runs ahead of the wall clock once earlier tests skipped time.
    order_id = await create_order(engine, customer, L10,
                                  date_end=await time_skipping_env.get_current_time() + timedelta(days=3))
    handle = await stack.start(order_id, customer)

    result = await stack.result(handle)  # the test server skips the three days

    assert result.status == OrderStatus.EXPIRED
    assert (result.cost, result.credits_held, result.credits_captured, result.credits_released) == (1, 1, 0, 1)
    row = await order_row(engine, order_id)
    assert row.status == "expired" and row.target_guid
    target = stack.sim.store.targets[row.target_guid]
    assert target[wire.TARGET_FIELDS["status"]] == 1  # disabled in Voyager
    kinds = sorted(e.kind for e in await ledger_entries(engine, order_id))
    assert kinds == ["hold", "release"]
    assert status_sequence(await events_of(engine, order_id)) == ["held", "submitted", "settling", "expired"]
    view = await query_order_status(stack.client, order_id)
    assert view.phase == "done" and view.target_guid == row.target_guid and len(view.shot_guids) == 1
    assert (view.status, view.credits_released) == (OrderStatus.EXPIRED, 1)
    with capsys.disabled():
        print(f"\nhistory events, order expired after a 3-day wait: {await history_events(handle)}")
    await save_history(handle, "order_expired_waiting")


async def test_many_aborts_have_one_effect_and_late_aborts_are_refused(time_skipping_env, order_stack, engine):
    stack = await order_stack(time_skipping_env, sim={"speed": 0.0, "start_time": DAYTIME}, start_monitor=False)
    customer = await create_customer(engine, credits=10)
    order_id = await create_order(engine, customer, L10)
    handle = await stack.start(order_id, customer)
    await _wait_status(handle, OrderStatus.SUBMITTED)

    answers = await asyncio.gather(
        *[abort_order(stack.client, order_id, f"reason {i}", f"customer:{customer}", role=AbortRole.CUSTOMER)
          for i in range(4)],
        handle.signal("abort", {"reason": "ticket 42", "requested_by": "support:alice"}),
        handle.signal("abort", {"reason": "ticket 43", "requested_by": "support:bob"}),
        return_exceptions=True,
    )
    result = await stack.result(handle)

    updates = answers[:4]
    assert all(isinstance(a, (AbortResult, AbortRefused)) for a in updates), updates
    accepted = [a for a in updates if isinstance(a, AbortResult)]
    assert sum(a.first for a in accepted) <= 1
    row = await order_row(engine, order_id)
    assert {(a.requested_by, a.reason) for a in accepted} <= {(row.aborted_by, row.abort_reason)}
    assert result.status == OrderStatus.ABORTED and result.reason.startswith(f"aborted by {row.aborted_by}")
    assert (result.credits_captured, result.credits_released) == (0, 1)
    assert stack.sim.store.targets[row.target_guid][wire.TARGET_FIELDS["status"]] == 1
    entries = await ledger_entries(engine, order_id)
    assert sorted(e.kind for e in entries) == ["hold", "release"]  # resolved exactly once
    assert status_sequence(await events_of(engine, order_id)) == ["held", "submitted", "settling", "aborted"]
    view: OrderStatusView = await handle.query("status", StatusQuery(), result_type=OrderStatusView)
    assert view.aborts_received >= 1 and view.abort_requested_by == row.aborted_by
    with pytest.raises(AbortRefused):
        await abort_order(stack.client, order_id, "too late", f"customer:{customer}", role=AbortRole.CUSTOMER)
    await save_history(handle, "order_aborted_waiting")


async def _wait_status(handle, status: OrderStatus, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout
    while True:
        view: OrderStatusView = await handle.query("status", StatusQuery(), result_type=OrderStatusView)
        if view.status == status:
            return
        if loop.time() > until:
            raise AssertionError(f"order stuck in {view.status} (phase {view.phase})")
        await asyncio.sleep(0.2)


async def test_the_abort_role_not_the_requester_name_decides_the_settlement_outcome(
        time_skipping_env, order_stack, engine):
    stack = await order_stack(time_skipping_env, sim={"speed": 0.0, "start_time": DAYTIME}, start_monitor=False)
    customer = await create_customer(engine, credits=10)
    by_role = {}
    # A support-looking name with the customer role, and the other way round: the role wins.
    for role, requested_by in ((AbortRole.CUSTOMER, "support:carol"), (AbortRole.SUPPORT, f"customer:{customer}")):
        order_id = await create_order(engine, customer, L10)
        handle = await stack.start(order_id, customer)
        await _wait_status(handle, OrderStatus.SUBMITTED)
        answer = await abort_order(stack.client, order_id, "role check", requested_by, role=role)
        result = await stack.result(handle)
        assert answer.first and result.status == OrderStatus.ABORTED
        row = await order_row(engine, order_id)
        assert (row.aborted_by, row.abort_role) == (requested_by, role.value)
        by_role[role] = [r.outcome for r in await settle_requests(handle)]
    assert by_role == {AbortRole.CUSTOMER: [SettlementOutcome.customer_abort],
                       AbortRole.SUPPORT: [SettlementOutcome.support_abort]}
