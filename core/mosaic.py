"""Mosaic panel centres on the sky (docs/mosaics.md).

A mosaic of ``columns`` × ``rows`` panels is laid out on the tangent plane around the target's
centre, with neighbouring panels ``field of view × (1 − overlap)`` apart, the grid turned by
``rotation_deg`` (position angle of the grid's "up" axis, east of north), and each offset carried
to the sky with astropy's ``SkyOffsetFrame`` centred on the target — spherical offsets, not RA/Dec
arithmetic, so the layout stays right near the celestial pole and across RA 0 h.

Panel names: ``<target> P<column>-<row>``. At rotation 0, as on an image with north up and east
left, column 1 is the eastern edge (columns run west) and row 1 the northern edge (rows run south).
Panels are numbered row by row (index 0 = P1-1, then P2-1 …). The planner takes the field of view
as an argument; it never reads settings (each telescope has its own optics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import astropy.units as u
from astropy.coordinates import ICRS, SkyCoord, SkyOffsetFrame

from core.optics import FieldOfView

MAX_SIDE = 5  # panels per side: 1–5 columns × 1–5 rows
MAX_OVERLAP_PERCENT = 50.0


@dataclass(frozen=True)
class MosaicSpec:
    """``columns``/``rows``: 1–5; ``overlap_percent``: 0–50 (share of a panel's side shared with its
    neighbour); ``rotation_deg``: position angle of the grid, degrees east of north."""

    columns: int
    rows: int
    overlap_percent: float = 10.0
    rotation_deg: float = 0.0

    @property
    def panel_count(self) -> int:
        return self.columns * self.rows


@dataclass(frozen=True)
class Panel:
    """One panel: ``index`` 0-based (row by row), ``column``/``row`` 1-based, ``name`` like
    ``IC1396 P2-1``, centre ``ra_j2000`` hours 0–24 / ``dec_j2000`` degrees."""

    index: int
    column: int
    row: int
    name: str
    ra_j2000: float
    dec_j2000: float


def split_refusal(quantity: int, panels: int) -> str | None:
    """Why ``quantity`` frames of a shot line cannot be split evenly over ``panels`` panels, naming
    the nearest valid quantities (multiples of ``panels`` within 1–1000); None when they can."""
    if quantity % panels == 0:
        return None
    below, above = quantity // panels * panels, (quantity // panels + 1) * panels
    nearest = [q for q in (below, above) if 0 < q <= 1000]
    return (f"{quantity} frames do not split evenly over {panels} panels; nearest valid quantities: "
            + " or ".join(str(q) for q in nearest))


def panel_name(target_name: str, column: int, row: int) -> str:
    return f"{target_name} P{column}-{row}"


def plan_panels(target_name: str, ra_j2000: float, dec_j2000: float, spec: MosaicSpec,
                fov: FieldOfView) -> list[Panel]:
    """The panels of ``spec`` around (``ra_j2000`` hours, ``dec_j2000`` degrees) for frames of
    ``fov``. Raises ValueError for a spec outside 1–5 × 1–5 panels or 0–50 % overlap."""
    if not (1 <= spec.columns <= MAX_SIDE and 1 <= spec.rows <= MAX_SIDE):
        raise ValueError(f"a mosaic has 1–{MAX_SIDE} columns and rows, got {spec.columns}×{spec.rows}")
    if not 0 <= spec.overlap_percent <= MAX_OVERLAP_PERCENT:
        raise ValueError(f"overlap must be 0–{MAX_OVERLAP_PERCENT:g} %, got {spec.overlap_percent}")
    keep = 1.0 - spec.overlap_percent / 100.0
    step_x, step_y = fov.width_deg * keep, fov.height_deg * keep
    theta = math.radians(spec.rotation_deg)
    # Unit vectors of the grid in (east, north): "up" points to the position angle, "right"
    # (increasing column) is west at rotation 0 and turns with it.
    up = (math.sin(theta), math.cos(theta))
    right = (-math.cos(theta), math.sin(theta))
    centre = SkyCoord(ra=ra_j2000 * 15.0 * u.deg, dec=dec_j2000 * u.deg, frame=ICRS())
    frame = SkyOffsetFrame(origin=centre)
    cells = [(c, r) for r in range(1, spec.rows + 1) for c in range(1, spec.columns + 1)]
    east, north = [], []
    for c, r in cells:
        x = (c - (spec.columns + 1) / 2.0) * step_x
        y = ((spec.rows + 1) / 2.0 - r) * step_y
        east.append(x * right[0] + y * up[0])
        north.append(x * right[1] + y * up[1])
    # (east, north) are the tangent-plane offsets (degrees); gnomonic back-projection onto the
    # sphere of the offset frame, whose origin is the target.
    xi, eta = [math.radians(e) for e in east], [math.radians(n) for n in north]
    lon = [math.degrees(math.atan2(a, 1.0)) for a in xi]
    lat = [math.degrees(math.atan2(b, math.hypot(1.0, a))) for a, b in zip(xi, eta)]
    sky = SkyCoord(lon=lon * u.deg, lat=lat * u.deg, frame=frame).transform_to(ICRS())
    return [
        Panel(index=i, column=c, row=r, name=panel_name(target_name, c, r),
              ra_j2000=float(sky[i].ra.hour) % 24.0, dec_j2000=float(sky[i].dec.deg))
        for i, (c, r) in enumerate(cells)
    ]
