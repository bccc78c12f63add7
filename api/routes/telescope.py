"""``GET /api/telescope``: the telescope's optics, field of view and pixel scale (core/optics.py)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PrincipalDep, ResourcesDep
from api.errors import errors
from api.schemas.telescope import FieldOfViewOut, OpticsOut, TelescopeOut
from core.optics import Optics

router = APIRouter(prefix="/api", tags=["telescope"])


@router.get("/telescope", response_model=TelescopeOut, summary="The telescope: optics and field of view",
            responses=errors())
async def get_telescope(me: PrincipalDep, res: ResourcesDep) -> TelescopeOut:
    """What a frame covers: ``field_of_view`` (degrees) and ``scale_arcsec_per_px`` from the
    ``optics`` settings (``STELLAR_OPTICS__…``); mosaic panels are spaced from this field of view."""
    s = res.settings
    optics = Optics.from_settings(s.optics)
    fov = optics.field_of_view
    return TelescopeOut(
        name=s.orders.telescope, site=s.site.name, latitude=s.site.latitude, longitude=s.site.longitude,
        filters=s.api.filter_list(),
        optics=OpticsOut(focal_length_mm=optics.focal_length_mm, sensor_width_px=optics.sensor_width_px,
                         sensor_height_px=optics.sensor_height_px, pixel_size_um=optics.pixel_size_um),
        field_of_view=FieldOfViewOut(width_deg=round(fov.width_deg, 6), height_deg=round(fov.height_deg, 6)),
        scale_arcsec_per_px=round(optics.scale_arcsec_per_px, 4),
    )
