"""Frames of an order: the list, the zip of all files, the JPG preview, the FITS file (streamed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse

from api.deps import PrincipalDep, ResourcesDep, SessionDep
from api.errors import errors
from api.schemas.common import ImageId, Limit, Offset, OrderId
from api.schemas.orders import ImagePage
from api.services import order_views
from api.services.dashboard import is_live, require_dashboard
from api.services.files import fits_file, jpg_file
from api.services.frame_zip import order_zip_response

router = APIRouter(tags=["images"])


@router.get("/api/orders/{order_id}/images", response_model=ImagePage, summary="Frames of one of my orders",
            responses=errors(404))
async def get_order_images(order_id: OrderId, me: PrincipalDep, session: SessionDep,
                           limit: Limit = 100, offset: Offset = 0,
                           panel: Annotated[int | None, Query(ge=0, le=24, description=
                               "a mosaic panel's index (0-based, row by row): only its frames")] = None) -> ImagePage:
    """Each frame of a mosaic names its ``panel`` (docs/mosaics.md)."""
    await order_views.get_order(session, order_id, me)
    return await order_views.list_images(session, order_id, limit=limit, offset=offset, panel=panel)


@router.get("/api/orders/{order_id}/frames.zip", response_class=StreamingResponse,
            summary="Every JPG preview and FITS file of one of my orders, as one zip",
            responses={200: {"content": {"application/zip": {}}, "description": "jpg/… and fits/…"},
                       **errors(404, 410, 503)})
async def get_order_zip(order_id: OrderId, me: PrincipalDep, res: ResourcesDep, session: SessionDep) -> StreamingResponse:
    """Streamed from the image store (docs/frames.md). 410 ``image_expired`` once retention deleted
    the files (with the date); 404 when none can be read; 503 ``image_store_unavailable``."""
    await order_views.get_order(session, order_id, me)
    return await order_zip_response(res.settings, session, order_id)


@router.get("/api/images/{image_id}.jpg", response_class=StreamingResponse, summary="JPG preview of a frame",
            responses={200: {"content": {"image/jpeg": {}}, "description": "the preview"}, **errors(403, 404, 410, 503)})
async def get_jpg(image_id: ImageId, me: PrincipalDep, res: ResourcesDep, session: SessionDep) -> Response:
    """While the order runs the preview is the live dashboard: 403 ``dashboard_not_in_plan`` on a
    plan without it (api/services/dashboard.py); once the order has ended it is the gallery."""
    row = await order_views.get_image(session, image_id, me)
    if is_live(await order_views.get_order(session, row.order_id)):
        await require_dashboard(session, me)
    return (await jpg_file(res.settings, row)).response(res.settings, download=False)


@router.get("/api/images/{image_id}/fits", response_class=StreamingResponse, summary="FITS file of a frame (streamed)",
            responses={200: {"content": {"application/fits": {}}, "description": "the FITS file"},
                       **errors(404, 410, 503)})
async def get_fits(image_id: ImageId, me: PrincipalDep, res: ResourcesDep, session: SessionDep) -> Response:
    """Streamed from the image store (docs/frames.md). 404 ``fits_not_found`` when the file is not
    there; for a frame ingested before the store, 404 ``fits_dir_unreachable`` when Voyager's FIT
    directory is not mounted on the API host; 410 ``image_expired`` after retention; 503
    ``image_store_unavailable``."""
    row = await order_views.get_image(session, image_id, me)
    return (await fits_file(res.settings, row)).response(res.settings, download=True)
