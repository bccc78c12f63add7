"""API test fixtures: the app over real PostgreSQL and the real Temporal dev server, customers with keys.

``api`` builds an app per test (its own task queue, image dirs, rate limit), drives its lifespan
and yields an :class:`ApiHarness` with an ``httpx.AsyncClient`` over ``ASGITransport``.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from api.app import create_app
from api.services.customers import NewCustomer, create_customer
from billing.ledger import Ledger
from core.settings import Settings, load_settings
from models.db import Order, OrderEvent, OrderShot, ShotDone

from tests.api.streaming import StreamingASGITransport


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def temporal_address(env) -> str:
    return env.client.service_client.config.target_host


@dataclass
class ApiHarness:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings
    sessionmaker: Any
    engine: Any
    task_queue: str
    tmp: Path
    customers: list[NewCustomer] = field(default_factory=list)

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.engine)

    async def customer(self, *, plan: str | None = None, role: str = "customer", credits: int = 0,
                       bucket: str = "pack") -> NewCustomer:
        """A new customer with a key, through the same service as the CLI and the admin route."""
        c = await create_customer(self.sessionmaker, email=f"{role}-{uuid.uuid4().hex[:12]}@example.com",
                                  name=f"Test {role}", plan=plan, role=role)
        if credits:
            await self.ledger.grant(c.customer_id, credits, bucket, idempotency_key=f"test-grant:{uuid.uuid4()}",
                                    reference_type="admin", reference_id="tests", actor="tests", reason="test grant")
        self.customers.append(c)
        return c

    def streaming_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=StreamingASGITransport(self.app), base_url="http://stellar.test")

    async def insert_order(self, customer_id: int, *, status: str = "running", shots: list[tuple[str, float, int]]
                           = (("L", 60.0, 10),), **fields) -> Order:
        """An order row written directly (read-side tests that need no workflow)."""
        async with self.sessionmaker() as s:
            order = Order(customer_id=customer_id, target_name=fields.pop("target_name", "M42"), ra_j2000=5.588,
                          dec_j2000=-5.39, status=status, cost=fields.pop("cost", 3),
                          shots_total=sum(q for _, _, q in shots), **fields)
            s.add(order)
            await s.flush()
            for i, (flt, exp, qty) in enumerate(shots):
                s.add(OrderShot(order_id=order.id, position=i, filter=flt, exposure=exp, quantity=qty))
            await s.commit()
            await s.refresh(order)
            return order

    async def insert_frame(self, order_id: int, **fields) -> ShotDone:
        async with self.sessionmaker() as s:
            row = ShotDone(order_id=order_id, session_guid=fields.pop("session_guid", str(uuid.uuid4())),
                           shot_done_guid=str(uuid.uuid4()), **fields)
            s.add(row)
            await s.commit()
            await s.refresh(row)
            return row

    async def insert_event(self, order_id: int, kind: str, payload: dict) -> OrderEvent:
        async with self.sessionmaker() as s:
            row = OrderEvent(order_id=order_id, kind=kind, payload=payload)
            s.add(row)
            await s.commit()
            await s.refresh(row)
            return row

    async def set_order(self, order_id: int, **values) -> None:
        async with self.sessionmaker() as s:
            row = await s.get(Order, order_id)
            for k, v in values.items():
                setattr(row, k, v)
            await s.commit()


def api_settings(database_url: str, temporal_host: str, task_queue: str, tmp: Path, **overrides) -> Settings:
    """Test settings; ``temporal_host``: host:port of the Temporal frontend."""
    groups: dict[str, dict] = {
        "database": {"url": database_url},
        "temporal": {"address": temporal_host, "task_queue": task_queue},
        "images": {"jpg_dir": tmp / "jpg", "fit_dir": tmp / "fits"},
        "image_store": {"local_dir": tmp / "image-store"},
        "voyager": {"port": 1},  # nothing listens there unless a test starts the simulator
        "api": {"sse_heartbeat_seconds": 1.0, "health_timeout_seconds": 2.0},
    }
    for group, values in overrides.items():
        groups.setdefault(group, {}).update(values)
    return load_settings(env="test", **groups)


@pytest.fixture
def make_api(database_url, engine, sessionmaker, temporal_env, task_queue, tmp_path):
    """``async with make_api(api={...}) as h:`` — an app with extra settings overrides."""

    @contextlib.asynccontextmanager
    async def factory(**overrides) -> AsyncIterator[ApiHarness]:
        settings = api_settings(database_url, temporal_address(temporal_env), task_queue, tmp_path, **overrides)
        app = create_app(settings, engine=engine, sessionmaker=sessionmaker, temporal_client=temporal_env.client)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://stellar.test") as client:
                yield ApiHarness(app=app, client=client, settings=settings, sessionmaker=sessionmaker,
                                 engine=engine, task_queue=task_queue, tmp=tmp_path)

    return factory


@pytest_asyncio.fixture
async def api(make_api) -> AsyncIterator[ApiHarness]:
    async with make_api() as h:
        yield h
