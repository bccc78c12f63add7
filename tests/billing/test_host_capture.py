"""The capture side of host earnings on the shared database (docs/host-earnings.md §1–§2): what
is captured is allocated to its grants oldest first, credits that left the bucket otherwise are
not earned on, releases earn nothing, and a replayed capture credits once."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from billing.grant_lots import allocations_of, record_grant_value
from billing.host_check import check_host_earnings
from billing.ledger import Ledger
from core.database import make_sessionmaker
from models.db import Customer, Order, Telescope


async def _setup(engine, share: int = 50) -> tuple[int, int, int]:
    """A host, a buyer and a hosted telescope in ``maintenance`` (so no ``any`` order of another
    test is assigned to it)."""
    async with make_sessionmaker(engine)() as s:
        host = Customer(email=f"host-{uuid.uuid4().hex}@test.stellar")
        buyer = Customer(email=f"buyer-{uuid.uuid4().hex}@test.stellar")
        s.add_all([host, buyer])
        await s.flush()
        t = Telescope(slug=f"h{uuid.uuid4().hex[:10]}", name="Hosted", site_name="Site", latitude=43.9, longitude=5.7,
                      elevation=650.0, time_zone="Europe/Paris", horizon_alt=10.0, aperture_mm=106.0,
                      focal_length_mm=530.0, sensor_width_px=6248, sensor_height_px=4176, pixel_size_um=3.76,
                      filters=[{"name": "L", "index": 0}], voyager_profile="h.v2y", host_customer_id=host.id,
                      host_share_percent=share, status="maintenance")
        s.add(t)
        await s.commit()
        return host.id, buyer.id, t.id


async def _order(engine, customer_id: int, telescope_id: int) -> int:
    async with make_sessionmaker(engine)() as s:
        o = Order(customer_id=customer_id, target_name="M42", ra_j2000=5.588, dec_j2000=-5.39, telescope_id=telescope_id)
        s.add(o)
        await s.commit()
        return o.id


async def _grant(engine, ledger: Ledger, cid: int, credits: int, bucket: str, cents: int) -> str:
    key = f"{'invoice' if bucket == 'subscription' else 'payment'}:t-{uuid.uuid4().hex}"
    await ledger.grant(cid, credits, bucket, key, "test", "t")
    async with engine.begin() as conn:
        await record_grant_value(conn, key, cents, "subscription" if bucket == "subscription" else "pack")
    return key


async def _host_cents(engine, order_id: int) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.text(
            "SELECT COALESCE(sum(amount_cents), 0) FROM host_earning_entry WHERE order_id = :o AND account LIKE 'host:%'"
        ), {"o": order_id})).scalar_one())


async def test_expired_credits_are_not_earned_on_and_the_next_grant_pays(engine):
    ledger = Ledger(engine)
    _, cid, tid = await _setup(engine, share=50)
    await _grant(engine, ledger, cid, 20, "subscription", 2900)  # 145 cents a credit
    await ledger.expire(cid, f"expire:{uuid.uuid4()}")  # the subscription ended: its 20 credits are gone
    second = await _grant(engine, ledger, cid, 60, "subscription", 5900)
    order = await _order(engine, cid, tid)
    await ledger.hold(cid, order, 6)
    await ledger.capture(order, 6)
    async with engine.connect() as conn:
        parts = await allocations_of(conn, order)
    assert [(a.grant_key, a.credits) for a in parts] == [(second, 6)]
    assert await _host_cents(engine, order) == 295  # 50 % × 6 × 5900/60


async def test_a_release_earns_nothing_and_a_replayed_capture_credits_once(engine):
    ledger = Ledger(engine)
    _, cid, tid = await _setup(engine, share=30)
    await _grant(engine, ledger, cid, 10, "pack", 1500)
    released, captured = await _order(engine, cid, tid), await _order(engine, cid, tid)
    await ledger.hold(cid, released, 4)
    await ledger.release(released)
    await ledger.hold(cid, captured, 5)
    first = await ledger.capture(captured, 3)
    again = await ledger.capture(captured, 3)
    assert again.replayed and first.captured == 3
    assert await _host_cents(engine, released) == 0
    assert await _host_cents(engine, captured) == 135  # 30 % × 3 × 150
    async with engine.connect() as conn:
        n = (await conn.execute(sa.text("SELECT count(*) FROM host_earning_entry WHERE order_id = :o"),
                                {"o": captured})).scalar_one()
        assert n == 2  # one transfer, two legs
        problems = await check_host_earnings(conn)
    assert [p for p in problems if f"order {captured}" in p.detail or f"order {released}" in p.detail] == []


async def test_support_credits_are_worth_nothing_and_are_spent_in_grant_order(engine):
    ledger = Ledger(engine)
    _, cid, tid = await _setup(engine, share=100)
    await ledger.adjust(cid, 2, actor="support:t", reason="goodwill", idempotency_key=f"sup:{uuid.uuid4()}")
    await _grant(engine, ledger, cid, 3, "pack", 1000)  # 1000/3 cents a credit
    order = await _order(engine, cid, tid)
    await ledger.hold(cid, order, 4)
    await ledger.capture(order, 4)
    # 2 goodwill credits (0) then 2 of the pack: floor(100 % × 2 × 1000/3) = 666
    assert await _host_cents(engine, order) == 666
