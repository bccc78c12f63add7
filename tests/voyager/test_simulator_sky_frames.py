"""Frames of the real sky: catalogue stars where the FITS WCS says, the WCS centred on the target.

Renders M45 (a 2° field, the whole cluster) and M42 (the default 15′ field) with the simulator's
renderer into real FITS/JPG files, then reads them back as any astronomy tool would (astropy.wcs).
"""

from __future__ import annotations

import math
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image

from api.catalog import resolve
from voyager.simulator import frames, starfield

#: (target, arcsec/px, camera PA in degrees): M45 needs a wide field to hold the cluster.
CASES = [("M45", 9.0, 0.0), ("M42", 1.1, 0.0), ("M42", 1.1, 37.0)]


def render(tmp_path: Path, name: str, scale: float, pa: float, width: int = 800, height: int = 600) -> Path:
    entry = resolve(name)
    q = frames.frame_quality(2.2, 55.0, -20.0, 60.0, "L", 1, scale, np.random.default_rng(3),
                             sun_alt_deg=-30.0, moon_illumination=0.2)
    spec = frames.FrameSpec("guid-" + name, name, entry.ra_j2000, entry.dec_j2000, "L", 60.0, 1, q, 1.7685e9,
                            tmp_path / f"{name}.fit", tmp_path / f"{name}.jpg", 1, pa_deg=pa, airmass=1.22,
                            site=(43.9308, 5.7133, 650.0))
    rendered = frames.render(spec, width, height, scale, 90)
    assert rendered.starindex > 3 and rendered.jpg[:2] == b"\xff\xd8"
    return spec.fit_path


def peak_near(image: np.ndarray, x: float, y: float, box: int = 6) -> tuple[float, float, float]:
    """Centre of the brightest pixels (≥ 90 % of the local maximum, so a saturated core counts as
    one peak) in a box around (x, y); → (x, y, local maximum)."""
    ix, iy = int(round(x)), int(round(y))
    x0, y0 = max(ix - box, 0), max(iy - box, 0)
    cut = image[y0 : iy + box + 1, x0 : ix + box + 1]
    yy, xx = np.nonzero(cut >= 0.9 * cut.max())
    return float(xx.mean() + x0), float(yy.mean() + y0), float(cut.max())


@pytest.mark.parametrize(("name", "scale", "pa"), CASES)
def test_catalogue_stars_lie_on_brightness_peaks_at_their_wcs_position(tmp_path, name, scale, pa):
    path = render(tmp_path, name, scale, pa)
    with fits.open(path) as hdul:
        image = hdul[0].data.astype(float)
        header = hdul[0].header
    wcs = WCS(header)
    assert header["CTYPE1"] == "RA---TAN" and header["CTYPE2"] == "DEC--TAN"
    assert {"CRVAL1", "CRPIX1", "CD1_1", "CD2_2", "DATE-OBS", "EXPTIME", "FILTER", "OBJECT", "AIRMASS",
            "SITELAT", "SITELONG", "SITEELEV"} <= set(header)
    assert header["OBJECT"] == name and header["FILTER"] == "L" and header["EXPTIME"] == 60.0
    # Pixel scale and camera angle as configured.
    assert math.hypot(header["CD1_1"], header["CD2_1"]) * 3600 == pytest.approx(scale, rel=1e-6)
    assert math.degrees(math.atan2(header["CD2_1"], header["CD2_2"])) == pytest.approx(pa, abs=1e-6)

    entry = resolve(name)
    target = SkyCoord(entry.ra_j2000 * 15 * u.deg, entry.dec_j2000 * u.deg)
    h, w = image.shape
    centre = wcs.pixel_to_world((w - 1) / 2, (h - 1) / 2)
    assert centre.separation(target).arcsec < 5.0

    stars = starfield.catalogue_stars(target.ra.deg, target.dec.deg, 3.0, 9.0)
    x, y = wcs.world_to_pixel(SkyCoord(stars.ra * u.deg, stars.dec * u.deg))
    inside = (x >= 2) & (x < w - 2) & (y >= 2) & (y < h - 2)
    assert inside.sum() >= (20 if name == "M45" else 3)
    noise = float(np.std(image[:40, :40]))
    for xi, yi, mag in zip(x[inside], y[inside], stars.mag[inside], strict=True):
        px, py, top = peak_near(image, xi, yi)
        assert math.hypot(px - xi, py - yi) <= 2.0, (mag, xi, yi, px, py)
        assert top > float(np.median(image)) + 20 * noise, (mag, top)


def test_the_jpg_is_the_same_frame_stretched_and_the_faint_field_repeats(tmp_path):
    path = render(tmp_path, "M45", 9.0, 0.0)
    data = fits.getdata(path).astype(float)
    jpg = np.asarray(Image.open(path.with_suffix(".jpg")), dtype=float)
    assert jpg.shape == data.shape
    # Same image: the JPG's bright pixels are the FITS's bright pixels.
    bright = data > np.percentile(data, 99.5)
    assert jpg[bright].mean() > jpg[~bright].mean() + 100
    # Faint stars belong to the sky, not to the frame: two pointings that overlap share them.
    a = starfield.synthetic_stars(56.87, 24.1, 0.5)
    b = starfield.synthetic_stars(57.2, 24.3, 0.5)

    def around(s: starfield.Stars) -> set[tuple[float, float]]:
        near = SkyCoord(s.ra * u.deg, s.dec * u.deg).separation(SkyCoord(57.0 * u.deg, 24.2 * u.deg)).deg < 0.15
        return set(zip(s.ra[near].round(8), s.dec[near].round(8), strict=True))

    assert len(around(a)) > 50 and around(a) == around(b)


def test_nebulae_get_their_opengc_shape_and_clusters_do_not():
    m42 = starfield.extended_shape("M42")
    assert m42 is not None and (m42.major, m42.minor) == (90.0, 60.0)
    m31 = starfield.extended_shape("M31")
    assert m31 is not None and m31.pa == 35.0 and m31.major > m31.minor
    assert starfield.extended_shape("M45") is None  # an open cluster: its stars only
    assert starfield.extended_shape("not-a-target") is None
