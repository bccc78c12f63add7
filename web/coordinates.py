"""RA/Dec typed by a person → J2000 hours and degrees, with astropy's angle parser.

Right ascension: sexagesimal hours (``05h35m17.3s``, ``5:35:17.3``, ``5 35 17.3``) or decimal
degrees (``83.82``); declination: sexagesimal or decimal degrees (``-05d23m28s``, ``-5:23:28``,
``-5.391``). Errors are per field (``ra_j2000``, ``dec_j2000``), for the form to show beside it.
"""

from __future__ import annotations

import re

import astropy.units as u
from astropy.coordinates import Angle
from astropy.coordinates.angles.errors import RangeError

_SEXAGESIMAL = re.compile(r"[hms:\s°'\"d]", re.IGNORECASE)


def parse_ra(text: str) -> float:
    """Hours 0 ≤ ra < 24. Sexagesimal input is hours, a plain number degrees (0 ≤ deg < 360).
    Raises ValueError with a message for the person."""
    text = text.strip()
    try:
        angle = Angle(text, unit=u.hourangle) if _SEXAGESIMAL.search(text) else Angle(float(text), unit=u.deg)
    except RangeError:  # e.g. 25h: astropy refuses hours ≥ 24 (or minutes/seconds ≥ 60)
        raise ValueError("right ascension must be 0–24 h (0–360°)") from None
    except (ValueError, u.UnitsError):
        raise ValueError("not a right ascension: use 05h35m17s, 5:35:17 or degrees (83.8)") from None
    hours = float(angle.hour)
    if not 0 <= hours < 24:
        raise ValueError("right ascension must be 0–24 h (0–360°)")
    return hours


def parse_dec(text: str) -> float:
    """Degrees −90…90, sexagesimal or decimal. Raises ValueError with a message for the person."""
    text = text.strip()
    try:
        angle = Angle(text, unit=u.deg)
    except RangeError:
        raise ValueError("declination must be between −90° and +90°") from None
    except (ValueError, u.UnitsError):
        raise ValueError("not a declination: use -05d23m28s, -5:23:28 or degrees (-5.39)") from None
    deg = float(angle.deg)
    if not -90 <= deg <= 90:
        raise ValueError("declination must be between −90° and +90°")
    return deg


def parse_ra_dec(ra: str, dec: str) -> tuple[float | None, float | None, dict[str, str]]:
    """(ra hours, dec degrees, errors by field); both empty → (None, None, {}): the catalogue."""
    if not ra.strip() and not dec.strip():
        return None, None, {}
    errors: dict[str, str] = {}
    out: list[float | None] = []
    for name, text, parse in (("ra_j2000", ra, parse_ra), ("dec_j2000", dec, parse_dec)):
        if not text.strip():
            errors[name] = "give both right ascension and declination, or neither"
            out.append(None)
            continue
        try:
            out.append(parse(text))
        except ValueError as exc:
            errors[name] = str(exc)
            out.append(None)
    return out[0], out[1], errors
