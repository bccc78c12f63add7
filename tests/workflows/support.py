"""Helpers of the order-workflow tests (tests/workflows, tests/e2e, tests/replay).

Everything is real: a ``VoyagerSimulator`` on a loopback port, PostgreSQL rows inserted the way the
API does, the billing ledger, a Temporal worker built by ``worker.open_worker``.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from temporalio.client import Client, WorkflowHandle

from billing.ledger import Ledger
from core.database import make_sessionmaker
from core.settings import Settings, load_settings
from core.temporal import DATA_CONVERTER
from models.db import Customer, LedgerEntry, Order, OrderEvent, OrderShot, ShotDone
from models.orders import CloseOrderRequest, SettleRequest
from voyager.simulator import SimulatorConfig, VoyagerSimulator

SIM_USER = "stellar"
SIM_PASSWORD = "s3cret"
SIM_MAC_KEY = "MACKEY-ORDERS"
SIM_WORDS = ["Orion", "Nebula", "Horse", "Head"]
#: Late afternoon at the OHP, three days before the new moon of 2026-01-18: a dark night follows
#: and M42 (RA 5.588 h, Dec −5.39°) climbs to ~40° around 22:30 UTC.
NIGHT_START = datetime(2026, 1, 15, 16, 0, tzinfo=UTC)
#: Midsummer noon: nothing is observable for hours (orders just wait).
DAYTIME = datetime(2025, 6, 21, 12, 0, tzinfo=UTC)
M42 = {"target_name": "M42", "ra_j2000": 5.588, "dec_j2000": -5.39}
HISTORY_DIR = Path(__file__).resolve().parent.parent / "replay" / "histories"


def sim_config(tmp_path: Path, **overrides: Any) -> SimulatorConfig:
    values: dict[str, Any] = dict(
        port=0, username=SIM_USER, password=SIM_PASSWORD, mac_key=SIM_MAC_KEY, mac_words=list(SIM_WORDS),
        speed=600.0, start_time=NIGHT_START, state_file=tmp_path / "voyager-sim.json", fit_dir=tmp_path / "fits",
        seed=11, frame_width=200, frame_height=150,
    )
    values.update(overrides)
    return SimulatorConfig(**values)


async def start_sim(tmp_path: Path, **overrides: Any) -> VoyagerSimulator:
    sim = VoyagerSimulator(sim_config(tmp_path, **overrides))
    await sim.start()
    return sim


def order_settings(sim: VoyagerSimulator, database_url: str, tmp_path: Path, *, temporal_address: str = "",
                   command_timeout: float = 10.0, pool_acquire_timeout: float = 15.0, **orders: Any) -> Settings:
    """Settings of a worker talking to ``sim``: fast polls, a telescope name unique to the test."""
    cfg = sim.config
    return load_settings(
        env="test",
        database={"url": database_url},
        temporal={"address": temporal_address or None},
        voyager={
            "host": "127.0.0.1", "port": sim.port, "username": cfg.username, "password": cfg.password,
            "mac_key": cfg.mac_key, "mac_words": ",".join(cfg.mac_words), "profile_name": cfg.profile_name,
            "pool_size": 3, "connect_timeout": 5.0, "command_timeout": command_timeout, "pool_acquire_timeout": pool_acquire_timeout,
        },
        images={"jpg_dir": tmp_path / "jpg", "fit_dir": cfg.fit_dir},
        image_store={"local_dir": tmp_path / "image-store"},
        orders={
            "telescope": f"t-{uuid.uuid4().hex[:8]}", "monitor_poll_interval": 0.5, "watch_poll_interval": 0.3,
            "sweep_wait_for_end": 20.0, "monitor_run_for": 600.0, **orders,
        },
    )


async def create_customer(engine: AsyncEngine, credits: int) -> int:
    """A customer with ``credits`` pack credits granted through the real ledger."""
    sm = make_sessionmaker(engine)
    async with sm() as s:
        c = Customer(email=f"{uuid.uuid4().hex}@test.stellar", name="Test")
        s.add(c)
        await s.commit()
        await s.refresh(c)
    if credits:
        await Ledger(engine).grant(c.id, credits, "pack", f"test-grant-{uuid.uuid4()}", "admin", "test")
    return c.id


async def create_order(engine: AsyncEngine, customer_id: int, shots: list[dict[str, Any]], *, plan: str = "nebula",
                       **fields: Any) -> int:
    """Insert an Order and its OrderShots as the API does; ``shots``: [{filter, exposure, quantity}]."""
    sm = make_sessionmaker(engine)
    values = {**M42, "plan": plan, "c_alt_min": 30.0, **fields}
    async with sm() as s:
        order = Order(customer_id=customer_id, **values)
        s.add(order)
        await s.flush()
        for i, shot in enumerate(shots):
            s.add(OrderShot(order_id=order.id, position=i, **shot))
        await s.commit()
        return order.id


async def order_row(engine: AsyncEngine, order_id: int) -> Order:
    async with make_sessionmaker(engine)() as s:
        order = await s.get(Order, order_id)
        assert order is not None
        return order


async def frames_of(engine: AsyncEngine, order_id: int) -> list[ShotDone]:
    async with make_sessionmaker(engine)() as s:
        return list((await s.exec(select(ShotDone).where(ShotDone.order_id == order_id))).all())


async def events_of(engine: AsyncEngine, order_id: int) -> list[OrderEvent]:
    async with make_sessionmaker(engine)() as s:
        return list((await s.exec(
            select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id))).all())


async def ledger_entries(engine: AsyncEngine, order_id: int) -> list[LedgerEntry]:
    async with make_sessionmaker(engine)() as s:
        return list((await s.exec(select(LedgerEntry).where(
            LedgerEntry.reference_type == "order", LedgerEntry.reference_id == str(order_id)))).all())


def status_sequence(events: list[OrderEvent]) -> list[str]:
    return [e.payload["status"] for e in events if e.kind == "status"]


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll an async predicate until true (test-side waiting only)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout
    while not await predicate():
        if loop.time() > until:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)


async def history_events(handle: WorkflowHandle) -> int:
    """Number of events in the workflow's history."""
    return len((await handle.fetch_history()).events)


#: The activities that settle an order's hold, and their input models.
SETTLING_ACTIVITIES: dict[str, type[SettleRequest]] = {
    "ledger.settle": SettleRequest, "ledger.settle_and_finalize": CloseOrderRequest,
}


async def settle_requests(handle: WorkflowHandle) -> list[SettleRequest]:
    """The inputs of every ``ledger.settle`` / ``ledger.settle_and_finalize`` activity the workflow
    scheduled, from its history."""
    out = []
    for event in (await handle.fetch_history()).events:
        attrs = event.activity_task_scheduled_event_attributes
        if event.HasField("activity_task_scheduled_event_attributes") and attrs.activity_type.name in SETTLING_ACTIVITIES:
            out.extend(await DATA_CONVERTER.decode(attrs.input.payloads, [SETTLING_ACTIVITIES[attrs.activity_type.name]]))
    return out


def count_commands(sim: Any) -> Counter[str]:
    """Count the commands the simulator ``sim`` receives from now on, by method (a test-side tap on
    its dispatch); the returned Counter fills as they arrive."""
    received: Counter[str] = Counter()
    run = sim.commands.run

    def counting_run(session, method, req_id, params):
        received[method] += 1
        return run(session, method, req_id, params)

    sim.commands.run = counting_run
    return received


async def save_history(handle: WorkflowHandle, name: str) -> None:
    """With ``STELLAR_RECORD_HISTORIES=1``, store the history under tests/replay/histories/."""
    if os.environ.get("STELLAR_RECORD_HISTORIES") != "1":
        return
    history = await handle.fetch_history()
    HISTORY_DIR.mkdir(parents=True, exist_ok=True)
    (HISTORY_DIR / f"{name}.json").write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")


async def terminate_quietly(client: Client, workflow_id: str) -> None:
    try:
        await client.get_workflow_handle(workflow_id).terminate("test teardown")
    except Exception:  # noqa: BLE001 - already closed
        pass


def now_utc() -> datetime:
    return datetime.now(UTC)
