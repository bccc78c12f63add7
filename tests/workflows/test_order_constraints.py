"""An order row's constraint columns reach the workflow's snapshot and the plan gate through one
mapping (activities/order_constraints.py), on the real database: every column the gate takes is
carried by ``load_order`` as stored, and the one difference — an HFD mean limit of 0 is "not asked"
(None) for the gate — is the only one."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import sqlalchemy as sa
from temporalio.testing import ActivityEnvironment

from activities.order_constraints import StoredConstraints, gate_constraints, stored_constraints
from activities.order_sql import one_statement, read_order
from activities.order_store import OrderStoreActivities
from core.database import make_sessionmaker
from core.settings import load_settings
from models.billing import OrderConstraints
from models.orders import OrderRef, OrderSnapshot, ShotLine
from tests.workflows.support import create_customer, create_order

SHOTS = [{"filter": "L", "exposure": 60.0, "quantity": 2, "panel_index": 0},
         {"filter": "R", "exposure": 30.0, "quantity": 2, "panel_index": 1}]
ASKED = {"priority": 1, "c_moon_down": True, "repeat": 2, "c_alt_min": 42.5, "c_ha_start": -2.5, "c_ha_end": 3.0,
         "date_start": datetime(2031, 1, 2, 20, tzinfo=UTC), "date_end": datetime(2031, 1, 9, 6, tzinfo=UTC)}


def test_the_snapshot_and_the_gate_take_the_same_constraint_columns():
    columns = set(StoredConstraints.__annotations__)
    assert columns == set(OrderConstraints.model_fields) - {"mosaic_panels"}
    assert columns <= set(OrderSnapshot.model_fields)


async def test_an_order_rows_constraints_as_stored_and_as_the_plan_gate_takes_them(database_url, engine):
    settings = load_settings(env="test", database={"url": database_url}, orders={"telescope": "t-constraints"})
    customer = await create_customer(engine, 10)
    unlimited = await create_order(engine, customer, SHOTS, c_hfd_mean_limit=0.0, **ASKED)
    limited = await create_order(engine, customer, SHOTS, c_hfd_mean_limit=2.5, **ASKED)
    store = OrderStoreActivities(make_sessionmaker(engine), settings)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id="order-constraints-test")

    try:
        for order_id, hfd, gated_hfd in ((unlimited, 0.0, None), (limited, 2.5, 2.5)):
            snapshot = await env.run(store.load_order, OrderRef(order_id=order_id))
            async with one_statement(make_sessionmaker(engine)) as conn:
                row = await read_order(conn, order_id)
            stored = stored_constraints(row)
            gated = gate_constraints(row, [ShotLine.model_validate(s) for s in row.shots])

            assert stored == {**ASKED, "c_hfd_mean_limit": hfd}
            assert {k: getattr(snapshot, k) for k in stored} == stored
            assert gated == OrderConstraints(**ASKED, c_hfd_mean_limit=gated_hfd, mosaic_panels=2)
    finally:  # two waiting orders would count in other tests' schedules
        async with engine.begin() as conn:
            for table in ("order_shot", '"order"'):
                column = "order_id" if table == "order_shot" else "id"
                await conn.execute(sa.text(f"DELETE FROM {table} WHERE {column} = ANY(:ids)"),
                                   {"ids": [unlimited, limited]})
