"""A frame's FITS header in a few lines for the gallery (astropy), read where the API serves the
file from (``api.services.files.fits_file``): the first blocks of the object in the image store,
or the local file of a frame ingested before the store."""

from __future__ import annotations

import asyncio
import io

from astropy.io import fits

from api.errors import ApiError
from api.services.files import fits_file
from core.frame_store import frame_store
from core.object_store import ObjectStoreError
from core.settings import Settings
from models.db import ShotDone

#: The header cards a customer looks at first (FITS standard and the usual acquisition keywords).
SUMMARY_KEYS = ("OBJECT", "DATE-OBS", "EXPTIME", "FILTER", "NAXIS1", "NAXIS2", "XBINNING", "OBJCTRA", "OBJCTDEC")
#: Header bytes read from the store: 20 FITS blocks of 2880 bytes (720 cards) cover a camera's header.
HEADER_BYTES = 20 * 2880


def _summary(source) -> dict[str, str]:
    """``source``: a path or a binary file holding at least the primary header (the data may be cut
    off: only the header is parsed, so a head read from the store raises no truncation warning)."""
    header = fits.Header.fromfile(source)
    return {k: str(header[k]).strip() for k in SUMMARY_KEYS if k in header}


def _read_stored(settings: Settings, key: str) -> dict[str, str]:
    return _summary(io.BytesIO(frame_store(settings).get_head_bytes(key, HEADER_BYTES)))


async def header_summary(settings: Settings, row: ShotDone) -> dict[str, str] | str:
    """The summary cards, or the API's reason when the file cannot be read here."""
    try:
        f = await fits_file(settings, row)
        if f.key is not None:
            return await asyncio.to_thread(_read_stored, settings, f.key)
        return await asyncio.to_thread(_summary, f.path)
    except ApiError as exc:
        return exc.message
    except (OSError, ObjectStoreError) as exc:
        return f"unreadable FITS file: {exc}"
