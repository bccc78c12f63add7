"""Payment test fixtures: localstripe, the API under uvicorn on a loopback port (so localstripe can
POST its signed webhooks to it), and a Temporal worker running the payment workflows.

``localstripe`` is one child process per test session (``core.localstripe.LocalStripe``, state in
memory). ``pay`` is a :class:`PaymentHarness` per test: its own task queue, its app on a free
port, localstripe's webhook pointed at that app with the test secret, a worker, an httpx client.

Why a real server rather than capture-and-replay: the end-to-end tests then exercise exactly what
production does — Stripe (localstripe) signs and POSTs each event to ``/api/stripe/webhook``
about a second after it happens, in its own order, and the app verifies and forwards it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
import stripe
import uvicorn
from temporalio.worker import Worker

from worker import PAYMENT_WORKFLOWS, payment_activities
from api.app import create_app
from api.services.customers import NewCustomer, create_customer
from billing.ledger import Ledger
from billing.ledger_check import check_invariants
from billing.stripe_client import make_stripe_client
from core.localstripe import LocalStripe
from core.settings import Settings, load_settings
from models.db import Customer, LedgerEntry, StripeEvent
from tests.conftest import free_port

WEBHOOK_SECRET = "whsec_test_payments"
CARD_OK = "4242424242424242"
CARD_CHARGE_DECLINED = "4000000000000341"  # attaches, then every charge is declined (Stripe test card)
CARD_ATTACH_DECLINED = "4000000000000002"  # declined at once


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header the way Stripe (and localstripe) compute it."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30.0, interval: float = 0.25,
                     what: str = "condition") -> Any:
    """Poll ``check`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value {last!r}")


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory) -> Iterator[LocalStripe]:
    ls = LocalStripe(free_port(), log_path=tmp_path_factory.mktemp("localstripe") / "localstripe.log")
    ls.start()
    yield ls
    ls.stop()


def payment_settings(database_url: str, temporal: str, task_queue: str, stripe_base: str, **overrides) -> Settings:
    groups: dict[str, dict] = {
        "database": {"url": database_url},
        "temporal": {"address": temporal, "task_queue": task_queue},
        "stripe": {"api_base": stripe_base, "webhook_secret": WEBHOOK_SECRET, "localstripe_compat": True},
        "voyager": {"port": 1},
    }
    for group, values in overrides.items():
        groups.setdefault(group, {}).update(values)
    return load_settings(env="test", **groups)


@dataclass
class PaymentHarness:
    settings: Settings
    engine: Any
    sessionmaker: Any
    temporal: Any
    stripe: stripe.StripeClient
    localstripe: LocalStripe
    http: httpx.AsyncClient
    base_url: str
    task_queue: str
    customers: list[NewCustomer] = field(default_factory=list)

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.engine)

    async def customer(self) -> NewCustomer:
        c = await create_customer(self.sessionmaker, email=f"pay-{uuid.uuid4().hex[:12]}@example.com",
                                  name="Payment Tester")
        self.customers.append(c)
        return c

    async def card(self, number: str = CARD_OK) -> str:
        """A card PaymentMethod id, made the way a browser's Stripe.js would (localstripe accepts raw numbers)."""
        pm = await self.stripe.v1.payment_methods.create_async(
            {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
        return pm.id

    async def post(self, path: str, key: str, body: Any = None) -> httpx.Response:
        return await self.http.post(path, headers=auth(key), json=body)

    async def get(self, path: str, key: str) -> httpx.Response:
        return await self.http.get(path, headers=auth(key))

    async def set_stripe_customer(self, customer_id: int, stripe_customer_id: str) -> None:
        """Link a customer to a Stripe customer id, as a first subscribe would (webhook tests)."""
        async with self.engine.begin() as conn:
            await conn.execute(Customer.__table__.update().where(Customer.__table__.c.id == customer_id)
                               .values(stripe_customer_id=stripe_customer_id))

    async def entries(self, customer_id: int) -> list[Any]:
        """Ledger entries of a customer, oldest first."""
        async with self.engine.connect() as conn:
            return (await conn.execute(sa.select(LedgerEntry.__table__).where(
                LedgerEntry.__table__.c.customer_id == customer_id).order_by(LedgerEntry.__table__.c.id))).all()

    async def grants(self, customer_id: int, reference_type: str = "invoice") -> list[Any]:
        return [e for e in await self.entries(customer_id) if e.kind == "grant" and e.reference_type == reference_type]

    async def event_processed(self, event_type: str, since: float = 0.0) -> int:
        """How many events of ``event_type`` the database recorded as processed."""
        async with self.engine.connect() as conn:
            return (await conn.execute(sa.select(sa.func.count()).select_from(StripeEvent.__table__).where(
                StripeEvent.__table__.c.type == event_type))).scalar_one()

    async def subscription(self, key: str) -> dict[str, Any] | None:
        r = await self.get("/api/subscriptions/current", key)
        assert r.status_code == 200, r.text
        return r.json()["subscription"]

    async def invariants_hold(self, customer_id: int | None = None) -> None:
        violations = await check_invariants(self.engine, customer_id)
        assert violations == [], violations

    async def deliver(self, event: dict[str, Any], secret: str = WEBHOOK_SECRET, timestamp: int | None = None,
                      signature: str | None = None) -> httpx.Response:
        """POST one event to the webhook, signed (unless ``signature`` is given)."""
        payload = json.dumps(event).encode()
        header = signature if signature is not None else sign(payload, secret, timestamp)
        return await self.http.post("/api/stripe/webhook", content=payload,
                                    headers={"Content-Type": "application/json", "Stripe-Signature": header})


@contextlib.asynccontextmanager
async def serve(app, port: int) -> AsyncIterator[None]:
    """Run ``app`` under uvicorn on 127.0.0.1:``port`` inside this event loop."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def make_pay(database_url, engine, sessionmaker, temporal_env, task_queue, localstripe):
    """``async with make_pay(billing={...}) as pay:`` — the harness with settings overrides."""

    @contextlib.asynccontextmanager
    async def factory(*, temporal=None, **overrides) -> AsyncIterator[PaymentHarness]:
        env = temporal or temporal_env
        target = env.client.service_client.config.target_host
        settings = payment_settings(database_url, target, task_queue, localstripe.url, **overrides)
        client = make_stripe_client(settings.stripe)
        app = create_app(settings, engine=engine, sessionmaker=sessionmaker, temporal_client=env.client)
        port = free_port()
        localstripe.configure_webhook(f"http://127.0.0.1:{port}/api/stripe/webhook", WEBHOOK_SECRET)
        async with serve(app, port):
            async with Worker(env.client, task_queue=task_queue, workflows=PAYMENT_WORKFLOWS,
                              activities=payment_activities(settings, engine, client)):
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                    yield PaymentHarness(settings=settings, engine=engine, sessionmaker=sessionmaker,
                                         temporal=env.client, stripe=client, localstripe=localstripe, http=http,
                                         base_url=f"http://127.0.0.1:{port}", task_queue=task_queue)
        # Later events (from other tests' objects) must not reach a stopped server's port.
        localstripe.configure_webhook("http://127.0.0.1:9/nowhere", WEBHOOK_SECRET)

    return factory


@pytest_asyncio.fixture
async def pay(make_pay) -> AsyncIterator[PaymentHarness]:
    async with make_pay() as h:
        yield h
