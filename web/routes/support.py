"""The support console (support and admin roles): search every customer's orders, open any order,
abort it with a reason, adjust a customer's credits with a reason.

The API's services and rules (``/api/support``): ``order_views.list_orders``, ``request_abort``
(recorded as ``support:<e-mail>``, settled as a support abort), ``api.services.credits.adjust``
(never one's own account, an idempotency key per form, above ``api.support_adjust_limit`` only
for admins).
"""

from __future__ import annotations

import uuid
from typing import Annotated, get_args

from fastapi import APIRouter, Form, Query, Request
from pydantic import ValidationError
from sqlmodel import select

from api.deps import ResourcesDep, SessionDep
from api.errors import STATUS_BY_CODE, ApiError, NotFound
from api.schemas.credits import AdjustIn
from api.schemas.orders import StatusFilter
from api.services import credits as credit_service
from api.services import order_views
from api.services.abort_preview import abort_preview
from api.services.files import jpg_file
from api.services.orders import request_abort
from billing.errors import BillingError
from models.db import Customer, ShotDone
from web.deps import CsrfDep, StaffDep
from web.hfd_chart import order_frames
from web.templating import render

router = APIRouter(prefix="/app/support")
STATUSES = get_args(StatusFilter)
PAGE = 50


@router.get("")
async def console(request: Request, staff: StaffDep, res: ResourcesDep, session: SessionDep,
                  customer: Annotated[str, Query(max_length=320)] = "",
                  status: Annotated[str, Query(max_length=40)] = "",
                  target: Annotated[str, Query(max_length=200)] = ""):
    """Search: ``customer`` an id or part of an e-mail, ``status`` one of the order statuses,
    ``target`` part of the target name. htmx requests get the result table alone."""
    customer = customer.strip()
    cid = int(customer) if customer.isdigit() else None
    page = await order_views.list_orders(
        session, customer_id=cid, status=status if status in STATUSES else None, limit=PAGE, offset=0,
        target=target.strip() or None, customer_email=None if cid is not None else (customer or None))
    ids = {o.customer_id for o in page.items}
    emails = dict((await session.exec(select(Customer.id, Customer.email).where(Customer.id.in_(ids)))).all()) if ids else {}
    template = "_support_results.html" if request.headers.get("HX-Request") else "support.html"
    return render(request, template, orders=page.items, total=page.total, emails=emails, statuses=STATUSES,
                  q={"customer": customer, "status": status, "target": target})


async def _order_context(res, session, order_id: int, staff) -> dict:
    order = await order_views.get_order(session, order_id)
    view = await order_views.order_out(session, order, res.settings)
    customer = await session.get(Customer, order.customer_id)
    return {"o": view, "customer": customer, "hfd_points": await order_frames(session, order_id),
            "preview": await abort_preview(res, order, staff), "idem": str(uuid.uuid4()),
            "image_prefix": "/app/support/images"}


@router.get("/orders/{order_id}")
async def support_order(request: Request, order_id: int, staff: StaffDep, res: ResourcesDep, session: SessionDep):
    """Any customer's order: its status, credits, frames and the two staff actions."""
    return render(request, "support_order.html", **await _order_context(res, session, order_id, staff))


@router.post("/orders/{order_id}/abort")
async def support_abort(request: Request, order_id: int, staff: StaffDep, res: ResourcesDep, session: SessionDep,
                        _csrf: CsrfDep, reason: Annotated[str, Form(max_length=2000)] = ""):
    """Abort with the reason (required, as ``POST /api/support/orders/{id}/abort``)."""
    order = await order_views.get_order(session, order_id)
    if not reason.strip():
        return render(request, "_support_action.html", status_code=422, ok=False, field="reason",
                      message="a reason is required")
    try:
        result = await request_abort(res, order, reason.strip(), by=staff)
    except ApiError as exc:
        return render(request, "_support_action.html", status_code=exc.status_code, ok=False, message=exc.message,
                      code=exc.code)
    return render(request, "_support_action.html", ok=True, action="abort", result=result)


@router.post("/customers/{customer_id}/credits")
async def support_adjust(request: Request, customer_id: int, staff: StaffDep, res: ResourcesDep,
                         session: SessionDep, _csrf: CsrfDep,
                         amount: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
                         bucket: Annotated[str, Form()] = "pack", idem: Annotated[str, Form()] = ""):
    """Adjust credits through ``api.services.credits.adjust``; ``idem`` (one per form) makes a
    double submit one adjustment."""
    try:
        body = AdjustIn.model_validate({"amount": amount.strip(), "reason": reason.strip(), "bucket": bucket})
    except ValidationError as exc:
        err = exc.errors()[0]
        return render(request, "_support_action.html", status_code=422, ok=False, field=str(err["loc"][0]),
                      message=err["msg"])
    try:
        result = await credit_service.adjust(res, session, staff, customer_id, body, idem or None)
    except (ApiError, BillingError) as exc:
        status = getattr(exc, "status_code", None) or STATUS_BY_CODE.get(exc.code, 409)
        return render(request, "_support_action.html", status_code=status, ok=False,
                      message=getattr(exc, "message", str(exc)), code=getattr(exc, "code", ""))
    return render(request, "_support_action.html", ok=True, action="adjust", result=result)


@router.get("/images/{image_id}.jpg")
async def support_jpg(image_id: int, staff: StaffDep, res: ResourcesDep, session: SessionDep):
    """Any customer's frame preview, for the console's order page. Raises NotFound, Gone."""
    row = await session.get(ShotDone, image_id)
    if row is None or row.is_deleted:
        raise NotFound(f"image {image_id} not found")
    return (await jpg_file(res.settings, row)).response(res.settings, download=False)
