"""Where an ingested frame's files are on this host.

JPG previews are ours (``images.jpg_dir``). FITS files are written by Voyager on its own machine;
the API serves them only when that FIT directory is reachable here (``images.fit_dir``, e.g. a
mount of Voyager's share): the recorded path as is, else its last 1–4 components under ``fit_dir``.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

from api.errors import NotFound
from core.settings import Settings
from models.db import ShotDone


def jpg_file(settings: Settings, row: ShotDone) -> Path:
    """Raises NotFound (``image_not_available``) when no preview was stored or it is gone."""
    if not row.jpg_path:
        raise NotFound(f"image {row.id} has no JPG preview", code="image_not_available")
    path = Path(row.jpg_path)
    if not path.is_file() and not path.is_absolute():
        path = Path(settings.images.jpg_dir) / path  # stored relative to the preview directory
    if not path.is_file():
        raise NotFound(f"the JPG preview of image {row.id} is missing on this host", code="image_not_available")
    return path


def _tail_parts(recorded: str) -> tuple[str, ...]:
    """Components of a path written on Windows (Voyager) or POSIX, without the drive/root."""
    pure = PureWindowsPath(recorded) if "\\" in recorded else PurePosixPath(recorded)
    return tuple(p for p in pure.parts if p not in (pure.anchor, "", ".", ".."))


def fits_file(settings: Settings, row: ShotDone) -> Path:
    """Raises NotFound with the reason: ``fits_dir_unreachable`` or ``fits_not_found``."""
    recorded = row.fits_path or row.filename
    if not recorded:
        raise NotFound(f"image {row.id} has no FITS file recorded", code="fits_not_found")
    direct = Path(recorded)
    if direct.is_absolute() and direct.is_file():
        return direct
    fit_dir = Path(settings.images.fit_dir)
    if not fit_dir.is_dir():
        raise NotFound(
            f"the FIT directory {fit_dir} is not reachable from the API host; the file stays on the "
            f"Voyager machine as {recorded}",
            code="fits_dir_unreachable",
        )
    # The share may be mounted at any level of Voyager's tree: try the shortest tails first.
    parts = _tail_parts(recorded)
    for k in range(1, min(len(parts), 4) + 1):
        candidate = fit_dir.joinpath(*parts[-k:])
        if candidate.is_file():
            return candidate
    raise NotFound(f"FITS file {parts[-1] if parts else recorded} is not in {fit_dir}", code="fits_not_found")
