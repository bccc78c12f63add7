"""The zip of an order's frames (``GET /api/orders/{id}/frames.zip``): every JPG preview and every
FITS file still on this host, stored (not deflated: FITS and JPG barely compress), built in a
temporary file so a large order never sits in memory.
"""

from __future__ import annotations

import asyncio
import tempfile
import zipfile
from pathlib import Path

from fastapi.responses import FileResponse
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.background import BackgroundTask

from api.errors import Gone, NotFound
from core.frame_files import fits_path, jpg_path
from core.settings import Settings
from models.db import ShotDone


def build_zip(settings: Settings, order_id: int, rows: list[ShotDone]) -> Path:
    """A zip file of ``rows``' files: ``jpg/<name>`` and ``fits/<name>``; the caller deletes it.
    Raises Gone (``image_expired``) when retention deleted every frame's files, NotFound
    (``image_not_available``) when no file is on this host."""
    live = [r for r in rows if r.expired_at is None]
    if rows and not live:
        when = max(r.expired_at for r in rows).date().isoformat()
        raise Gone(f"the frames of order {order_id} were deleted on {when} at the end of their retention period",
                   code="image_expired")
    files = []
    for r in live:
        for folder, path in (("jpg", jpg_path(settings, r.jpg_path)),
                             ("fits", fits_path(settings, r.fits_path or r.filename))):
            if path is not None:
                files.append((f"{folder}/{path.name}", path))
    if not files:
        raise NotFound(f"no file of order {order_id} is on this host", code="image_not_available")
    fd, name = tempfile.mkstemp(prefix=f"order-{order_id}-", suffix=".zip")
    with open(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
        for arcname, path in files:
            zf.write(path, arcname)
    return Path(name)


async def order_zip_response(settings: Settings, session: AsyncSession, order_id: int) -> FileResponse:
    """The zip of the order's frames (not deleted by Voyager) as a download named
    ``order-<id>.zip``, its temporary file deleted once sent. The caller checks the order is the
    reader's. Raises as :func:`build_zip`. Used by the API and the web app."""
    rows = list((await session.exec(select(ShotDone).where(ShotDone.order_id == order_id,
                                                           ShotDone.is_deleted.is_(False)))).all())
    path = await asyncio.to_thread(build_zip, settings, order_id, rows)
    return FileResponse(path, media_type="application/zip", filename=f"order-{order_id}.zip",
                        background=BackgroundTask(path.unlink, missing_ok=True))
