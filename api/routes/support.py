"""``/api/support``: staff views and actions on any customer (``support`` or ``admin`` role)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query

from api.deps import ResourcesDep, SessionDep, SupportDep
from api.errors import errors
from api.schemas.common import MAX_ID, CustomerId, Limit, Offset, OrderId
from api.schemas.credits import AdjustIn, AdjustmentPage, AdjustOut
from api.schemas.orders import AbortOut, OrderOut, OrderPage, StatusFilter, SupportAbortIn
from api.services import credits as credit_service
from api.services import order_views
from api.services.orders import MAX_IDEMPOTENCY_KEY, request_abort

router = APIRouter(prefix="/api/support", tags=["support"])


@router.get("/orders", response_model=OrderPage, summary="Every customer's orders", responses=errors(403))
async def get_orders(
    _: SupportDep, res: ResourcesDep, session: SessionDep,
    status: Annotated[StatusFilter | None, Query()] = None,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Limit = 50, offset: Offset = 0,
) -> OrderPage:
    return await order_views.list_orders(session, customer_id=customer_id, status=status, limit=limit,
                                         offset=offset, site=res.settings.site)


@router.get("/orders/{order_id}", response_model=OrderOut, summary="Any order with its progress",
            responses=errors(403, 404))
async def get_order(order_id: OrderId, _: SupportDep, res: ResourcesDep, session: SessionDep) -> OrderOut:
    order = await order_views.get_order(session, order_id)
    return await order_views.order_out(session, order, res.settings)


@router.post("/orders/{order_id}/abort", status_code=202, response_model=AbortOut,
             summary="Abort any order (reason required)", responses=errors(403, 404, 409, 503))
async def post_abort(order_id: OrderId, body: SupportAbortIn, staff: SupportDep, res: ResourcesDep,
                     session: SessionDep) -> AbortOut:
    order = await order_views.get_order(session, order_id)
    return await request_abort(res, order, body.reason, by=staff)


@router.post("/customers/{customer_id}/credits", response_model=AdjustOut,
             summary="Adjust a customer's credits (ledger-logged, reason and Idempotency-Key required)",
             responses=errors(402, 403, 404))
async def post_adjustment(
    customer_id: CustomerId, body: AdjustIn, staff: SupportDep, res: ResourcesDep, session: SessionDep,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=MAX_IDEMPOTENCY_KEY)] = None,
) -> AdjustOut:
    """``amount`` > 0 adds credits, < 0 takes them away (402 if the bucket holds fewer). The
    ``Idempotency-Key`` is required: a repeated request changes nothing and returns the first result.
    Never on the caller's own account (403 ``self_adjustment``); above ``api.support_adjust_limit``
    credits only with the admin role (403 ``admin_required``)."""
    return await credit_service.adjust(res, session, staff, customer_id, body, idempotency_key)


@router.get("/adjustments", response_model=AdjustmentPage, summary="Credit adjustments by staff, newest first",
            responses=errors(403))
async def get_adjustments(
    _: SupportDep, session: SessionDep,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Limit = 50, offset: Offset = 0,
) -> AdjustmentPage:
    return await credit_service.list_adjustments(session, customer_id, limit, offset)
