"""A frame's FITS header in a few lines for the gallery (astropy), read where the API serves the
file from (``api.services.files.fits_file``)."""

from __future__ import annotations

import asyncio

from astropy.io import fits

from api.errors import NotFound
from api.services.files import fits_file
from core.settings import Settings
from models.db import ShotDone

#: The header cards a customer looks at first (FITS standard and the usual acquisition keywords).
SUMMARY_KEYS = ("OBJECT", "DATE-OBS", "EXPTIME", "FILTER", "NAXIS1", "NAXIS2", "XBINNING", "OBJCTRA", "OBJCTDEC")


def _read(path) -> dict[str, str]:
    header = fits.getheader(path)
    return {k: str(header[k]).strip() for k in SUMMARY_KEYS if k in header}


async def header_summary(settings: Settings, row: ShotDone) -> dict[str, str] | str:
    """The summary cards, or the API's reason when the file cannot be read here."""
    try:
        path = fits_file(settings, row)
        return await asyncio.to_thread(_read, path)
    except NotFound as exc:
        return exc.message
    except OSError as exc:
        return f"unreadable FITS file: {exc}"
