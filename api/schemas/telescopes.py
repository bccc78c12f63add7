"""HTTP models of telescopes: the admin bodies (``/api/admin/telescopes``) and the public listing
(``GET /api/telescopes``). Units: degrees, metres, millimetres, pixels, micrometres; the price
multiplier is an exact decimal (a JSON string in answers); see docs/telescopes.md."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator, model_validator

from api.schemas.common import StrictIn
from models.telescopes import ANY, SLUG_PATTERN

Status = Literal["online", "maintenance", "retired"]


class FilterSlot(StrictIn):
    """One filter of the wheel: its name (as orders spell it) and its Voyager filter index."""

    name: str = Field(min_length=1, max_length=16, examples=["Ha"])
    index: int = Field(ge=0, le=63, description="Voyager filter index (0-based position in the wheel)")


def _check_filters(filters: list[FilterSlot] | None) -> list[FilterSlot] | None:
    if filters is None:
        return None
    names = [f.name.lower() for f in filters]
    if len(set(names)) != len(names):
        raise ValueError("filter names must be unique")
    if len({f.index for f in filters}) != len(filters):
        raise ValueError("filter indexes must be unique")
    return filters


def _check_zone(zone: str | None) -> str | None:
    if zone is None:
        return None
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {zone!r} (e.g. Europe/Madrid)") from None
    return zone


class _TelescopeFields(StrictIn):
    """Every field optional: the update body. :class:`TelescopeIn` makes the required ones so."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    site_name: str | None = Field(default=None, min_length=1, max_length=200, examples=["Haute-Provence"])
    latitude: float | None = Field(default=None, ge=-90, le=90, description="degrees, north positive")
    longitude: float | None = Field(default=None, ge=-180, le=180, description="degrees, east positive")
    elevation: float | None = Field(default=None, ge=-500, le=9000, description="metres")
    time_zone: str | None = Field(default=None, max_length=64, examples=["Europe/Paris"], description="IANA name")
    horizon_alt: float | None = Field(default=None, ge=-10, le=90,
                                      description="degrees: the site's floor (trees, dome), whatever an order's c_alt_min")
    aperture_mm: float | None = Field(default=None, gt=0, le=100_000, description="millimetres")
    focal_length_mm: float | None = Field(default=None, gt=0, le=1_000_000, description="millimetres")
    sensor_width_px: int | None = Field(default=None, ge=1, le=100_000)
    sensor_height_px: int | None = Field(default=None, ge=1, le=100_000)
    pixel_size_um: float | None = Field(default=None, gt=0, le=1000, description="micrometres")
    filters: list[FilterSlot] | None = Field(default=None, min_length=1, max_length=32)
    voyager_profile: str | None = Field(default=None, min_length=1, max_length=255, examples=["Stellar.v2y"])
    price_multiplier: Decimal | None = Field(
        default=None, gt=0, le=100, max_digits=8, decimal_places=4,
        description="exact decimal, up to 4 places (docs/pricing.md §8); 1 = the reference telescope")
    host_customer_id: int | None = Field(default=None, ge=1, description="the customer hosting it (earnings)")
    host_share_percent: int | None = Field(default=None, ge=0, le=100, description="percent 0–100 of its sales")
    status: Status | None = None

    _filters = field_validator("filters")(classmethod(lambda cls, v: _check_filters(v)))
    _zone = field_validator("time_zone")(classmethod(lambda cls, v: _check_zone(v)))


class TelescopeUpdate(_TelescopeFields):
    """``PATCH /api/admin/telescopes/{slug}``: only the fields given change (the slug never does)."""


_REQUIRED = ("name", "site_name", "latitude", "longitude", "elevation", "time_zone", "horizon_alt", "aperture_mm",
             "focal_length_mm", "sensor_width_px", "sensor_height_px", "pixel_size_um", "filters", "voyager_profile")


class TelescopeIn(_TelescopeFields):
    """``POST /api/admin/telescopes``. Required: slug and the site, optics, filters and profile;
    defaults: multiplier 1, host share 0, status online."""

    slug: str = Field(pattern=SLUG_PATTERN, examples=["ohp-t1"],
                      description="lowercase letters, digits, dashes; starts with a letter; 1–40 characters")

    @model_validator(mode="after")
    def _required(self) -> "TelescopeIn":
        missing = [f for f in _REQUIRED if getattr(self, f) is None]
        if missing:
            raise ValueError(f"missing: {', '.join(missing)}")
        if self.slug == ANY:
            raise ValueError(f"{ANY!r} is reserved: it asks Stellar to choose")
        return self


class SiteOut(BaseModel):
    name: str
    latitude: float
    longitude: float
    elevation: float
    time_zone: str
    horizon_alt: float


class FieldOfViewOut(BaseModel):
    """``width_deg``/``height_deg``: degrees; ``scale_arcsec_px``: arcseconds per pixel."""

    width_deg: float
    height_deg: float
    scale_arcsec_px: float


class DarkWindow(BaseModel):
    """Astronomical night (sun below −18°) at the site: aware UTC datetimes; null in a night without one."""

    start: datetime
    end: datetime


class TelescopePublic(BaseModel):
    """A telescope as customers see it (``GET /api/telescopes``)."""

    slug: str
    name: str
    site: SiteOut
    aperture_mm: float
    focal_length_mm: float
    field_of_view: FieldOfViewOut
    filters: list[str]
    status: Status
    price_multiplier: Decimal
    tonight: DarkWindow | None = Field(description="tonight's (or, after dawn, the next) dark window")


class TelescopeOut(TelescopePublic):
    """A telescope with what operators manage (admin answers)."""

    id: int
    sensor_width_px: int
    sensor_height_px: int
    pixel_size_um: float
    filter_slots: list[FilterSlot]
    voyager_profile: str
    host_customer_id: int | None
    host_share_percent: int
    last_seen_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TelescopeList(BaseModel):
    items: list[TelescopePublic]


class AssignmentOut(BaseModel):
    """Which telescope runs (would run) the order and why (docs/telescopes.md §2)."""

    slug: str
    name: str
    site_name: str
    price_multiplier: Decimal
    reason: str
