"""Telescope vocabulary shared by the API, the CLI and the assignment rule (docs/telescopes.md).

A telescope's optics give its field of view and pixel scale; its status says whether it takes
orders. Pure: no database, no settings.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from core.optics import Optics

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


def optics_of(t: Any) -> Optics:
    """The optics of a telescope row (or anything with its four optics fields), as
    :class:`core.optics.Optics`: field of view in degrees, scale in arcsec/px."""
    return Optics(float(t.focal_length_mm), int(t.sensor_width_px), int(t.sensor_height_px), float(t.pixel_size_um))
