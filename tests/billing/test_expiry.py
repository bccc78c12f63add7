"""Expired stays expired: subscription credits held when the subscription ended expire when the
hold is settled or released; manual plans end at their period end like Stripe ones."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from api.services.customers import create_customer, effective_plan
from billing.ledger import Ledger
from billing.ledger_check import check_invariants
from billing.manual_plans import expire_manual_plans
from models.db import Subscription

SUB = Subscription.__table__


async def _customer(sessionmaker, plan: str | None = None) -> int:
    c = await create_customer(sessionmaker, email=f"exp-{uuid.uuid4().hex[:12]}@example.com", plan=plan)
    return c.customer_id


def _order() -> int:
    return random.randrange(10**12, 10**15)


async def _state(ledger: Ledger, cid: int) -> tuple[int, int, int]:
    b = await ledger.balances(cid)
    return b.subscription, b.pack, b.held


async def test_held_subscription_credits_expire_on_release_and_on_capture(engine, sessionmaker):
    ledger, cid = Ledger(engine), await _customer(sessionmaker)
    await ledger.grant(cid, 20, "subscription", f"t:{uuid.uuid4()}", "invoice", "in_1")
    await ledger.grant(cid, 10, "pack", f"t:{uuid.uuid4()}", "payment", "1")
    released, settled = _order(), _order()
    await ledger.hold(cid, released, 12)   # 12 subscription
    await ledger.hold(cid, settled, 12)    # 8 subscription + 4 pack
    assert await _state(ledger, cid) == (0, 6, 24)

    await ledger.expire(cid, f"expire:sub_{uuid.uuid4().hex[:8]}")  # the subscription ends; nothing available to expire
    await ledger.grant(cid, 60, "subscription", f"t:{uuid.uuid4()}", "invoice", "in_new")  # a new subscription's
    await ledger.release(released)
    assert await _state(ledger, cid) == (60, 6, 12)  # the 12 old subscription credits did not come back
    res = await ledger.capture(settled, 5)  # 5 captured from the 8 subscription ones; 3 of them expire, 4 pack back
    assert (res.released_to_subscription, res.released_to_pack) == (3, 4)
    assert await _state(ledger, cid) == (60, 10, 0)
    await ledger.release(released)  # a repeat resolves nothing again
    assert await _state(ledger, cid) == (60, 10, 0)
    expired = [e for e in await ledger.list_entries(cid) if e.kind == "expire" and e.reference_type == "order"]
    assert sorted(e.amount for e in expired) == [-12, -3]
    assert await check_invariants(engine, cid) == []


async def test_credits_held_before_no_expiry_still_come_back(engine, sessionmaker):
    ledger, cid = Ledger(engine), await _customer(sessionmaker)
    await ledger.expire(cid, f"expire:old:{uuid.uuid4().hex[:8]}")  # an earlier subscription ended first
    await ledger.grant(cid, 20, "subscription", f"t:{uuid.uuid4()}", "invoice", "in_2")
    order = _order()
    await ledger.hold(cid, order, 15)
    await ledger.release(order)
    assert await _state(ledger, cid) == (20, 0, 0)
    assert await check_invariants(engine, cid) == []


async def test_a_manual_plan_ends_at_its_period_end(engine, sessionmaker):
    ledger = Ledger(engine)
    cid = await _customer(sessionmaker, plan="nebula")
    await ledger.grant(cid, 60, "subscription", f"t:{uuid.uuid4()}", "admin", "manual")
    await ledger.grant(cid, 10, "pack", f"t:{uuid.uuid4()}", "payment", "2")
    async with sessionmaker() as s:
        assert (await effective_plan(s, cid)).plan == "nebula"
    assert await expire_manual_plans(engine, cid) == []  # still inside its 30 days

    end = datetime.now(timezone.utc) - timedelta(minutes=1)
    async with engine.begin() as conn:
        await conn.execute(SUB.update().where(SUB.c.customer_id == cid).values(current_period_end=end))
    async with sessionmaker() as s:  # rules stop at the period end, before any sweep
        plan = await effective_plan(s, cid)
    assert (plan.plan, plan.subscribed, plan.subscription_status) == ("stardust", False, "cancelled")

    ended = await expire_manual_plans(engine)
    assert len(ended) >= 1
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(SUB).where(SUB.c.customer_id == cid))).one()
    assert row.id in ended and row.status == "cancelled"
    assert await _state(ledger, cid) == (0, 10, 0)  # subscription credits expired, pack kept
    assert await expire_manual_plans(engine, cid) == []  # once
    assert [e.amount for e in await ledger.list_entries(cid) if e.kind == "expire"] == [-60]
    assert await check_invariants(engine, cid) == []
