"""Telescope vocabulary shared by the API, the CLI and the assignment rule (docs/telescopes.md).

A telescope's optics give its field of view and pixel scale; its status says whether it takes
orders. Pure: no database, no settings.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum

#: What ``POST /api/orders``'s ``telescope`` says to let Stellar choose (docs/telescopes.md §2).
ANY = "any"
#: A slug: lowercase letters, digits and dashes, starting with a letter (it becomes a task queue
#: name ``site-<slug>`` and a workflow id part).
SLUG_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
_SLUG = re.compile(SLUG_PATTERN)


class TelescopeStatus(StrEnum):
    """``online`` takes orders; ``maintenance`` keeps its orders but takes no new one; ``retired``
    is gone for good (kept for its orders' history)."""

    ONLINE = "online"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"


def valid_slug(slug: str) -> bool:
    return bool(_SLUG.match(slug)) and slug != ANY


def site_task_queue(slug: str) -> str:
    """``site-<slug>``: the task queue its site worker will poll (the routing half, not built yet)."""
    return f"site-{slug}"


@dataclass(frozen=True)
class FieldOfView:
    """``width_deg``/``height_deg``: degrees on the sky; ``scale_arcsec_px``: arcseconds per pixel."""

    width_deg: float
    height_deg: float
    scale_arcsec_px: float


def field_of_view(focal_length_mm: float, sensor_width_px: int, sensor_height_px: int,
                  pixel_size_um: float) -> FieldOfView:
    """Field of view and scale of a camera behind a focal length (small-angle plate scale
    206.265″·µm/mm, exact angle for the field: 2·atan(size / 2f))."""
    scale = 206.264806 * pixel_size_um / focal_length_mm

    def side(px: int) -> float:
        return math.degrees(2 * math.atan(px * pixel_size_um / 1000.0 / (2 * focal_length_mm)))

    return FieldOfView(side(sensor_width_px), side(sensor_height_px), scale)
