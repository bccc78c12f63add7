"""A frame's files for download, or the API error that says why not (docs/frames.md).

Frames are read from the image store (``settings.image_store``) wherever the API runs: the ingest
beside Voyager uploaded them under ``frames/<order_id>/<guid>.fits|.jpg`` before it recorded the
frame. Frames ingested before the store have only a path: their JPG is found under
``images.jpg_dir`` and their FITS under ``images.fit_dir`` when that is reachable here
(``core/frame_files.py``), else a 404 says why. A frame whose files retention deleted answers 410
Gone with the date (docs/operations.md §Retention).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from fastapi.responses import FileResponse, Response, StreamingResponse

from api.errors import IMAGE_STORE_UNAVAILABLE, Gone, NotFound, ServiceUnavailable
from core.frame_files import fits_path, jpg_path, tail_parts
from core.frame_store import frame_store
from core.object_store import ObjectStoreError
from core.settings import Settings
from models.db import ShotDone

_CHUNK = 1024 * 1024
JPG_TYPE = "image/jpeg"
FITS_TYPE = "application/fits"


@dataclass(frozen=True)
class FrameFile:
    """One file of a frame, found: in the image store (``key``) or, for a frame ingested before the
    store, on this host (``path``). ``name``: the download's file name; ``size``: bytes."""

    name: str
    media_type: str
    size: int
    key: str | None = None
    path: Path | None = None

    async def chunks(self, settings: Settings) -> AsyncIterator[bytes]:
        """The content, streamed (never whole in memory). Raises ObjectStoreError mid-stream."""
        if self.key is not None:
            async for chunk in frame_store(settings).stream(self.key, _CHUNK):
                yield chunk
            return
        assert self.path is not None
        with open(self.path, "rb") as fh:
            while chunk := await asyncio.to_thread(fh.read, _CHUNK):
                yield chunk

    def response(self, settings: Settings, *, download: bool) -> Response:
        """The HTTP answer: streamed from the store, or the local file; ``download`` names the file
        (``Content-Disposition: attachment``)."""
        disposition = {"filename": self.name} if download else {}
        if self.path is not None:
            return FileResponse(self.path, media_type=self.media_type, **disposition)
        headers = {"Content-Length": str(self.size)}
        if download:
            headers["Content-Disposition"] = f'attachment; filename="{self.name}"'
        return StreamingResponse(self.chunks(settings), media_type=self.media_type, headers=headers)


def store_unreachable(exc: ObjectStoreError) -> ServiceUnavailable:
    return ServiceUnavailable(f"the image store is unreachable; retry later ({exc})", code=IMAGE_STORE_UNAVAILABLE)


async def _in_store(settings: Settings, key: str, name: str, media_type: str) -> FrameFile | None:
    try:
        meta = await asyncio.to_thread(frame_store(settings).head, key)
    except ObjectStoreError as exc:
        raise store_unreachable(exc) from exc
    return None if meta is None else FrameFile(name, media_type, meta.size, key=key)


def _check_not_expired(row: ShotDone) -> None:
    if row.expired_at is not None:
        raise Gone(f"image {row.id}'s files were deleted on {row.expired_at.date().isoformat()} at the end of "
                   f"its retention period; its metadata is kept", code="image_expired")


def fits_name(row: ShotDone) -> str:
    """The FITS file's name as Voyager wrote it (``M42_L_60s_001.fit``), else ``<guid>.fits``."""
    parts = tail_parts(row.filename or row.fits_path or "")
    return parts[-1] if parts else f"{row.shot_done_guid}.fits"


async def jpg_file(settings: Settings, row: ShotDone) -> FrameFile:
    """Raises Gone (``image_expired``), NotFound (``image_not_available``), ServiceUnavailable
    (``image_store_unavailable``)."""
    _check_not_expired(row)
    if row.jpg_key:
        found = await _in_store(settings, row.jpg_key, f"{row.shot_done_guid}.jpg", JPG_TYPE)
        if found is None:
            raise NotFound(f"the JPG preview of image {row.id} is missing from the image store",
                           code="image_not_available")
        return found
    if not row.jpg_path:
        raise NotFound(f"image {row.id} has no JPG preview", code="image_not_available")
    path = jpg_path(settings, row.jpg_path)
    if path is None:
        raise NotFound(f"the JPG preview of image {row.id} is missing on this host", code="image_not_available")
    return FrameFile(path.name, JPG_TYPE, path.stat().st_size, path=path)


async def fits_file(settings: Settings, row: ShotDone) -> FrameFile:
    """Raises Gone (``image_expired``), ServiceUnavailable (``image_store_unavailable``) or NotFound
    with the reason: ``fits_not_found`` (not in the store, or not in the FIT directory), or, for a
    frame ingested before the store, ``fits_dir_unreachable``."""
    _check_not_expired(row)
    if row.fits_key:
        found = await _in_store(settings, row.fits_key, fits_name(row), FITS_TYPE)
        if found is None:
            raise NotFound(f"the FITS file of image {row.id} is missing from the image store", code="fits_not_found")
        return found
    recorded = row.fits_path or row.filename
    if not recorded:
        raise NotFound(f"image {row.id} has no FITS file recorded", code="fits_not_found")
    path = fits_path(settings, recorded)
    if path is not None:
        return FrameFile(path.name, FITS_TYPE, path.stat().st_size, path=path)
    fit_dir = Path(settings.images.fit_dir)
    if not fit_dir.is_dir():
        raise NotFound(
            f"image {row.id} was ingested before the image store and the FIT directory {fit_dir} is not "
            f"reachable from the API host; the file stays on the Voyager machine as {recorded}",
            code="fits_dir_unreachable",
        )
    parts = tail_parts(recorded)
    raise NotFound(f"FITS file {parts[-1] if parts else recorded} is not in {fit_dir}", code="fits_not_found")
