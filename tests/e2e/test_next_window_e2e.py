"""The promise and the telescope agree: the ``next_window`` the API shows for a waiting moon-down
order is when the simulated telescope starts its first session (on the simulator's own clock)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from api.services.order_schedule import order_constraints, schedules, site_sky
from core.ephemeris import next_window
from core.database import make_sessionmaker
from core.settings import OrderSettings
from models.db import Order
from models.orders import OrderStatus
from tests.workflows.support import create_customer, create_order, order_row
from voyager import wire

pytestmark = pytest.mark.timeout(240)
#: Near the first quarter: the moon sets around 23:00 UTC, hours after M42 is high enough in the dark.
MOONLIT_EVENING = datetime(2026, 1, 24, 16, 0, tzinfo=UTC)
SE = wire.SESSION_ITEM


async def test_next_window_of_a_moon_down_order_is_when_its_first_session_starts(temporal_env, order_stack, engine):
    stack = await order_stack(temporal_env, sim={"start_time": MOONLIT_EVENING})
    customer = await create_customer(engine, credits=10)
    order_id = await create_order(engine, customer, [{"filter": "L", "exposure": 60.0, "quantity": 2}],
                                  plan="quasar", c_moon_down=True, c_alt_min=20.0)
    now = stack.sim.clock.now_dt()  # the simulated telescope's "now", which the API would read as its own
    async with make_sessionmaker(engine)() as session:
        order = await session.get(Order, order_id)
        when = (await schedules(session, stack.settings.site, [order], now=now))[order_id]
        constraints = order_constraints(stack.settings.site, order)
    promised = when.next_window
    # orders_ahead counts every customer's waiting orders (other tests share the database): tested in
    # tests/api/test_order_schedule.py.
    assert promised is not None
    # Contrast: without moon-down the window would open hours earlier, so the moon decides here.
    moonless = next_window(site_sky(stack.settings.site), replace(constraints, moon_down=False), now.timestamp())
    assert promised.start.timestamp() - moonless[0] > 3 * 3600

    handle = await stack.start(order_id, customer)
    result = await asyncio.wait_for(stack.result(handle), 180)
    assert result.status == OrderStatus.COMPLETED, result.reason

    row = await order_row(engine, order_id)
    starts = sorted(s[SE["start"]] for s in stack.sim.store.sessions.values() if s[SE["ref_guid_target"]] == row.target_guid)
    assert starts, "no session was run"
    # Session starts are whole epoch seconds on the wire; the monitor sees them a poll later at most.
    poll = OrderSettings().monitor_poll_interval
    print(f"\nnext_window {promised.start:%Y-%m-%d %H:%M:%S}–{promised.end:%H:%M:%S} UTC; first session "
          f"{datetime.fromtimestamp(starts[0], UTC):%H:%M:%S} UTC ({starts[0] - promised.start.timestamp():+.3f} s)")
    assert abs(starts[0] - promised.start.timestamp()) <= poll, (datetime.fromtimestamp(starts[0], UTC), promised)
    assert starts[0] < promised.end.timestamp()
