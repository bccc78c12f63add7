"""A small real HTTP server standing in for Stripe's Checkout (localstripe has none): it answers
``POST /v1/checkout/sessions`` with a session object, plus what subscribing asks first —
``POST /v1/customers`` and ``GET /v1/plans/<id>`` — and records every request (path, form,
``Idempotency-Key``). Shapes: https://docs.stripe.com/api/checkout/sessions/object."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import parse_qsl

import pytest

from tests.conftest import free_port

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
