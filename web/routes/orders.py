"""Orders: my list, the new-order page (live price, chart, reasons), the order page (live over SSE,
abort), the gallery and the frame files."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlalchemy import func
from sqlmodel import select

from api.deps import ResourcesDep, SessionDep
from api.errors import ApiError
from api.services import order_views
from api.services.abort_preview import abort_preview
from api.services.files import fits_file, jpg_file
from api.services.frame_zip import order_zip_response
from api.services.orders import create_order, request_abort
from billing.errors import BillingError
from api.services.customers import effective_plan
from api.services.sets import list_sets
from api.services.telescopes import filter_names
from billing.plans import CUSTOM_HFD_MIN_PX, STANDARD_HFD_PX, get_plan, locked_options
from models.db import OrderEvent, OrderPanel, ShotDone
from models.telescopes import ANY
from web.deps import CsrfDep, MeDep
from web.fits_summary import header_summary
from web.hfd_chart import order_frames
from web.live import order_live_html
from web.order_form import FORM_FIELDS, SHOT_LINES, SUGGESTIONS, offered_telescopes, preview
from web.routes.accounts import see_other
from web.sky_chart import render_svg
from web.templating import render

router = APIRouter(prefix="/app")


@router.get("")
async def home(request: Request):
    return see_other("/app/orders" if request.session.get("cid") else "/app/sign-in")


@router.get("/orders")
async def orders_page(request: Request, me: MeDep, session: SessionDep):
    page = await order_views.list_orders(session, customer_id=me.customer_id, status=None, limit=100, offset=0)
    return render(request, "orders.html", orders=page.items)


def _filter_choices(res, telescopes) -> list[str]:
    """The shot lines' filter choices: every filter of the telescopes offered (``any`` may go to
    any of them; a filter the picked one lacks is refused beside its shot line by the preview),
    each telescope's in its wheel order; the configured list when none is online."""
    names = dict.fromkeys(n for t in telescopes for n in filter_names(t))
    return list(names) or res.settings.api.filter_list()


def _form_context(res, p=None, values=None, plan: str | None = None, sets=(), telescopes=()) -> dict:
    rules = get_plan(plan)
    return {"sets": sets, "telescopes": telescopes, "filters": _filter_choices(res, telescopes),
            "suggestions": SUGGESTIONS, "lines": range(SHOT_LINES),
            "p": p, "v": values or {}, "render_svg": render_svg, "form_fields": FORM_FIELDS,
            "plan": rules, "locked": locked_options(rules), "hfd_min": CUSTOM_HFD_MIN_PX, "hfd_max": STANDARD_HFD_PX}


async def _plan_of(session, me) -> str | None:
    return (await effective_plan(session, me.customer_id)).plan


async def _order_page_context(res, session, me, p=None, values=None) -> dict:
    """The form's context with the customer's Sets (default first) when the plan has them, and the
    telescopes the selector offers besides ``any``."""
    plan = await _plan_of(session, me)
    sets = await list_sets(res, session, me) if get_plan(plan).sets else []
    return _form_context(res, p=p, values=values, plan=plan, sets=sets,
                         telescopes=await offered_telescopes(session))


@router.get("/orders/new")
async def new_order_page(request: Request, me: MeDep, res: ResourcesDep, session: SessionDep):
    values = {"idem": str(uuid.uuid4()), "target_mode": "catalogue", "telescope": ANY, "mosaic_columns": "2", "mosaic_rows": "2",
              "mosaic_overlap_percent": "10", "mosaic_rotation_deg": "0"}
    return render(request, "order_new.html", **await _order_page_context(res, session, me, values=values))


@router.post("/orders/preview")
async def order_preview(request: Request, me: MeDep, res: ResourcesDep, session: SessionDep, _csrf: CsrfDep):
    """The price, the chart and the reasons as an htmx fragment (no write)."""
    form = await request.form()
    return render(request, "_order_preview.html", oob=True,
                  **_form_context(res, p=await preview(res, session, me, form)))


@router.post("/orders")
async def submit_order(request: Request, me: MeDep, res: ResourcesDep, session: SessionDep, _csrf: CsrfDep):
    """Create through ``create_order`` (the API's service), keyed by the form's idempotency key so
    a double submit makes one order."""
    form = await request.form()
    p = await preview(res, session, me, form)
    values = dict(form)
    if p.order is not None and not p.errors:
        try:
            order = (await create_order(res, me, p.order, str(form.get("idem") or "") or None)).order
            return see_other(f"/app/orders/{order.id}")
        except ApiError as exc:
            p.errors.update(exc.fields or {"form": exc.message})
        except BillingError as exc:
            p.errors.update(getattr(exc, "fields", None) or {"form": str(exc)})
    return render(request, "order_new.html", status_code=422,
                  **await _order_page_context(res, session, me, p=p, values=values))


async def _last_event_id(session, order_id: int) -> int:
    return int(await session.scalar(select(func.max(OrderEvent.id)).where(OrderEvent.order_id == order_id)) or 0)


@router.get("/orders/{order_id}")
async def order_page(request: Request, order_id: int, me: MeDep, res: ResourcesDep, session: SessionDep):
    order = await order_views.get_order(session, order_id, me)
    # The stream's start is read before the frames: a frame stored in between is both listed and
    # replayed (the page shows it once, order.html), never neither.
    after = await _last_event_id(session, order_id)
    view = await order_views.order_out(session, order, res.settings)
    # The plan's "dashboard" feature: live updates for Nebula and Quasar, refresh for Stardust.
    return render(request, "order.html", o=view, after=after,
                  live=get_plan(order.plan).dashboard, hfd_points=await order_frames(session, order_id))


@router.get("/orders/{order_id}/live")
async def order_live(request: Request, order_id: int, me: MeDep, res: ResourcesDep, session: SessionDep,
                     after: Annotated[int, Query(ge=0)] = 0,
                     last_event_id: Annotated[int | None, Header(ge=0)] = None):
    """SSE for the order page: each frame and status change as HTML fragments for htmx; resumes
    after ``Last-Event-ID`` when the browser reconnects."""
    await order_views.get_order(session, order_id, me)
    after = max(after, last_event_id or 0)
    await session.close()
    await res.events.ensure_listening()
    return StreamingResponse(order_live_html(request, res, me, order_id, after), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/orders/{order_id}/abort-confirm")
async def abort_confirm(request: Request, order_id: int, me: MeDep, res: ResourcesDep, session: SessionDep):
    """The abort confirmation with the credits an abort releases now (``api.services.abort_preview``)."""
    order = await order_views.get_order(session, order_id, me)
    return render(request, "_abort_confirm.html", order_id=order_id, preview=await abort_preview(res, order, me))


@router.get("/orders/{order_id}/abort-cancel")
async def abort_cancel(order_id: int, me: MeDep, session: SessionDep):
    """Close the confirmation (nothing happened)."""
    await order_views.get_order(session, order_id, me)
    return HTMLResponse("")


@router.post("/orders/{order_id}/abort")
async def abort(request: Request, order_id: int, me: MeDep, res: ResourcesDep, session: SessionDep, _csrf: CsrfDep):
    order = await order_views.get_order(session, order_id, me)
    try:
        result = await request_abort(res, order, "aborted by the customer (web)", by=me)
        return render(request, "_abort_result.html", ok=True, result=result)
    except ApiError as exc:
        return render(request, "_abort_result.html", status_code=exc.status_code, ok=False, message=exc.message)


@router.get("/orders/{order_id}/gallery")
async def gallery(request: Request, order_id: int, me: MeDep, res: ResourcesDep, session: SessionDep,
                  filter_: Annotated[str, Query(alias="filter", max_length=40)] = "",
                  state: Annotated[str, Query(pattern="^(|accepted|rejected)$")] = "",
                  panel: Annotated[str, Query(pattern="^([0-9]{1,2})?$")] = ""):
    """Every frame the order recorded, narrowed to one ``filter``, ``state`` (accepted, rejected)
    and/or a mosaic ``panel`` (its index, as ``GET /api/orders/{id}/images?panel=``); htmx asks for
    the same page and swaps the grid alone. A frame Voyager rejected and deleted is listed with its
    filter, time and HFD, without FITS link or header (its FITS is gone), and with its image when
    the ingest kept its JPG preview (docs/frames.md)."""
    order = await order_views.get_order(session, order_id, me)
    page = await order_views.list_images(session, order_id, limit=1000, offset=0, with_deleted=True)
    panels = (await session.exec(select(OrderPanel).where(OrderPanel.order_id == order_id)
                                 .order_by(OrderPanel.panel_index))).all()
    shown = (await order_views.list_images(session, order_id, limit=1000, offset=0, panel=int(panel),
                                           with_deleted=True)).items if panel else page.items
    filters = sorted({f.filter for f in page.items})
    frames = [f for f in shown if (not filter_ or f.filter == filter_)
              and (not state or f.accepted == (state == "accepted"))]
    rows = {r.id: r for r in (await session.exec(select(ShotDone).where(ShotDone.order_id == order_id))).all()}
    kept = {f.id for f in frames if not rows[f.id].is_deleted}
    headers = {i: await header_summary(res.settings, rows[i]) for i in kept}
    return render(request, "gallery.html", order=order, frames=frames, kept=kept, headers=headers, filters=filters,
                  panels=panels, total=len(page.items), q={"filter": filter_, "state": state, "panel": panel})


@router.get("/orders/{order_id}/frames.zip")
async def frames_zip(order_id: int, me: MeDep, res: ResourcesDep, session: SessionDep):
    """The order's zip of JPG previews and FITS files: ``GET /api/orders/{id}/frames.zip`` for the
    web session (the same builder; 410 ``image_expired`` after retention, 404 when none can be read)."""
    await order_views.get_order(session, order_id, me)
    return await order_zip_response(res.settings, session, order_id)


@router.get("/images/{image_id}.jpg")
async def image_jpg(image_id: int, me: MeDep, res: ResourcesDep, session: SessionDep):
    """The frame's JPG preview, a rejected frame's too when its preview was kept (the gallery)."""
    row = await order_views.get_image(session, image_id, me, with_deleted=True)
    return (await jpg_file(res.settings, row)).response(res.settings, download=False)


@router.get("/images/{image_id}/fits")
async def image_fits(image_id: int, me: MeDep, res: ResourcesDep, session: SessionDep):
    row = await order_views.get_image(session, image_id, me)
    return (await fits_file(res.settings, row)).response(res.settings, download=True)
