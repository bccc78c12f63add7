"""``GET /api/orders/{id}/events``: live progress and status of an order as Server-Sent Events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from api.deps import PrincipalDep, ResourcesDep, SessionDep
from api.errors import errors
from api.schemas.common import MAX_ID, OrderId
from api.services import order_views
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


@router.get("/{order_id}/events", response_class=StreamingResponse, summary="Live events of one of my orders",
            responses={**SSE_DOC, **errors(404)})
async def get_events(
    order_id: OrderId, me: PrincipalDep, res: ResourcesDep, session: SessionDep,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_ID, description="resume after this event id")] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID, description="same as Last-Event-ID (for curl)")] = None,
) -> StreamingResponse:
    await order_views.get_order(session, order_id, me)
    await session.close()  # the stream uses short sessions of its own; do not hold this one open
    await res.events.ensure_listening()  # fail here (503) rather than inside an open stream
    start = max(last_event_id or 0, after or 0)
    return StreamingResponse(
        order_events(res, order_id, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
