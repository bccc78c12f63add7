"""Where an ingested frame's files are on this host (the API serves them, retention deletes them).

JPG previews are ours (``images.jpg_dir``): the recorded path as is, else relative to that
directory. FITS files are written by Voyager on its own machine and are reachable here only through
``images.fit_dir`` (e.g. a mount of Voyager's share): the recorded path as is, else its last 1–4
components under ``fit_dir``.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

from core.settings import Settings


def jpg_path(settings: Settings, recorded: str | None) -> Path | None:
    """The preview file, or None when none was recorded or it is not on this host."""
    if not recorded:
        return None
    path = Path(recorded)
    if not path.is_file() and not path.is_absolute():
        path = Path(settings.images.jpg_dir) / path  # stored relative to the preview directory
    return path if path.is_file() else None


def tail_parts(recorded: str) -> tuple[str, ...]:
    """Components of a path written on Windows (Voyager) or POSIX, without the drive/root."""
    pure = PureWindowsPath(recorded) if "\\" in recorded else PurePosixPath(recorded)
    return tuple(p for p in pure.parts if p not in (pure.anchor, "", ".", ".."))


def fits_path(settings: Settings, recorded: str | None) -> Path | None:
    """The FITS file, or None when none was recorded or it is not reachable from this host."""
    if not recorded:
        return None
    direct = Path(recorded)
    if direct.is_absolute() and direct.is_file():
        return direct
    fit_dir = Path(settings.images.fit_dir)
    if not fit_dir.is_dir():
        return None
    # The share may be mounted at any level of Voyager's tree: try the shortest tails first.
    parts = tail_parts(recorded)
    for k in range(1, min(len(parts), 4) + 1):
        candidate = fit_dir.joinpath(*parts[-k:])
        if candidate.is_file():
            return candidate
    return None
