"""The zip of an order's frames (``GET /api/orders/{id}/frames.zip``): every JPG preview and FITS
file, read from the image store (or, for frames ingested before it, from this host) and streamed as
the zip is written, stored (not deflated: FITS and JPG barely compress), so a large order never sits
in memory or on the API's disk (docs/frames.md).
"""

from __future__ import annotations

import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import structlog
from fastapi.responses import StreamingResponse
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import Gone, NotFound
from api.services.files import FrameFile, fits_file, jpg_file
from core.object_store import ObjectStoreError
from core.settings import Settings
from models.db import ShotDone

log = structlog.get_logger(__name__)


class _Sink:
    """What ``zipfile`` writes to: an unseekable buffer the response drains after each write."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


async def order_files(settings: Settings, order_id: int, rows: list[ShotDone]) -> list[tuple[str, FrameFile]]:
    """``(arcname, file)`` for every file of ``rows`` that can be read: ``jpg/<name>`` and
    ``fits/<name>``. Raises Gone (``image_expired``) when retention deleted every frame's files,
    NotFound (``image_not_available``) when none can be read, ServiceUnavailable when the store is
    unreachable."""
    live = [r for r in rows if r.expired_at is None]
    if rows and not live:
        when = max(r.expired_at for r in rows).date().isoformat()
        raise Gone(f"the frames of order {order_id} were deleted on {when} at the end of their retention period",
                   code="image_expired")
    files: list[tuple[str, FrameFile]] = []
    for r in live:
        for folder, find in (("jpg", jpg_file), ("fits", fits_file)):
            try:
                f = await find(settings, r)
            except NotFound:
                continue  # a frame without a preview, or a pre-store FITS not reachable here
            files.append((f"{folder}/{f.name}", f))
    if not files:
        raise NotFound(f"no file of order {order_id} can be read", code="image_not_available")
    return files


async def zip_stream(settings: Settings, files: list[tuple[str, FrameFile]]) -> AsyncIterator[bytes]:
    """The zip of ``files``, yielded as it is written (entries use data descriptors: the output
    is never sought back)."""
    sink = _Sink()
    now = datetime.now(UTC).timetuple()[:6]
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:  # type: ignore[arg-type]
        for arcname, f in files:
            info = zipfile.ZipInfo(arcname, date_time=now)
            info.file_size = f.size
            with zf.open(info, "w") as entry:
                async for chunk in f.chunks(settings):
                    entry.write(chunk)
                    yield sink.drain()
            yield sink.drain()
    yield sink.drain()


async def order_zip_response(settings: Settings, session: AsyncSession, order_id: int) -> StreamingResponse:
    """The zip of the order's frames (not deleted by Voyager) as a download named
    ``order-<id>.zip``, streamed. The caller checks the order is the reader's. Raises as
    :func:`order_files`. Used by the API and the web app."""
    rows = list((await session.exec(select(ShotDone).where(ShotDone.order_id == order_id,
                                                           ShotDone.is_deleted.is_(False))
                                    .order_by(ShotDone.id))).all())
    files = await order_files(settings, order_id, rows)

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in zip_stream(settings, files):
                if chunk:
                    yield chunk
        except (ObjectStoreError, OSError) as exc:  # headers are sent: the client sees a cut zip
            log.error("frames_zip.interrupted", order_id=order_id, error=str(exc))
            raise

    return StreamingResponse(body(), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="order-{order_id}.zip"'})
