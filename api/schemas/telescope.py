"""HTTP model of ``GET /api/telescope``: the telescope's optics and what they see (core/optics.py).

Units: ``focal_length_mm`` mm, ``pixel_size_um`` µm, sensor sizes pixels, ``field_of_view``
degrees, ``scale_arcsec_per_px`` arcsec per pixel at binning 1, site coordinates degrees.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class OpticsOut(BaseModel):
    focal_length_mm: float
    sensor_width_px: int
    sensor_height_px: int
    pixel_size_um: float


class FieldOfViewOut(BaseModel):
    """One frame's extent on the sky, degrees; a mosaic's panels are laid out from it (docs/mosaics.md)."""

    width_deg: float
    height_deg: float


class TelescopeOut(BaseModel):
    name: str = Field(description="the telescope's name (its observatory monitor's)")
    site: str
    latitude: float
    longitude: float
    filters: list[str]
    optics: OpticsOut
    field_of_view: FieldOfViewOut
    scale_arcsec_per_px: float
