"""Target name → J2000 coordinates, offline, from the OpenNGC catalogue shipped with ``pyongc``.

Covers Messier (``M42``), NGC (``NGC 7000``, ``NGC7000``) and IC (``IC1396``) designations and the
other OpenNGC identifiers pyongc accepts; case and spaces are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pyongc import ongc

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9 +\-_.]{0,39}$")


@dataclass(frozen=True)
class CatalogEntry:
    """``name``: OpenNGC designation (``NGC1976`` for M42); ``ra_j2000``: hours 0–24;
    ``dec_j2000``: degrees −90…90; ``object_type``: e.g. "HII Ionized region"."""

    name: str
    ra_j2000: float
    dec_j2000: float
    object_type: str


class UnknownTarget(LookupError):
    """The name is not in the catalogue (or has no coordinates there)."""


def _sexagesimal(text: str) -> float:
    """``"+44:31:43.6"`` → 44.5288…; the sign applies to the whole value (``-00:30`` is −0.5)."""
    text = text.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    parts = [float(p) for p in text.lstrip("+-").split(":")]
    value = 0.0
    for i, p in enumerate(parts):
        value += p / (60.0**i)
    return sign * value


@lru_cache(maxsize=4096)
def resolve(name: str) -> CatalogEntry:
    """Look ``name`` up. Raises UnknownTarget."""
    compact = re.sub(r"\s+", "", name or "")
    if not _NAME.match(name.strip() if name else "") or not compact:
        raise UnknownTarget(f"{name!r} is not a catalogue designation (e.g. M42, NGC 7000, IC1396)")
    try:
        obj = ongc.get(compact)
    except Exception as exc:  # noqa: BLE001 - pyongc raises ValueError/sqlite errors on odd names
        raise UnknownTarget(f"{name!r} is not in the catalogue: {exc}") from None
    if obj is None:
        raise UnknownTarget(f"{name!r} is not in the OpenNGC catalogue (Messier, NGC, IC)")
    try:
        ra = _sexagesimal(obj.ra)
        dec = _sexagesimal(obj.dec)
    except (ValueError, TypeError, AttributeError):
        raise UnknownTarget(f"{name!r} ({obj.name}) has no coordinates in the catalogue") from None
    if not (0.0 <= ra < 24.0 and -90.0 <= dec <= 90.0):
        raise UnknownTarget(f"{name!r} ({obj.name}) has invalid catalogue coordinates")
    return CatalogEntry(name=obj.name, ra_j2000=ra, dec_j2000=dec, object_type=str(obj.type))
