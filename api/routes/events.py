"""``GET /api/orders/{id}/events``: live progress and status of an order as Server-Sent Events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from api.deps import PrincipalDep, ResourcesDep, SessionDep
from api.errors import ApiError, errors
from api.rate_limits import StreamCap, TooManyStreams
from api.schemas.common import MAX_ID, OrderId
from api.services import order_views
from api.services.dashboard import require_dashboard
from api.services.order_stream import order_events

router = APIRouter(prefix="/api/orders", tags=["orders"])

SSE_DOC = {
    200: {
        "description": "`text/event-stream`: `event: progress` per ingested frame, `event: status` per "
        "status change, `event: report` at the end; `id:` is the event id (send it back as "
        "`Last-Event-ID` to resume). Ends after the order's final status.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


#: Seconds a client refused for too many open streams is told to wait.
STREAM_RETRY_AFTER = 5


class CappedStreamingResponse(StreamingResponse):
    """Releases its stream slot however the response ends (finished, client gone, cancelled),
    even if the body was never started."""

    def __init__(self, *args, cap: StreamCap, key: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._cap, self._key = cap, key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self._cap.held(self._key):
            await super().__call__(scope, receive, send)


@router.get("/{order_id}/events", response_class=StreamingResponse, summary="Live events of one of my orders",
            responses={**SSE_DOC, **errors(403, 404)})
async def get_events(
    order_id: OrderId, me: PrincipalDep, res: ResourcesDep, session: SessionDep,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_ID, description="resume after this event id")] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID, description="same as Last-Event-ID (for curl)")] = None,
) -> StreamingResponse:
    """The live dashboard: plans with ``dashboard`` (Nebula, Quasar) and support staff, who see
    every order's stream; any other caller gets 403 ``dashboard_not_in_plan`` (api/services/dashboard.py)."""
    await order_views.get_order(session, order_id, None if me.has_role("support") else me)
    await require_dashboard(session, me)
    await session.close()  # the stream uses short sessions of its own; do not hold this one open
    await res.events.ensure_listening()  # fail here (503) rather than inside an open stream
    start = max(last_event_id or 0, after or 0)
    try:
        res.sse_streams.acquire(me.key_hash)
    except TooManyStreams as exc:
        raise ApiError(str(exc), code="too_many_streams", status_code=429,
                       headers={"Retry-After": str(STREAM_RETRY_AFTER)}) from None
    return CappedStreamingResponse(
        order_events(res, order_id, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        cap=res.sse_streams, key=me.key_hash,
    )
