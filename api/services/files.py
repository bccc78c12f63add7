"""A frame's files for download, or the API error that says why not (core/frame_files.py finds them).

JPG previews are ours (``images.jpg_dir``). FITS files are written by Voyager on its own machine;
the API serves them only when that FIT directory is reachable here (``images.fit_dir``). A frame
whose files retention deleted answers 410 Gone with the date (docs/operations.md §Retention).
"""

from __future__ import annotations

from pathlib import Path

from api.errors import Gone, NotFound
from core.frame_files import fits_path, jpg_path, tail_parts
from core.settings import Settings
from models.db import ShotDone


def _check_not_expired(row: ShotDone) -> None:
    if row.expired_at is not None:
        raise Gone(f"image {row.id}'s files were deleted on {row.expired_at.date().isoformat()} at the end of "
                   f"its retention period; its metadata is kept", code="image_expired")


def jpg_file(settings: Settings, row: ShotDone) -> Path:
    """Raises Gone (``image_expired``) or NotFound (``image_not_available``)."""
    _check_not_expired(row)
    if not row.jpg_path:
        raise NotFound(f"image {row.id} has no JPG preview", code="image_not_available")
    path = jpg_path(settings, row.jpg_path)
    if path is None:
        raise NotFound(f"the JPG preview of image {row.id} is missing on this host", code="image_not_available")
    return path


def fits_file(settings: Settings, row: ShotDone) -> Path:
    """Raises Gone (``image_expired``) or NotFound with the reason: ``fits_dir_unreachable`` or
    ``fits_not_found``."""
    _check_not_expired(row)
    recorded = row.fits_path or row.filename
    if not recorded:
        raise NotFound(f"image {row.id} has no FITS file recorded", code="fits_not_found")
    path = fits_path(settings, recorded)
    if path is not None:
        return path
    fit_dir = Path(settings.images.fit_dir)
    if not fit_dir.is_dir():
        raise NotFound(
            f"the FIT directory {fit_dir} is not reachable from the API host; the file stays on the "
            f"Voyager machine as {recorded}",
            code="fits_dir_unreachable",
        )
    parts = tail_parts(recorded)
    raise NotFound(f"FITS file {parts[-1] if parts else recorded} is not in {fit_dir}", code="fits_not_found")
