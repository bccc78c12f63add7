"""Optics → field of view, and mosaic panel centres on the sky (core/optics.py, core/mosaic.py),
checked with astropy's own separations and position angles — around IC1396, across RA 0 h, at and
near both celestial poles, turned by the grid's rotation."""

from __future__ import annotations

import math

import astropy.units as u
import pytest
from astropy.coordinates import SkyCoord

from billing.errors import PlanViolation
from billing.plans import gate
from core.mosaic import MosaicSpec, plan_panels
from core.optics import FieldOfView, Optics
from core.settings import OpticsSettings
from models.billing import OrderConstraints

OPTICS = Optics.from_settings(OpticsSettings())
FOV = OPTICS.field_of_view


def sky(p) -> SkyCoord:
    return SkyCoord(ra=p.ra_j2000 * 15 * u.deg, dec=p.dec_j2000 * u.deg)


def test_optics_give_scale_and_field_of_view():
    # 3.76 µm at 530 mm: 206264.8 × 0.00376 / 530 = 1.4633″/px; 6248 px × 23.49 mm → 2.54°.
    assert OPTICS.scale_arcsec_per_px == pytest.approx(1.46333, abs=1e-4)
    assert FOV.width_deg == pytest.approx(math.degrees(2 * math.atan(6248 * 3.76e-3 / 2 / 530)), rel=1e-12)
    assert FOV.width_deg == pytest.approx(6248 * OPTICS.scale_arcsec_per_px / 3600, rel=1e-3)
    assert FOV.height_deg == pytest.approx(1.6975, abs=1e-3)
    with pytest.raises(ValueError, match="focal_length_mm"):
        Optics(0, 100, 100, 3.0)


def _neighbours(panels, spec):
    at = {(p.column, p.row): p for p in panels}
    across = [(at[(c, r)], at[(c + 1, r)]) for (c, r) in at if (c + 1, r) in at]
    down = [(at[(c, r)], at[(c, r + 1)]) for (c, r) in at if (c, r + 1) in at]
    return across, down


@pytest.mark.parametrize("ra, dec", [(21.6417, 57.5), (0.02, 10.0), (12.0, -30.0), (3.0, 89.6), (7.0, 90.0),
                                     (18.0, -89.8)])
@pytest.mark.parametrize("rotation", [0.0, 33.0, 90.0])
def test_adjacent_panels_are_a_field_of_view_less_the_overlap_apart(ra, dec, rotation):
    spec = MosaicSpec(columns=3, rows=2, overlap_percent=20, rotation_deg=rotation)
    panels = plan_panels("T", ra, dec, spec, FOV)
    assert [p.name for p in panels] == ["T P1-1", "T P2-1", "T P3-1", "T P1-2", "T P2-2", "T P3-2"]
    across, down = _neighbours(panels, spec)
    for a, b in across:
        assert sky(a).separation(sky(b)).deg == pytest.approx(FOV.width_deg * 0.8, rel=2e-3)
    for a, b in down:
        assert sky(a).separation(sky(b)).deg == pytest.approx(FOV.height_deg * 0.8, rel=2e-3)
    # The grid is centred on the target: opposite panels are symmetric about it.
    centre = SkyCoord(ra=ra * 15 * u.deg, dec=dec * u.deg)
    assert sky(panels[0]).separation(centre).deg == pytest.approx(sky(panels[5]).separation(centre).deg, rel=1e-6)
    for p in panels:
        assert 0 <= p.ra_j2000 < 24 and -90 <= p.dec_j2000 <= 90


def test_orientation_follows_the_position_angle():
    """Rotation 0: column 1 is east (columns run west), row 1 north (rows run south); the grid's
    'up' axis points to ``rotation_deg`` east of north. Measured from the centre (a 1×3 and a 3×1
    grid, whose middle panel is the target): away from it, meridians converge."""
    centre = SkyCoord(ra=21.6417 * 15 * u.deg, dec=57.5 * u.deg)
    for rotation in (0.0, 45.0, 300.0):
        column = plan_panels("IC1396", 21.6417, 57.5, MosaicSpec(1, 3, 10, rotation), FOV)
        row = plan_panels("IC1396", 21.6417, 57.5, MosaicSpec(3, 1, 10, rotation), FOV)
        assert sky(column[1]).separation(centre).arcsec < 1e-6 and sky(row[1]).separation(centre).arcsec < 1e-6
        up = centre.position_angle(sky(column[0])).deg  # towards row 1
        right = centre.position_angle(sky(row[2])).deg  # towards column 3
        assert _angle(up - rotation) == pytest.approx(0, abs=1e-6)
        assert _angle(right - (rotation + 270)) == pytest.approx(0, abs=1e-6)


def _angle(deg: float) -> float:
    """``deg`` folded into −180…180."""
    return (deg + 180) % 360 - 180


def test_near_the_pole_ra_arithmetic_would_be_wrong_but_the_layout_is_not():
    """At Dec +89.5° a 2.3° step spans hours of RA (a step divided by cos Dec would be meaningless):
    the panels surround the pole, and their mutual separations still equal the step."""
    panels = plan_panels("NCP", 2.5, 89.5, MosaicSpec(2, 2, 10, 0), FOV)
    across, down = _neighbours(panels, MosaicSpec(2, 2))
    for a, b in across:
        assert sky(a).separation(sky(b)).deg == pytest.approx(FOV.width_deg * 0.9, rel=2e-3)
    for a, b in down:
        assert sky(a).separation(sky(b)).deg == pytest.approx(FOV.height_deg * 0.9, rel=2e-3)
    assert max(p.ra_j2000 for p in panels) - min(p.ra_j2000 for p in panels) > 3  # hours apart on the sky
    # The northern row lies beyond the pole: its declinations are below the centre's 89.5° and its
    # RA about 12 h away, while every panel stays half a diagonal step from the centre.
    assert all(p.dec_j2000 < 89.5 for p in panels[:2])
    assert all(abs(_angle((p.ra_j2000 - 2.5) * 15)) > 90 for p in panels[:2])
    centre = SkyCoord(ra=2.5 * 15 * u.deg, dec=89.5 * u.deg)
    half_diagonal = math.hypot(FOV.width_deg, FOV.height_deg) * 0.9 / 2
    for p in panels:
        assert sky(p).separation(centre).deg == pytest.approx(half_diagonal, rel=2e-3)


def test_bad_layouts_are_refused():
    for spec in (MosaicSpec(6, 6), MosaicSpec(0, 2), MosaicSpec(2, 2, 80), MosaicSpec(2, 2, -1)):
        with pytest.raises(ValueError):
            plan_panels("T", 1.0, 1.0, spec, FieldOfView(1.0, 1.0))


def test_one_by_one_is_the_target_itself():
    (p,) = plan_panels("M42", 5.588, -5.39, MosaicSpec(1, 1, 10, 0), FOV)
    assert p.name == "M42 P1-1" and sky(p).separation(SkyCoord(ra=5.588 * 15 * u.deg, dec=-5.39 * u.deg)).arcsec < 1e-6


def test_gate_refuses_mosaics_below_quasar_naming_it():
    for plan in ("stardust", "nebula", None):
        with pytest.raises(PlanViolation) as info:
            gate(plan, OrderConstraints(mosaic_panels=4))
        assert info.value.fields["mosaic"] == "mosaics need Quasar"
    assert gate("quasar", OrderConstraints(priority=4, mosaic_panels=4)).priority == 4
