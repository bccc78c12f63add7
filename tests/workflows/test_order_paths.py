"""Short paths of OrderWorkflow on the time-skipping server: plan violation, Voyager refusal,
the default lifetime, and the options/search-attribute contract."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import temporal as core_temporal
from models.orders import AbortRole, OrderStatus, OrderStatusView, StatusQuery
from tests.workflows.support import DAYTIME, create_customer, create_order, events_of, ledger_entries, order_row, status_sequence
from voyager import wire
from models import temporal_contract as contract
from workflows import _options as opt
from core.order_control import OrderWorkflowNotFound, abort_order, query_order_status

pytestmark = pytest.mark.timeout(120)
L5 = [{"filter": "L", "exposure": 60.0, "quantity": 5}]


async def test_plan_violation_rejects_before_any_hold(time_skipping_env, order_stack, engine):
    stack = await order_stack(time_skipping_env, sim={"speed": 0.0, "start_time": DAYTIME}, start_monitor=False)
    customer = await create_customer(engine, credits=50)
    order_id = await create_order(engine, customer, L5, plan="stardust", priority=3)
    result = await stack.result(await stack.start(order_id, customer, plan="stardust"))

    assert result.status == OrderStatus.REJECTED
    assert "priority 3 needs Quasar" in result.reason
    assert await ledger_entries(engine, order_id) == [] and stack.sim.store.targets == {}


async def test_voyager_refusal_fails_the_order_and_releases_the_hold(time_skipping_env, order_stack, engine):
    stack = await order_stack(time_skipping_env, sim={"speed": 0.0, "start_time": DAYTIME}, start_monitor=False)
    stack.sim.faults.error_methods.add(wire.M_ADD_TARGET)  # ActionResultInt 5, ret "ERROR : Simulated fault"
    customer = await create_customer(engine, credits=10)
    order_id = await create_order(engine, customer, L5)
    result = await stack.result(await stack.start(order_id, customer))

    assert result.status == OrderStatus.FAILED
    assert "Voyager refused the target" in result.reason and "Simulated fault" in result.reason
    assert (result.credits_held, result.credits_captured, result.credits_released) == (1, 0, 1)
    assert sorted(e.kind for e in await ledger_entries(engine, order_id)) == ["hold", "release"]
    assert stack.sim.store.targets == {}
    row = await order_row(engine, order_id)
    assert row.status == "failed" and row.status_reason == result.reason
    assert status_sequence(await events_of(engine, order_id)) == ["held", "settling", "failed"]


async def test_default_lifetime_expires_an_order_without_a_date_window(time_skipping_env, order_stack, engine):
    stack = await order_stack(time_skipping_env, sim={"speed": 0.0, "start_time": DAYTIME}, start_monitor=False)
    customer = await create_customer(engine, credits=10)
    order_id = await create_order(engine, customer, L5)
    handle = await stack.start(order_id, customer)
    result = await stack.result(handle)

    assert result.status == OrderStatus.EXPIRED and result.credits_released == 1
    view = await handle.query("status", StatusQuery(), result_type=OrderStatusView)
    started = (await handle.describe()).start_time
    lifetime = timedelta(days=stack.settings.billing.order_default_lifetime_days)
    assert abs(view.deadline - started - lifetime) < timedelta(seconds=5)
    closed = (await handle.describe()).close_time
    assert closed >= view.deadline  # it waited the whole lifetime (skipped by the test server)


def test_workflow_search_attribute_keys_match_the_registered_ones():
    assert [k.name for k in (contract.SA_CUSTOMER_ID, contract.SA_ORDER_STATUS, contract.SA_TARGET_NAME, contract.SA_PLAN,
                             contract.SA_TELESCOPE)] == [k.name for k in core_temporal.SEARCH_ATTRIBUTES]


#: Steps that retry without a limit (an outage delays the order): their back-off is capped instead.
PATIENT = {"DB_PATIENT", "LEDGER", "VOYAGER_SUBMIT", "VOYAGER_CONTROL", "SWEEP", "WAIT_RUN_END"}


@pytest.mark.parametrize("name", ["DB_SHORT", "DB_PATIENT", "LEDGER", "VOYAGER_SUBMIT", "VOYAGER_CONTROL",
                                  "WATCH_SESSION", "SWEEP", "WAIT_RUN_END", "MONITOR_WATCH"])
def test_every_activity_option_bounds_time_and_attempts(name):
    options = getattr(opt, name)
    policy = options["retry_policy"]
    assert options["start_to_close_timeout"] > timedelta(0)
    if name in PATIENT:
        assert policy.maximum_attempts == 0 and policy.maximum_interval <= timedelta(seconds=opt.PATIENT_BACKOFF_CAP)
    else:
        assert policy.maximum_attempts > 0
    if options["start_to_close_timeout"] > timedelta(minutes=1):
        assert options["heartbeat_timeout"] < options["start_to_close_timeout"]


def test_local_database_attempts_stay_under_the_local_retry_threshold():
    # Past the SDK's one-minute threshold, local retries become timers in history.
    policy = opt.DB_SHORT["retry_policy"]
    worst = policy.maximum_attempts * opt.DB_SHORT["start_to_close_timeout"] + \
        (policy.maximum_attempts - 1) * policy.maximum_interval
    assert worst < timedelta(minutes=1)


async def test_control_of_an_unknown_order_says_not_found(time_skipping_env):
    with pytest.raises(OrderWorkflowNotFound):
        await abort_order(time_skipping_env.client, 987654321, "no such order", "customer:1",
                          role=AbortRole.CUSTOMER)
    with pytest.raises(OrderWorkflowNotFound):
        await query_order_status(time_skipping_env.client, 987654321)
