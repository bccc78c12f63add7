"""``/api/telescopes`` (public listing) and ``/api/admin/telescopes`` (create, update, disable).
Logic: api/services/telescopes.py; docs/telescopes.md."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import AdminDep, SessionDep
from api.errors import errors
from api.schemas.telescopes import TelescopeIn, TelescopeList, TelescopeOut, TelescopePublic, TelescopeUpdate
from api.services import telescopes as service

router = APIRouter(tags=["telescopes"])


@router.get("/api/telescopes", response_model=TelescopeList, summary="The telescopes of the network",
            responses=errors())
async def get_telescopes(session: SessionDep) -> TelescopeList:
    """Every telescope not retired: site, field of view, filters, status, price multiplier and
    tonight's dark window at its site. Public (no key)."""
    rows = await service.all_telescopes(session, include_retired=False)
    return TelescopeList(items=await service.public_views(rows))


@router.get("/api/telescopes/{slug}", response_model=TelescopePublic, summary="One telescope of the network",
            responses=errors(404))
async def get_telescope(slug: str, session: SessionDep) -> TelescopePublic:
    """As in the listing: site, field of view (degrees) and pixel scale (arcsec/px) from its optics,
    filters, status, tonight's dark window. Public (no key). 404 ``unknown_telescope``."""
    [view] = await service.public_views([await service.by_slug(session, slug)])
    return view


@router.get("/api/admin/telescopes", response_model=list[TelescopeOut], summary="Every telescope, retired too",
            responses=errors(403))
async def get_admin_telescopes(_: AdminDep, session: SessionDep) -> list[TelescopeOut]:
    return [await service.admin_view(t) for t in await service.all_telescopes(session)]


@router.post("/api/admin/telescopes", status_code=201, response_model=TelescopeOut, summary="Add a telescope",
             responses=errors(403, 409, 422))
async def post_telescope(body: TelescopeIn, _: AdminDep, session: SessionDep) -> TelescopeOut:
    """409 ``telescope_exists`` for a slug taken; 422 for a value out of range (host share 0–100,
    multiplier > 0 with ≤ 4 decimals, an unknown time zone, duplicate filter names or indexes)."""
    return await service.admin_view(await service.create(session, body))


@router.patch("/api/admin/telescopes/{slug}", response_model=TelescopeOut, summary="Change a telescope",
              responses=errors(403, 404, 422))
async def patch_telescope(slug: str, body: TelescopeUpdate, _: AdminDep, session: SessionDep) -> TelescopeOut:
    """Only the fields given change. Orders already placed keep their telescope and their price."""
    return await service.admin_view(await service.update(session, slug, body))


@router.post("/api/admin/telescopes/{slug}/disable", response_model=TelescopeOut,
             summary="Take a telescope out of assignment", responses=errors(403, 404))
async def post_disable(
    slug: str, _: AdminDep, session: SessionDep,
    status: Annotated[Literal["maintenance", "retired"], Query()] = "maintenance",
) -> TelescopeOut:
    """``maintenance`` (default) or ``retired``: it takes no new order; orders it holds keep it."""
    return await service.admin_view(await service.disable(session, slug, status))
