"""A small real HTTP server standing in for Stripe's Checkout (localstripe has none): it answers
``POST /v1/checkout/sessions`` with a session object, plus what subscribing asks first —
``POST /v1/customers`` and ``GET /v1/plans/<id>`` — and records every request (path, form,
``Idempotency-Key``). Shapes: https://docs.stripe.com/api/checkout/sessions/object.

``checkout_app``: the app with ``web.payment_flow=checkout`` against it, and the payments worker
(signed webhooks then reach the real ``SubscriptionWorkflow``)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, AsyncIterator, Iterator
from urllib.parse import parse_qsl

import httpx
import pytest
import pytest_asyncio
from temporalio.worker import Worker

from api.app import create_app
from billing.stripe_client import make_stripe_client
from tests.api.conftest import api_settings, temporal_address
from tests.conftest import free_port
from tests.payments.conftest import WEBHOOK_SECRET
from worker import PAYMENT_WORKFLOWS, payment_activities

CHECKOUT_URL = "https://checkout.stripe.test/c/pay/cs_test_stellar"


class FakeStripeCheckout:
    """Records each request in ``requests``; ``sessions`` are the Checkout Session creations only."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict[str, Any] | None = None) -> None:
                data = json.dumps(body or {"error": {"type": "invalid_request_error", "message": "no such path"}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                outer.requests.append({"method": "GET", "path": self.path, "form": {}, "idempotency_key": None})
                if self.path.startswith("/v1/plans/"):
                    return self._answer(200, {"id": self.path.rsplit("/", 1)[1], "object": "plan"})
                self._answer(404)

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = dict(parse_qsl(body))
                outer.requests.append({"method": "POST", "path": self.path, "form": form,
                                       "idempotency_key": self.headers.get("Idempotency-Key")})
                n = len(outer.requests)
                if self.path == "/v1/customers":
                    return self._answer(200, {"id": f"cus_test_{n}", "object": "customer", "email": form.get("email")})
                if self.path == "/v1/checkout/sessions":
                    return self._answer(200, {"id": f"cs_test_{n}", "object": "checkout.session",
                                              "mode": form.get("mode"), "status": "open",
                                              "payment_status": "unpaid", "url": CHECKOUT_URL})
                self._answer(404)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def sessions(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == "/v1/checkout/sessions"]

    def __enter__(self) -> "FakeStripeCheckout":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripeCheckout]:
    with FakeStripeCheckout() as fake:
        yield fake


@pytest_asyncio.fixture
async def checkout_app(database_url, engine, sessionmaker, temporal_env, task_queue, tmp_path,
                       fake_stripe) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """(settings, an httpx client on the app at ``http://stellar.test``)."""
    settings = api_settings(database_url, temporal_address(temporal_env), task_queue, tmp_path,
                            stripe={"api_base": fake_stripe.url, "webhook_secret": WEBHOOK_SECRET},
                            web={"payment_flow": "checkout"}, api={"public_url": "http://stellar.test"})
    app = create_app(settings, engine=engine, sessionmaker=sessionmaker, temporal_client=temporal_env.client)
    activities = payment_activities(settings, engine, make_stripe_client(settings.stripe))
    async with Worker(temporal_env.client, task_queue=task_queue, workflows=PAYMENT_WORKFLOWS, activities=activities):
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://stellar.test") as c:
                yield settings, c
