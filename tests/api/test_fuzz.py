"""Schemathesis fuzz run over the app's own OpenAPI document, in-process over ASGI: no input may
produce a 5xx, and every answer must match the documented status codes, media types and schemas.

Bounded: a few examples per operation and generation mode (positive and negative: 10 each, plus up
to 5 from the operation's documented examples), about a minute in all on a quiet machine. The app
runs its real lifespan (PostgreSQL, Temporal dev server) inside schemathesis' ASGI client, with an
admin key so staff routes are exercised too.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi as st_asgi

from api.app import create_app
from tests.api.conftest import api_settings, temporal_address
from tests.patience import patience

#: Per operation and generation mode: the suite's CPU is the budget here (40, the first value, grew to
#: several minutes as operations were added). ``STELLAR_FUZZ_EXAMPLES=500 STELLAR_FUZZ_RANDOM=1`` digs deeper.
EXAMPLES = int(os.environ.get("STELLAR_FUZZ_EXAMPLES", "10"))
RANDOM = os.environ.get("STELLAR_FUZZ_RANDOM") == "1"
#: Valid requests here wait for a Temporal worker (payments' subscription workflow), and none runs in
#: this test: their invalid inputs are fuzzed; their valid paths are the payments tests' business.
NEEDS_A_WORKER = {"POST /api/subscriptions/subscribe", "POST /api/subscriptions/change",
                  "POST /api/subscriptions/cancel"}
#: Seconds one answer may take (schemathesis' default is 10: on a loaded machine the first price estimate,
#: computing the sky with cold caches, overran even 30). The order's event stream keeps the default:
#: its deadline ends the stream.
ANSWER_TIMEOUT = patience(60.0)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]


def backend_unavailable(path: str, response) -> bool:
    """The documented 503s this environment causes on purpose, which are not input errors: an
    abort no worker takes (none runs here)."""
    if response.status_code != 503:
        return False
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return False
    return path.endswith("/abort") and code == "workflow_unresponsive"


def in_thread(coro_fn, *args):
    """Run a coroutine on a loop of its own (the test itself is synchronous)."""
    result: list = []
    errors: list = []

    def target():
        try:
            result.append(asyncio.run(coro_fn(*args)))
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return result[0]


async def _keys(database_url: str):
    from api.services.customers import create_customer
    from billing.ledger import Ledger
    from core.database import make_engine, make_sessionmaker

    engine = make_engine(database_url, pool_size=1)
    try:
        sm = make_sessionmaker(engine)
        admin = await create_customer(sm, email=f"fuzz-admin-{uuid.uuid4().hex[:8]}@example.com", role="admin",
                                      plan="quasar")
        await Ledger(engine).grant(admin.customer_id, 10_000, "pack", f"fuzz:{uuid.uuid4()}", "admin", "fuzz")
        nobody = await create_customer(sm, email=f"fuzz-nobody-{uuid.uuid4().hex[:8]}@example.com")
        rotator = await create_customer(sm, email=f"fuzz-rotator-{uuid.uuid4().hex[:8]}@example.com")
        return admin, nobody, rotator
    finally:
        await engine.dispose()


async def _terminate_orders(database_url: str, address: str, customer_id: int) -> int:
    from sqlmodel import select

    from core.database import make_engine, make_sessionmaker
    from core.settings import load_settings
    from core.temporal import connect_temporal
    from models.db import Order

    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as s:
            ids = (await s.exec(select(Order.workflow_id).where(Order.customer_id == customer_id,
                                                                 Order.workflow_id.is_not(None)))).all()
    finally:
        await engine.dispose()
    client = await connect_temporal(load_settings(temporal={"address": address}))
    for workflow_id in ids:
        try:
            await client.get_workflow_handle(workflow_id).terminate("fuzz teardown")
        except Exception:  # noqa: BLE001 - already closed
            pass
    return len(ids)


@pytest.mark.timeout(600)
def test_fuzz_openapi_no_server_errors_and_documented_answers(database_url, temporal_env, tmp_path):
    address = temporal_address(temporal_env)
    settings = api_settings(database_url, address, f"tq-fuzz-{uuid.uuid4()}", tmp_path,
                            api={"rate_limit_per_minute": 1_000_000, "ip_rate_limit_per_minute": 1_000_000,
                                 "abort_timeout_seconds": 1.0,
                                 "sse_heartbeat_seconds": 0.2, "max_body_bytes": 64_000})
    admin, nobody, rotator = in_thread(_keys, database_url)
    app = create_app(settings)  # engine and Temporal client opened by the lifespan, on schemathesis' loop
    # Auth is ours to send (a fixed admin key); FastAPI ignores unknown query parameters by design.
    config = SchemathesisConfig.from_dict({"generation": {"allow-extra-parameters": False,
                                                          "with-security-parameters": False}})
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    operations = [result.ok() for result in schema.get_all_operations()]
    documented = {f"{op.method.upper()} {op.path}" for op in operations}
    assert "POST /api/orders" in documented and "GET /api/orders/{order_id}/events" in documented
    assert len(documented) >= 18
    calls: dict[str, int] = {}
    statuses: dict[int, int] = {}
    try:
        for op in operations:
            # The stream of an order that exists stays open: fuzz it as a customer without orders.
            # Rotation revokes the key it is called with: a key of its own keeps the others valid.
            key = {"/api/keys/rotate": rotator.api_key}.get(op.path, admin.api_key)
            if op.path.endswith("/events"):
                key = nobody.api_key
            headers = {"Authorization": f"Bearer {key}"}
            strategies = []
            if f"{op.method.upper()} {op.path}" not in NEEDS_A_WORKER:
                # The documented examples first: valid requests (e.g. an order for M42) that get through.
                strategies += [(GenerationMode.POSITIVE, s, 5) for s in op.get_strategies_from_examples()]
                strategies.append((GenerationMode.POSITIVE, op.as_strategy(generation_mode=GenerationMode.POSITIVE),
                                   EXAMPLES))
            strategies.append((GenerationMode.NEGATIVE, op.as_strategy(generation_mode=GenerationMode.NEGATIVE),
                               EXAMPLES))
            for mode, strategy, examples in strategies:

                @hypothesis.settings(max_examples=examples, deadline=None, database=None, derandomize=not RANDOM,
                                     suppress_health_check=list(HealthCheck), phases=[hypothesis.Phase.generate])
                @given(case=strategy)
                def run(case):
                    timeout = {} if op.path.endswith("/events") else {"timeout": ANSWER_TIMEOUT}
                    response = case.call(headers={**(case.headers or {}), **headers}, **timeout)
                    if backend_unavailable(op.path, response):
                        case.validate_response(response, checks=[c for c in CHECKS if c is not not_a_server_error])
                    else:
                        case.validate_response(response, checks=CHECKS)
                    calls[op.label] = calls.get(op.label, 0) + 1
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

                try:
                    run()
                except hypothesis.errors.Unsatisfiable:
                    # Nothing to make invalid (no parameters, no body): only the positive run applies.
                    assert mode == GenerationMode.NEGATIVE
    finally:
        st_asgi.shutdown_lifespans()
        in_thread(_terminate_orders, database_url, address, admin.customer_id)
    assert set(calls) >= {op.label for op in operations} - NEEDS_A_WORKER, "every operation was called"
    print("fuzz calls per operation:", calls, "statuses:", dict(sorted(statuses.items())))
