"""Synthetic frames: quality from a seeing model, the real sky rendered to FITS and JPG.

Quality (Voyager protocol §7 shot-done fields): ``hfd`` (px) = seeing FWHM × airmass^0.6 over the
pixel scale, blurred by guiding; ``min``/``max``/``mean`` (ADU) from bias + sky, the sky brighter in
twilight and with the moon up (by its altitude and phase) and darker through narrow-band filters.

The frame (``render``): the sky around the pointing (``starfield.py``: Hipparcos stars at their
catalogue positions, deterministic faint stars, the target's OpenNGC shape) projected through a TAN
WCS of the telescope's pixel scale and position angle, dithered by at most 2″ per frame; stars are
Gaussians whose FWHM is the frame's HFD (for a Gaussian the two are equal), and ``starindex`` is the
number of stars bright enough to detect. The FITS carries that WCS (``CTYPE``/``CRVAL``/``CRPIX``/
``CD``), ``DATE-OBS``, ``EXPTIME``, ``FILTER``, ``OBJECT``, ``AIRMASS`` and site keywords; the JPG is
the same image stretched. Noise is seeded, so a seed gives the same frames.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image

from voyager.simulator.sky import airmass as sky_airmass
from voyager.simulator import starfield
from voyager.simulator.starfield import seeded_rng  # noqa: F401 - re-exported: scheduler and telemetry use frames.seeded_rng

BIAS = 1000.0
SATURATION = 65535.0
#: Magnitude giving 1 ADU per second in a broadband filter (unbinned).
ZERO_POINT = 20.0
#: Stars brighter than this magnitude get a halo holding HALO_FRACTION of their light.
HALO_MAG, HALO_FRACTION = 10.0, 0.03
NARROW_BAND = {"Ha", "OIII", "SII"}
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Quality:
    """One frame's quality: ``hfd`` px, ``starindex`` stars, ``min``/``max``/``mean`` ADU."""

    hfd: float
    starindex: int
    min: float
    max: float
    mean: float
    sky: float  # ADU of sky background above bias


class SeeingModel:
    """Seeing in arcsec: a per-night median (log-normal around ``median``), a slow drift and jitter."""

    def __init__(self, median: float, seed: int | None) -> None:
        self.median = median
        self.seed = seed if seed is not None else int.from_bytes(np.random.default_rng().bytes(4), "big")

    def night_median(self, night_date: str) -> float:
        return self.median * float(np.exp(seeded_rng(self.seed, "night", night_date).normal(0.0, 0.25)))

    def fwhm(self, night_date: str, t: float, rng: np.random.Generator) -> float:
        phase = float(seeded_rng(self.seed, "phase", night_date).uniform(0, 2 * math.pi))
        drift = 1.0 + 0.15 * math.sin(2 * math.pi * t / 8280.0 + phase)  # ~2.3 h turbulence cycle
        return self.night_median(night_date) * drift * float(np.exp(rng.normal(0.0, 0.08)))


def frame_quality(
    fwhm_arcsec: float,
    alt_deg: float,
    moon_alt_deg: float,
    exposure: float,
    filter_name: str,
    binning: int,
    pixel_scale: float,
    rng: np.random.Generator,
    *,
    sun_alt_deg: float = -90.0,
    moon_illumination: float = 0.5,
) -> Quality:
    """Quality of one frame. ``exposure``: s; ``pixel_scale``: arcsec/px unbinned; ``sun_alt_deg``:
    degrees (twilight brightens the sky above −19°); ``moon_illumination``: lit fraction 0–1."""
    airmass = sky_airmass(alt_deg)
    seeing_px = fwhm_arcsec * airmass**0.6 / (pixel_scale * max(binning, 1))
    hfd = math.sqrt(seeing_px**2 + 0.8**2)  # + guiding/focus blur
    narrow = filter_name in NARROW_BAND
    moon = 8.0 * moon_illumination * max(0.0, math.sin(math.radians(moon_alt_deg)))
    twilight = 10.0 ** (0.28 * max(0.0, sun_alt_deg + 19.0)) - 1.0  # ≈ ×90 at nautical twilight
    sky_rate = (0.12 if narrow else 1.6) * (1.0 + moon + twilight)
    sky = sky_rate * exposure * airmass**0.5 * max(binning, 1) ** 2
    stars = 450.0 * (exposure / 120.0) ** 0.35 * (2.8 / hfd) ** 1.2 * (0.45 if narrow else 1.0)
    starindex = max(3, int(stars * float(np.exp(rng.normal(0.0, 0.1)))))
    noise = math.sqrt(max(sky, 1.0)) + 8.0
    brightest = 4e4 * exposure / 60.0 * (0.1 if narrow else 1.0)
    return Quality(
        hfd=round(hfd, 2),
        starindex=starindex,
        min=round(max(0.0, BIAS + sky - 5.0 * noise), 1),
        max=round(min(SATURATION, BIAS + sky + brightest / max(hfd, 1.0) ** 2), 1),
        mean=round(BIAS + sky + 0.02 * brightest / max(hfd, 1.0) ** 2 + float(rng.normal(0, 0.5)), 1),
        sky=sky,
    )


def moon_illumination(t: float) -> float:
    """Lit fraction of the moon (0 new … 1 full) at ``t`` (epoch s), from the sun–moon elongation;
    computed once per hour (the phase hardly moves in an hour)."""
    return _moon_illumination_at_hour(int(t // 3600))


@lru_cache(maxsize=256)
def _moon_illumination_at_hour(hour: int) -> float:
    from astropy.coordinates import get_body, get_sun
    from astropy.time import Time

    when = Time(hour * 3600.0 + 1800.0, format="unix", scale="utc")
    elongation = get_sun(when).separation(get_body("moon", when)).rad
    return float((1.0 - math.cos(elongation)) / 2.0)


def safe_name(text: str) -> str:
    return _SAFE.sub("_", text).strip("_") or "target"


@dataclass
class FrameSpec:
    """What to render: target, filter, exposure (s), bin, quality, time (epoch s), files to write."""

    target_guid: str
    target_name: str
    ra_hours: float
    dec_deg: float
    filter_name: str
    exposure: float
    binning: int
    quality: Quality
    taken_at: float
    fit_path: Path
    jpg_path: Path
    frame_number: int
    pa_deg: float = 0.0  # camera position angle, degrees east of north
    airmass: float | None = None
    site: tuple[float, float, float] | None = None  # latitude, longitude (degrees, east +), elevation (m)


@dataclass(frozen=True)
class Rendered:
    """A rendered frame: the JPG bytes and ``starindex``, the stars in it bright enough to detect
    (peak ≥ 5 σ of the noise), which replaces the quality model's estimate."""

    jpg: bytes
    starindex: int


def frame_wcs(spec: FrameSpec, width: int, height: int, pixel_scale: float) -> WCS:
    """The frame's TAN WCS: centred on the pointing (the target plus this frame's dither, ≤ 2″),
    ``pixel_scale`` arcsec/px × binning, ``spec.pa_deg`` the camera's position angle (degrees
    from north through east of the image's +y axis)."""
    rng = seeded_rng("frame", spec.target_guid, spec.frame_number)
    d_ra, d_dec = np.clip(rng.normal(0.0, 0.8, 2), -1.4, 1.4) / 3600.0  # dither, degrees
    dec = float(np.clip(spec.dec_deg + d_dec, -90.0, 90.0))
    ra = (spec.ra_hours * 15.0 + d_ra / max(math.cos(math.radians(dec)), 1e-6)) % 360.0
    scale = pixel_scale * max(spec.binning, 1) / 3600.0
    pa = math.radians(spec.pa_deg)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(width + 1) / 2.0, (height + 1) / 2.0]
    # East to the left (−x) when PA = 0, as a camera on the sky sees it.
    w.wcs.cd = np.array([[-scale * math.cos(pa), scale * math.sin(pa)], [scale * math.sin(pa), scale * math.cos(pa)]])
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    return w


def render(spec: FrameSpec, width: int, height: int, pixel_scale: float, jpg_quality: int) -> Rendered:
    """Write the FITS and JPG of ``spec`` (the JPG is the same frame stretched). Runs in a worker
    thread; the first call also loads the star catalogue (~0.3 s)."""
    wcs = frame_wcs(spec, width, height, pixel_scale)
    image, detected = _sky_image(spec, wcs, width, height, pixel_scale)
    _write_fits(spec, image, pixel_scale, wcs)
    jpg = _jpg(image, BIAS + spec.quality.sky, _noise_sigma(spec.quality), jpg_quality)
    spec.jpg_path.parent.mkdir(parents=True, exist_ok=True)
    spec.jpg_path.write_bytes(jpg)
    return Rendered(jpg, detected)


def star_flux(mag: np.ndarray, spec: FrameSpec) -> np.ndarray:
    """Total ADU of a star of magnitude ``mag`` in this frame (1 ADU/s at ZERO_POINT, ×bin²)."""
    band = 0.08 if spec.filter_name in NARROW_BAND else 1.0
    return 10.0 ** (-0.4 * (mag - ZERO_POINT)) * spec.exposure * band * max(spec.binning, 1) ** 2


def _sky_image(spec: FrameSpec, wcs: WCS, width: int, height: int, pixel_scale: float) -> tuple[np.ndarray, int]:
    q = spec.quality
    frame = seeded_rng("frame", spec.target_guid, spec.frame_number)
    sigma_noise = _noise_sigma(q)
    image = frame.standard_normal((height, width), dtype=np.float32)
    image *= np.float32(sigma_noise)
    image += np.float32(BIAS + q.sky)
    _add_extended(image, spec, wcs, pixel_scale)
    # Every star whose light can reach the frame: the half-diagonal plus a margin.
    ra0, dec0 = (float(v) for v in wcs.wcs.crval)
    radius = math.hypot(width, height) / 2.0 * pixel_scale * max(spec.binning, 1) / 3600.0 * 1.05 + 0.01
    bright = starfield.catalogue_stars(ra0, dec0, radius, starfield.FAINT_MIN)
    faint = starfield.synthetic_stars(ra0, dec0, radius)
    ra = np.concatenate([bright.ra, faint.ra])
    dec = np.concatenate([bright.dec, faint.dec])
    mag = np.concatenate([bright.mag, faint.mag])
    x, y = wcs.wcs_world2pix(ra, dec, 0)
    sigma = max(q.hfd / 2.3548, 0.4)  # a Gaussian's HFD equals its FWHM
    flux = star_flux(mag, spec)
    peak = flux / (2 * math.pi * sigma**2)
    inside = (x > -4 * sigma) & (x < width + 4 * sigma) & (y > -4 * sigma) & (y < height + 4 * sigma) & (peak > 0.3 * sigma_noise)
    detected = int(np.count_nonzero(inside & (peak >= 5 * sigma_noise) & (x >= 0) & (x < width) & (y >= 0) & (y < height)))
    r = int(math.ceil(4 * sigma)) + 1
    offs = np.arange(-r, r + 1, dtype=np.float32)
    for xi, yi, pk in zip(x[inside], y[inside], peak[inside], strict=True):
        _add_gaussian(image, xi, yi, sigma, pk, r, offs)
    # Bright stars bloom (scattered light in the optics): a wide halo with a few % of the flux, so a
    # bright star looks bigger than a faint one, as on a real frame. Centred, so positions hold.
    for xi, yi, m, f in zip(x, y, mag, flux, strict=True):
        if m >= HALO_MAG:
            continue
        halo = 2.0 * sigma + 1.2 * (HALO_MAG - m)
        rh = int(math.ceil(3 * halo)) + 1
        _add_gaussian(image, xi, yi, halo, HALO_FRACTION * f / (2 * math.pi * halo**2), rh,
                      np.arange(-rh, rh + 1, dtype=np.float32))
    return np.clip(image, 0, SATURATION), max(detected, 1)


def _add_gaussian(image: np.ndarray, x: float, y: float, sigma: float, peak: float, r: int, offs: np.ndarray) -> None:
    """Add a circular Gaussian (``sigma`` px, ``peak`` ADU) centred on (``x``, ``y``), clipped to the image."""
    height, width = image.shape
    ix, iy = int(round(x)), int(round(y))
    x0, x1, y0, y1 = max(ix - r, 0), min(ix + r + 1, width), max(iy - r, 0), min(iy + r + 1, height)
    if x0 >= x1 or y0 >= y1:
        return
    gx = np.exp(-0.5 * ((offs[x0 - ix + r : x1 - ix + r] + ix - x) / sigma) ** 2)
    gy = np.exp(-0.5 * ((offs[y0 - iy + r : y1 - iy + r] + iy - y) / sigma) ** 2)
    image[y0:y1, x0:x1] += np.outer(gy, gx).astype(np.float32) * np.float32(peak)


def _add_extended(image: np.ndarray, spec: FrameSpec, wcs: WCS, pixel_scale: float) -> None:
    """The target's diffuse light: an elliptical exponential profile of OpenNGC's axes and PA."""
    shape = starfield.extended_shape(spec.target_name)
    if shape is None:
        return
    height, width = image.shape
    cx, cy = (float(v[0]) for v in wcs.wcs_world2pix([spec.ra_hours * 15.0], [spec.dec_deg], 0))
    scale = pixel_scale * max(spec.binning, 1) / 60.0  # arcmin per px
    a = max(shape.major / 2.0 / scale, 1.0)
    b = max(shape.minor / 2.0 / scale, 1.0)
    # Sky PA (east of north) → image angle, through the WCS: north and east as pixel directions.
    cd = wcs.wcs.cd
    north = np.array([cd[1, 1], -cd[0, 1]])
    east = np.array([-cd[1, 0], cd[0, 0]])
    pa = math.radians(shape.pa)
    axis = north * math.cos(pa) + east * math.sin(pa)
    axis /= np.linalg.norm(axis)
    # A row and a column broadcast, not two full pixel grids (np.mgrid builds them in float64):
    # the same float32 values, a third less work per frame.
    dx = np.arange(width, dtype=np.float32)[np.newaxis, :] - np.float32(cx)
    dy = np.arange(height, dtype=np.float32)[:, np.newaxis] - np.float32(cy)
    u = dx * np.float32(axis[0]) + dy * np.float32(axis[1])
    v = -dx * np.float32(axis[1]) + dy * np.float32(axis[0])
    r = np.sqrt((u / np.float32(a)) ** 2 + (v / np.float32(b)) ** 2)
    narrow = spec.filter_name in NARROW_BAND
    galaxy = "galaxy" in starfield.object_type(spec.target_name)
    rate = (0.3 if galaxy else 3.0) if narrow else (4.0 if galaxy else 8.0)  # ADU/px/s at the centre
    light = np.exp(-5.0 * r) * np.float32(rate * spec.exposure * max(spec.binning, 1) ** 2)
    # The nebula's own photon noise (the sky's is already in the image).
    noise = seeded_rng("nebula", spec.target_guid, spec.frame_number).standard_normal(light.shape, dtype=np.float32)
    image += light + noise * np.sqrt(light)


def _write_fits(spec: FrameSpec, image: np.ndarray, pixel_scale: float, wcs: WCS) -> None:
    hdu = fits.PrimaryHDU(image.astype(np.uint16))
    h = hdu.header
    h.update(wcs.to_header())
    # astropy writes PCi_j + CDELTi; plate solvers and viewers also read the classic CDi_j form.
    for key in ("CDELT1", "CDELT2", "PC1_1", "PC1_2", "PC2_1", "PC2_2"):
        h.remove(key, ignore_missing=True)
    for i in range(2):
        for j in range(2):
            h[f"CD{i + 1}_{j + 1}"] = (float(wcs.wcs.cd[i, j]), "degrees per pixel")
    h["OBJECT"] = spec.target_name
    h["EXPTIME"] = (float(spec.exposure), "seconds")
    h["EXPOSURE"] = (float(spec.exposure), "seconds")
    h["FILTER"] = spec.filter_name
    h["RA"] = (round(spec.ra_hours * 15.0, 6), "J2000 degrees, target")
    h["DEC"] = (round(spec.dec_deg, 6), "J2000 degrees, target")
    h["OBJCTRA"] = _sexagesimal(spec.ra_hours, " ")
    h["OBJCTDEC"] = _sexagesimal(spec.dec_deg, " ", signed=True)
    h["DATE-OBS"] = (datetime.fromtimestamp(spec.taken_at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3], "UTC, start")
    h["XBINNING"] = spec.binning
    h["YBINNING"] = spec.binning
    h["IMAGETYP"] = "Light Frame"
    h["PIXSCALE"] = (pixel_scale * spec.binning, "arcsec/px")
    h["HFD"] = (spec.quality.hfd, "px, simulated")
    if spec.airmass is not None:
        h["AIRMASS"] = (round(spec.airmass, 4), "at mid-exposure")
    if spec.site is not None:
        lat, lon, elev = spec.site
        h["SITELAT"] = (round(lat, 6), "degrees north")
        h["SITELONG"] = (round(lon, 6), "degrees east")
        h["SITEELEV"] = (round(elev, 1), "metres")
    if spec.pa_deg:
        h["PA"] = (round(spec.pa_deg, 3), "camera position angle, degrees E of N")
    h["INSTRUME"] = "Voyager simulator"
    spec.fit_path.parent.mkdir(parents=True, exist_ok=True)
    hdu.writeto(spec.fit_path, overwrite=True)


def _noise_sigma(q: Quality) -> float:
    return math.sqrt(max(q.sky, 1.0)) + 8.0  # sky shot noise + read noise, ADU


def _jpg(image: np.ndarray, background: float, sigma: float, quality: int) -> bytes:
    """Asinh stretch from the known background and noise (no median pass over the frame)."""
    scaled = (image - np.float32(background - 2 * sigma)) / np.float32(6 * sigma)
    stretched = np.arcsinh(np.clip(scaled, 0, None)) / np.float32(math.asinh(400.0))
    data = (np.clip(stretched, 0, 1) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(data, mode="L").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _sexagesimal(value: float, sep: str, signed: bool = False) -> str:
    sign = "-" if value < 0 else ("+" if signed else "")
    v = abs(value)
    d = int(v)
    m = int((v - d) * 60)
    s = (v - d - m / 60) * 3600
    return f"{sign}{d:02d}{sep}{m:02d}{sep}{s:05.2f}"
