"""HTTP models of orders: the ``POST /api/orders`` body and the order views (a public contract).

Units: ``ra_j2000`` hours 0–24, ``dec_j2000``/``pa``/``c_alt_min`` degrees, ``c_ha_start``/
``c_ha_end`` hours −12…12, ``exposure``/integration seconds, ``c_hfd_mean_limit``/HFD pixels,
credits integers, datetimes ISO 8601 UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas.common import MAX_ID, StrictIn
from api.schemas.constraints import ConstraintsIn


_In = StrictIn


class ShotIn(_In):
    """One line of the shot list: ``quantity`` frames of ``exposure`` seconds through ``filter``."""

    filter: str = Field(min_length=1, max_length=16, examples=["Ha"], description="filter name, e.g. L R G B Ha OIII SII")
    exposure: float = Field(gt=0, le=3600, description="seconds per frame, 0 < exposure ≤ 3600")
    quantity: int = Field(ge=1, le=1000, description="frames, 1–1000")
    bin: int = Field(default=1, ge=1, le=4, description="binning 1–4")
    gain: int | None = Field(default=None, ge=0, le=10_000)
    offset: int | None = Field(default=None, ge=0, le=10_000)


class MosaicIn(_In):
    """A mosaic around the target's centre (Quasar; docs/mosaics.md): ``columns`` × ``rows`` panels
    (1–5 each), neighbours sharing ``overlap_percent`` (0–50) of a field of view, the grid turned by
    ``rotation_deg`` (position angle, degrees east of north). Each panel is one RoboTarget Target
    named ``<target> P<column>-<row>``; the shot list is the whole mosaic's, split evenly."""

    columns: int = Field(ge=1, le=5, description="panels across, 1–5")
    rows: int = Field(ge=1, le=5, description="panels down, 1–5")
    overlap_percent: float = Field(default=10.0, ge=0, le=50,
                                   description="percent of a panel shared with a neighbour, 0–50")
    rotation_deg: float = Field(default=0.0, ge=0, lt=360,
                                description="position angle of the grid, degrees east of north")


class OrderCreate(ConstraintsIn):
    """``POST /api/orders``. Omit ``ra_j2000``/``dec_j2000`` to resolve ``target_name`` from the
    offline catalogue (Messier, NGC, IC); give both or neither. ``date_end`` must be after
    ``date_start`` and in the future; filters must be the telescope's. Plan rules (priority, moon-down, HFD, repeat, hour-angle
    window) are checked against the caller's plan: violations are 403 with per-field reasons. The
    constraint fields are ``api.schemas.constraints.ConstraintsIn``'s."""

    target_name: str = Field(min_length=1, max_length=200, examples=["M42"])
    ra_j2000: float | None = Field(default=None, ge=0, lt=24, description="hours, 0 ≤ ra < 24")
    dec_j2000: float | None = Field(default=None, ge=-90, le=90, description="degrees, −90…90")
    pa: float = Field(default=0.0, ge=0, lt=360, description="position angle, degrees")
    shots: list[ShotIn] = Field(min_length=1, max_length=50)
    set_id: int | None = Field(default=None, ge=1, le=MAX_ID,
                               description="one of your Sets (Quasar: GET /api/sets); omitted: your default Set")
    telescope: str = Field(default="any", min_length=1, max_length=40, examples=["any", "ohp-t1"],
                           description="a telescope slug (GET /api/telescopes), or any: Stellar picks the one "
                                       "that can image the target first (docs/telescopes.md §2)")
    min_field_arcmin: float | None = Field(default=None, gt=0, le=1200,
                                           description="the field of view the order needs, arcminutes on the "
                                                       "short side; telescopes with a narrower one are skipped")
    mosaic: MosaicIn | None = Field(default=None, description="Quasar: image a mosaic of panels instead of one field; "
                                    "every shot quantity must divide by the number of panels")


class FilterProgress(BaseModel):
    """One filter: frames done / wanted, accepted frames and accepted integration (seconds)."""

    filter: str
    done: int
    total: int
    accepted: int
    integration_seconds: float
    mean_hfd: float | None = None


class PanelProgress(BaseModel):
    """One mosaic panel (docs/mosaics.md): ``panel_index`` 0-based row by row, ``name`` like
    ``IC1396 P2-1`` (``P<column>-<row>``), centre ``ra_j2000`` hours / ``dec_j2000`` degrees; its
    frames done / wanted, accepted, accepted integration (seconds) and the same per filter."""

    panel_index: int
    name: str
    column: int
    row: int
    ra_j2000: float
    dec_j2000: float
    done: int
    total: int
    accepted: int
    integration_seconds: float
    per_filter: list[FilterProgress]


class Progress(BaseModel):
    shots_done: int
    shots_total: int
    frames_accepted: int
    integration_seconds: float = Field(description="accepted exposure, seconds")
    requested_integration_seconds: float
    mean_hfd: float | None = Field(default=None, description="mean HFD of accepted frames, px")
    per_filter: list[FilterProgress]
    per_panel: list[PanelProgress] = Field(default_factory=list, description="a mosaic's panels; empty otherwise")


class Credits(BaseModel):
    """Credits of one order: ``cost`` priced at creation; ``held``, then ``captured`` and
    ``released`` (the ledger's words, docs/pricing.md §5: released credits go back to the balance;
    a refund is money returned after a payment, docs/payments.md)."""

    cost: int
    held: int
    captured: int
    released: int


class ImageOut(BaseModel):
    """One acquired frame. ``exposure`` seconds; ``hfd`` px; URLs are API paths.

    ``status`` ``expired``: retention deleted its FITS and JPG on ``expired_at`` (docs/operations.md
    §Retention); the metadata stays and the download URLs answer 410 Gone."""

    id: int
    order_id: int
    filter: str
    exposure: float
    hfd: float | None
    accepted: bool
    taken_at: datetime | None
    filename: str
    jpg_url: str | None
    fits_url: str
    fits_sha256: str | None = Field(default=None, description="hex SHA-256 of the FITS file as stored "
                                    "(docs/frames.md); empty for frames ingested before the image store")
    status: Literal["available", "expired"] = "available"
    expired_at: datetime | None = None
    panel: str | None = Field(default=None, description="a mosaic frame's panel name, e.g. IC1396 P2-1")


class MosaicOut(BaseModel):
    """A mosaic order's layout (docs/mosaics.md): the request's ``columns``/``rows``/
    ``overlap_percent``/``rotation_deg`` and the ``field_of_view`` {width_deg, height_deg} the panels
    were laid out with."""

    columns: int
    rows: int
    overlap_percent: float
    rotation_deg: float
    field_of_view: dict[str, float]


class ShotOut(BaseModel):
    filter: str
    exposure: float
    quantity: int
    bin: int
    gain: int | None
    offset: int | None


class NextWindow(BaseModel):
    """The next interval in which a target is observable under its constraints at the site
    (core/ephemeris.py ``next_window``): aware UTC datetimes."""

    start: datetime
    end: datetime


_NEXT_WINDOW = ("waiting orders (pending, held, submitted): the next interval in which the target is "
                "observable under the order's constraints at the site; null once running or ended, or "
                "when no such interval lies within the look-ahead (core/ephemeris.py); not computed in the "
                "POST /api/orders answer")
_ORDERS_AHEAD = "waiting orders of higher priority observable in the same interval; null when no next_window"


class OrderSummary(BaseModel):
    id: int
    customer_id: int
    status: str
    target_name: str
    plan: str
    set_id: int | None = Field(default=None, description="the Set it is in; null: the default Set")
    cost: int
    workflow_id: str | None
    created_at: datetime
    updated_at: datetime
    shots_done: int
    shots_total: int
    next_window: NextWindow | None = Field(default=None, description=_NEXT_WINDOW)
    orders_ahead: int | None = Field(default=None, description=_ORDERS_AHEAD)
    telescope: str | None = Field(default=None, description="slug of the telescope that runs it")


class OrderOut(BaseModel):
    """An order with its progress (``GET /api/orders/{id}``, and the ``POST /api/orders`` answer)."""

    id: int
    customer_id: int
    status: str
    status_reason: str
    target_name: str
    ra_j2000: float
    dec_j2000: float
    pa: float
    plan: str
    set_id: int | None = Field(default=None, description="the Set it is in; null: the default Set")
    priority: int
    c_moon_down: bool
    c_hfd_mean_limit: float
    c_alt_min: float
    c_ha_start: float | None
    c_ha_end: float | None
    date_start: datetime | None
    date_end: datetime | None
    repeat: int
    shots: list[ShotOut] = Field(description="the shot list as ordered (a mosaic's whole list, not per panel)")
    mosaic: MosaicOut | None = Field(default=None, description="the mosaic layout; null for a single field")
    cost: int
    credits: Credits
    workflow_id: str | None
    workflow_url: str | None = Field(description="the workflow in the Temporal Web UI")
    progress: Progress
    latest_frames: list[ImageOut]
    report: dict[str, Any] | None = Field(description="per-filter report once the order is finished")
    aborted_by: str | None
    abort_reason: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    next_window: NextWindow | None = Field(default=None, description=_NEXT_WINDOW)
    orders_ahead: int | None = Field(default=None, description=_ORDERS_AHEAD)
    telescope: str | None = Field(default=None, description="slug of the telescope that runs it")
    assignment_reason: str = Field(default="", description="why that telescope (docs/telescopes.md §2)")


class OrderPage(BaseModel):
    items: list[OrderSummary]
    total: int
    limit: int
    offset: int


class ImagePage(BaseModel):
    items: list[ImageOut]
    total: int
    limit: int
    offset: int


class AbortIn(_In):
    """Optional body of ``POST /api/orders/{id}/abort``."""

    reason: str = Field(default="", max_length=2000)


class SupportAbortIn(_In):
    """Body of ``POST /api/support/orders/{id}/abort``: the reason is required."""

    reason: str = Field(min_length=1, max_length=2000)


class AbortOut(BaseModel):
    """``accepted``: the workflow took the abort (``first``: this request is the one recorded)."""

    order_id: int
    accepted: bool
    first: bool
    status: str
    requested_by: str
    reason: str


class AbortPreviewOut(BaseModel):
    """``GET /api/orders/{id}/abort-preview``: what an abort would settle now (docs/pricing.md §6).
    Credits: of ``held``, ``captured`` pay for the accepted integration so far (seconds), ``released``
    go back to the customer. Nothing is moved until the abort itself."""

    order_id: int
    held: int
    captured: int
    released: int
    accepted_integration_seconds: float
    requested_integration_seconds: float


StatusFilter = Literal[
    "pending", "held", "submitted", "running", "settling",
    "completed", "partial", "aborted", "expired", "failed", "rejected",
]
