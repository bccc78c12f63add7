"""``/api/orders``: create (idempotent), list, read with progress, abort. Logic: api/services."""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Body, Header, Query, Response

from api.deps import OrderCallerDep, PrincipalDep, RequestConnectionDep, ResourcesDep, SessionDep
from api.errors import errors
from api.schemas.common import Limit, Offset, OrderId
from api.schemas.orders import AbortIn, AbortOut, AbortPreviewOut, OrderCreate, OrderOut, OrderPage, StatusFilter
from api.services import order_views
from api.services.abort_preview import abort_preview
from api.services.dashboard import may_see_live_frames
from api.services.orders import MAX_IDEMPOTENCY_KEY, create_order, request_abort

router = APIRouter(prefix="/api/orders", tags=["orders"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=MAX_IDEMPOTENCY_KEY,
        description="same key + same body → the same order (200); same key + another body → 422",
    ),
]


@router.post(
    "",
    status_code=201,
    response_model=OrderOut,
    summary="Create an observation order",
    responses={200: {"model": OrderOut, "description": "replay of an earlier request with this Idempotency-Key"},
               **errors(402, 403, 404, 409, 503)},
)
async def post_order(
    body: OrderCreate, caller: OrderCallerDep, res: ResourcesDep, held: RequestConnectionDep,
    response: Response, idempotency_key: IdempotencyKey = None,
) -> OrderOut:
    """Validate, gate with the caller's plan, check the target rises above ``c_alt_min`` within the
    window, check credits, then start the order's workflow (which holds the credits). The answer's
    ``next_window``/``orders_ahead`` are null: read them with ``GET /api/orders/{id}``. 404 for an
    unknown telescope or ``set_id``, 409 for a telescope not online (docs/telescopes.md)."""
    # One connection for the key's lookup and count (with what the order reads of the caller's
    # rows) and the order's statement, given back before the workflow's start.
    result = await create_order(res, caller.principal, body, idempotency_key, held=held, context=caller.context)
    # A session (a pooled connection) only for an answer that needs a query: a replay, a mosaic's
    # panels. A new single-field order has no frames yet and its shots and telescope are known.
    if not result.created:
        response.status_code = 200
        async with res.sessionmaker() as session:
            return await order_views.order_out(session, result.order, res.settings, schedule=False)
    async with res.sessionmaker() if result.order.mosaic else contextlib.nullcontext() as session:
        return await order_views.order_out(session, result.order, res.settings, schedule=False, fresh=True,
                                           shots=result.shots, telescope=result.telescope)


@router.get("", response_model=OrderPage, summary="List my orders", responses=errors())
async def get_orders(
    me: PrincipalDep, res: ResourcesDep, session: SessionDep,
    status: Annotated[StatusFilter | None, Query()] = None, limit: Limit = 50, offset: Offset = 0,
) -> OrderPage:
    """Waiting orders carry ``next_window`` and ``orders_ahead`` (api/services/order_schedule.py)."""
    return await order_views.list_orders(session, customer_id=me.customer_id, status=status, limit=limit,
                                         offset=offset, site=res.settings.site)


@router.get("/{order_id}", response_model=OrderOut, summary="One of my orders with its progress",
            responses=errors(404))
async def get_order(order_id: OrderId, me: PrincipalDep, res: ResourcesDep, session: SessionDep) -> OrderOut:
    """Status and progress for every plan; ``latest_frames`` of a running order only with the live
    dashboard (Nebula, Quasar: api/services/dashboard.py), for every plan once it has ended."""
    order = await order_views.get_order(session, order_id, me)
    return await order_views.order_out(session, order, res.settings,
                                       live_frames=await may_see_live_frames(session, me, order))


@router.post("/{order_id}/abort", status_code=202, response_model=AbortOut, summary="Abort one of my orders",
             responses=errors(404, 409, 503))
async def post_abort(
    order_id: OrderId, me: PrincipalDep, res: ResourcesDep, session: SessionDep,
    body: Annotated[AbortIn | None, Body()] = None,
) -> AbortOut:
    """The workflow aborts the target in Voyager, keeps the frames taken and settles as an abort
    (unused credits released). 409 once the order is settling or finished."""
    order = await order_views.get_order(session, order_id, me)
    reason = (body.reason if body else "") or "aborted by the customer"
    return await request_abort(res, order, reason, by=me)


@router.get("/{order_id}/abort-preview", response_model=AbortPreviewOut,
            summary="The credits an abort would keep and release now", responses=errors(404))
async def get_abort_preview(order_id: OrderId, me: PrincipalDep, res: ResourcesDep,
                            session: SessionDep) -> AbortPreviewOut:
    """The settlement policy (docs/pricing.md §6) applied to the frames accepted so far: what
    ``POST …/abort`` would capture and release if it settled now. Moves nothing."""
    order = await order_views.get_order(session, order_id, me)
    return await abort_preview(res, order, me)
