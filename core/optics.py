"""The telescope's optics as a value: field of view (degrees) and pixel scale (arcsec/px).

Pure: no settings are read here. ``Optics.from_settings`` builds one from ``core.settings``'
``optics`` group; per-telescope data may build one from its own row. The formulas are the usual
ones for a camera at the focus of a telescope: pixel scale = 206 264.806″ × pixel size / focal
length, and a sensor side of ``s`` mm spans 2·atan(s / 2f) on the sky.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: Arcseconds in one radian.
ARCSEC_PER_RADIAN = 180.0 * 3600.0 / math.pi


@dataclass(frozen=True)
class FieldOfView:
    """The sky a frame covers: ``width_deg`` along the sensor's long (x) side, ``height_deg`` along
    its y side, degrees."""

    width_deg: float
    height_deg: float


@dataclass(frozen=True)
class Optics:
    """``focal_length_mm``: mm; ``sensor_width_px``/``sensor_height_px``: pixels; ``pixel_size_um``:
    µm. Raises ValueError when a value is not positive."""

    focal_length_mm: float
    sensor_width_px: int
    sensor_height_px: int
    pixel_size_um: float

    def __post_init__(self) -> None:
        for name in ("focal_length_mm", "sensor_width_px", "sensor_height_px", "pixel_size_um"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @classmethod
    def from_settings(cls, optics: Any) -> "Optics":
        """From an object with the four fields (``core.settings.OpticsSettings``)."""
        return cls(float(optics.focal_length_mm), int(optics.sensor_width_px), int(optics.sensor_height_px),
                   float(optics.pixel_size_um))

    @property
    def scale_arcsec_per_px(self) -> float:
        """Pixel scale at binning 1, arcsec/px."""
        return ARCSEC_PER_RADIAN * (self.pixel_size_um / 1000.0) / self.focal_length_mm

    @property
    def field_of_view(self) -> FieldOfView:
        """The frame's extent on the sky, degrees (exact 2·atan, not the small-angle product)."""
        def side(px: int) -> float:
            size_mm = px * self.pixel_size_um / 1000.0
            return math.degrees(2.0 * math.atan(size_mm / (2.0 * self.focal_length_mm)))

        return FieldOfView(side(self.sensor_width_px), side(self.sensor_height_px))
