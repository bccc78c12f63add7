"""One real order on the Voyager simulator credits its telescope's host (docs/host-earnings.md §2):
real worker, Temporal dev server, PostgreSQL; credits bought as a pack through the Stripe-fact path.

The telescope is in ``maintenance`` so no other test's ``any`` order is assigned to it; an order
already pointing at it runs as any other (docs/telescopes.md §1)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa

from billing.host_check import check_host_earnings
from billing.stripe_effects import apply_fact
from core.database import make_sessionmaker
from models.db import Customer, Payment, Telescope
from models.orders import OrderStatus
from models.payments import StripeFact
from tests.workflows.support import create_order, events_of

pytestmark = pytest.mark.timeout(240)
SHOTS = [{"filter": "L", "exposure": 60.0, "quantity": 6}, {"filter": "R", "exposure": 60.0, "quantity": 4}]


async def test_a_real_order_credits_the_host_its_share_of_the_pack_value(temporal_env, order_stack, engine):
    stack = await order_stack(temporal_env)
    sm = make_sessionmaker(engine)
    async with sm() as s:
        host = Customer(email=f"host-{uuid.uuid4().hex}@test.stellar", name="Host")
        buyer = Customer(email=f"buyer-{uuid.uuid4().hex}@test.stellar", name="Buyer")
        s.add_all([host, buyer])
        await s.flush()
        scope = Telescope(slug=f"h{uuid.uuid4().hex[:10]}", name="Hosted", site_name="Haute-Provence", latitude=43.93,
                          longitude=5.71, elevation=650.0, time_zone="Europe/Paris", horizon_alt=10.0,
                          aperture_mm=106.0, focal_length_mm=530.0, sensor_width_px=6248, sensor_height_px=4176,
                          pixel_size_um=3.76, filters=[{"name": "L", "index": 0}, {"name": "R", "index": 1}],
                          voyager_profile="hosted.v2y", host_customer_id=host.id, host_share_percent=40,
                          status="maintenance")
        s.add(scope)
        payment = Payment(customer_id=buyer.id, pack_id="10", credits=10, bonus_credits=0, amount_cents=1500)
        s.add(payment)
        await s.commit()
        host_id, buyer_id, telescope_id, payment_id = host.id, buyer.id, scope.id, payment.id
    granted = await apply_fact(engine, StripeFact(kind="payment_intent_succeeded", event_id=f"evt_{uuid.uuid4().hex}",
                                                  payment_id=payment_id, payment_intent_id=f"pi_{uuid.uuid4().hex}",
                                                  amount_cents=1500, currency="eur"))
    assert granted.credits == 10
    order_id = await create_order(engine, buyer_id, SHOTS, telescope_id=telescope_id)

    result = await asyncio.wait_for(stack.result(await stack.start(order_id, buyer_id)), 120)

    assert result.status == OrderStatus.COMPLETED, result.reason
    assert result.credits_captured == 1
    # 1 credit of a 10-credit pack paid 1500 cents is worth 150 cents; the host's 40 % is 60.
    async with engine.connect() as conn:
        legs = (await conn.execute(sa.text(
            "SELECT account, kind, amount_cents, share_percent FROM host_earning_entry WHERE order_id = :o "
            "ORDER BY amount_cents DESC"), {"o": order_id})).all()
        totals = (await conn.execute(sa.text(
            "SELECT credits_captured, orders FROM customer_telescope_total WHERE customer_id = :c AND telescope_id = :t"),
            {"c": buyer_id, "t": telescope_id})).one()
        problems = await check_host_earnings(conn)
    assert [tuple(r) for r in legs] == [(f"host:{host_id}", "earning", 60, 40), ("stellar:host_share", "earning", -60, 40)]
    assert tuple(totals) == (1, 1)
    credited = [e for e in await events_of(engine, order_id) if e.kind == "host_earnings"]
    assert [(e.payload["type"], e.payload["credits"]) for e in credited] == [("HostEarningsCredited", 1)]
    assert [p for p in problems if f"order {order_id}" in p.detail] == []
