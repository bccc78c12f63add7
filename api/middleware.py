"""Pure ASGI middleware: request ids, body size limit (413), JSON-only bodies (415).

Written as raw ASGI (not ``BaseHTTPMiddleware``) so streaming responses (SSE, FITS) pass through
untouched and the body is read at most once.
"""

from __future__ import annotations

import json
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body

_BODY_METHODS = {b"POST", b"PUT", b"PATCH", b"DELETE"}


def _header(scope: Scope, name: bytes) -> bytes | None:
    for k, v in scope.get("headers", []):
        if k.lower() == name:
            return v
    return None


#: The web app (``web/``, mounted under ``/app``) posts HTML forms; only there are form bodies allowed.
WEB_FORM_PREFIX = "/app/"
_FORM_TYPES = (b"application/x-www-form-urlencoded", b"multipart/form-data")


def _is_web_form(scope: Scope) -> bool:
    media = (_header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
    return scope["path"].startswith(WEB_FORM_PREFIX) and media in _FORM_TYPES


def _is_json(content_type: bytes | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


class RequestGuardMiddleware:
    """Binds a ``request_id`` for logs, and refuses oversized (413) or non-JSON (415) bodies.

    ``max_body_bytes``: limit on the request body, checked on ``Content-Length`` and again on the
    bytes actually received (chunked uploads). A body is buffered (≤ the limit) and replayed to the
    app, so raw-body consumers such as the Stripe webhook still see the exact bytes.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = (_header(scope, b"x-request-id") or b"").decode("latin-1")[:64] or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        try:
            if scope["method"].encode() in _BODY_METHODS:
                replay = await self._read_body(scope, receive, send_with_id)
                if replay is None:
                    return
                receive = replay
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """The buffered body as a new ``receive``, or None when an error was already answered."""
        length = _header(scope, b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _send_error(send, 400, "bad_request", "invalid Content-Length header")
                return None
            if declared > self.max_body_bytes:
                await _send_error(send, 413, "payload_too_large",
                                  f"request body exceeds {self.max_body_bytes} bytes")
                return None
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _send_error(send, 413, "payload_too_large", f"request body exceeds {self.max_body_bytes} bytes")
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and not _is_json(_header(scope, b"content-type")) and not _is_web_form(scope):
            await _send_error(send, 415, "unsupported_media_type", "request body must be application/json")
            return None
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay
