"""Synthetic frames: quality from a seeing model, a star field rendered to FITS and JPG.

Quality (docs/voyager-protocol.md §7 shot-done fields): ``hfd`` (px) = seeing FWHM × airmass^0.6 over the
pixel scale, blurred by guiding; ``starindex`` = detected stars, falling with HFD and rising with
exposure; ``min``/``max``/``mean`` (ADU) from bias + sky (brighter with the moon up, darker through
narrow-band filters). The field of a target is fixed (seeded by its GUID) and dithered a few pixels
per frame; star sizes follow the frame's HFD. Everything is seeded, so a seed gives the same frames.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from astropy.io import fits
from PIL import Image

from voyager.simulator.sky import airmass as sky_airmass

BIAS = 1000.0
SATURATION = 65535.0
NARROW_BAND = {"Ha", "OIII", "SII"}
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def seeded_rng(*parts: object) -> np.random.Generator:
    """A numpy generator seeded from ``parts`` (stable across processes, unlike ``hash()``)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


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
) -> Quality:
    """Quality of one frame. ``exposure``: s; ``pixel_scale``: arcsec/px unbinned."""
    airmass = sky_airmass(alt_deg)
    seeing_px = fwhm_arcsec * airmass**0.6 / (pixel_scale * max(binning, 1))
    hfd = math.sqrt(seeing_px**2 + 0.8**2)  # + guiding/focus blur
    narrow = filter_name in NARROW_BAND
    sky_rate = (0.12 if narrow else 1.6) * (1.0 + 4.0 * max(0.0, math.sin(math.radians(moon_alt_deg))))
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


def render(spec: FrameSpec, width: int, height: int, pixel_scale: float, jpg_quality: int) -> bytes:
    """Write the FITS and JPG of ``spec``; returns the JPG bytes. Runs in a worker thread."""
    image = _star_field(spec, width, height)
    _write_fits(spec, image, pixel_scale)
    jpg = _jpg(image, BIAS + spec.quality.sky, _noise_sigma(spec.quality), jpg_quality)
    spec.jpg_path.parent.mkdir(parents=True, exist_ok=True)
    spec.jpg_path.write_bytes(jpg)
    return jpg


def _star_field(spec: FrameSpec, width: int, height: int) -> np.ndarray:
    q = spec.quality
    field = seeded_rng("field", spec.target_guid)  # same stars in every frame of a target
    n = int(min(max(q.starindex, 10), 900))
    xs = field.uniform(-20, width + 20, 900)[:n]
    ys = field.uniform(-20, height + 20, 900)[:n]
    flux = (field.pareto(1.3, 900)[:n] + 1.0) * 6.0 * q.sky**0.5 + 150.0
    frame = seeded_rng("frame", spec.target_guid, spec.frame_number)
    dx, dy = frame.normal(0, 3, 2)  # dithering
    image = frame.standard_normal((height, width), dtype=np.float32)
    image *= np.float32(_noise_sigma(q))
    image += np.float32(BIAS + q.sky)
    sigma = max(q.hfd / 2.3548, 0.4)  # a Gaussian's HFD equals its FWHM
    r = int(math.ceil(4 * sigma)) + 1
    offs = np.arange(-r, r + 1, dtype=np.float32)
    for x, y, f in zip(xs + dx, ys + dy, flux, strict=True):
        ix, iy = int(round(x)), int(round(y))
        x0, x1, y0, y1 = max(ix - r, 0), min(ix + r + 1, width), max(iy - r, 0), min(iy + r + 1, height)
        if x0 >= x1 or y0 >= y1:
            continue
        gx = np.exp(-0.5 * ((offs[x0 - ix + r : x1 - ix + r] + ix - x) / sigma) ** 2)
        gy = np.exp(-0.5 * ((offs[y0 - iy + r : y1 - iy + r] + iy - y) / sigma) ** 2)
        peak = f * spec.exposure / 60.0 / (2 * math.pi * sigma**2)
        image[y0:y1, x0:x1] += np.outer(gy, gx).astype(np.float32) * np.float32(peak * 60.0)
    return np.clip(image, 0, SATURATION)


def _write_fits(spec: FrameSpec, image: np.ndarray, pixel_scale: float) -> None:
    hdu = fits.PrimaryHDU(image.astype(np.uint16))
    h = hdu.header
    h["OBJECT"] = spec.target_name
    h["EXPTIME"] = (float(spec.exposure), "seconds")
    h["FILTER"] = spec.filter_name
    h["RA"] = (round(spec.ra_hours * 15.0, 6), "J2000 degrees")
    h["DEC"] = (round(spec.dec_deg, 6), "J2000 degrees")
    h["OBJCTRA"] = _sexagesimal(spec.ra_hours, " ")
    h["OBJCTDEC"] = _sexagesimal(spec.dec_deg, " ", signed=True)
    h["DATE-OBS"] = datetime.fromtimestamp(spec.taken_at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    h["XBINNING"] = spec.binning
    h["YBINNING"] = spec.binning
    h["IMAGETYP"] = "Light Frame"
    h["PIXSCALE"] = (pixel_scale * spec.binning, "arcsec/px")
    h["HFD"] = (spec.quality.hfd, "px, simulated")
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
