"""The image store's uploads on both backends (docs/frames.md): idempotent (same key, same hash →
nothing uploaded), and atomic — a process killed with SIGKILL in the middle of uploading a large
FITS leaves no object, never a truncated one, and the retried upload completes."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3

from core.frame_store import frame_key, frame_store, sha256_of, store_frame_file
from core.object_store import open_store
from core.settings import ImageStoreSettings
from tests.frames.conftest import store_group
from web.fits_summary import header_summary

REPO = Path(__file__).resolve().parents[2]


def _fits_like(path: Path, mib: int) -> Path:
    """A file of ``mib`` MiB of random data (a FITS does not compress; neither does this)."""
    block = os.urandom(1 << 20)
    with open(path, "wb") as fh:
        for i in range(mib):
            fh.write(block[:-8] + i.to_bytes(8, "big"))
    return path


def test_same_content_under_the_same_key_is_not_uploaded_again(image_store: ImageStoreSettings, tmp_path):
    store = open_store(image_store)
    fits = _fits_like(tmp_path / "M42_L_60s_001.fit", 1)
    key = frame_key(7, "0b1c2d3e-aaaa-bbbb-cccc-000000000001", "fits")
    assert key == "frames/7/0b1c2d3e-aaaa-bbbb-cccc-000000000001.fits"

    first = store_frame_file(store, key, fits)
    assert first.uploaded and first.sha256 == hashlib.sha256(fits.read_bytes()).hexdigest()
    stamp = store.head(key).last_modified
    time.sleep(1.1)  # a second put would move last_modified (S3 dates have 1 s resolution)
    again = store_frame_file(store, key, fits)
    assert not again.uploaded and again.sha256 == first.sha256
    assert store.head(key).last_modified == stamp
    assert store.get_bytes(key) == fits.read_bytes()

    jpg = store_frame_file(store, frame_key(7, "g", "jpg"), b"\xff\xd8preview")
    assert jpg.uploaded and not store_frame_file(store, frame_key(7, "g", "jpg"), b"\xff\xd8preview").uploaded
    # Other content under the key (Voyager rewrote the file) replaces the object.
    changed = store_frame_file(store, frame_key(7, "g", "jpg"), b"\xff\xd8other")
    assert changed.uploaded and store.get_bytes(frame_key(7, "g", "jpg")) == b"\xff\xd8other"
    assert [o.key for o in store.list("frames/7/")] == [key, "frames/7/g.jpg"]


_UPLOADER = """
import sys
from pathlib import Path
from core.frame_store import store_frame_file
from core.object_store import open_store
from core.settings import ImageStoreSettings
store = open_store(ImageStoreSettings.model_validate_json(sys.argv[1]))
print("uploading", flush=True)
store_frame_file(store, sys.argv[2], Path(sys.argv[3]))
print("uploaded", flush=True)
"""


def _uploading(image_store: ImageStoreSettings, key: str) -> bool:
    """True once the upload of ``key`` is under way and not finished: a local store's staging file
    (``<key>#<n>``) exists, or the S3 server holds an open multipart upload for it."""
    if image_store.url.startswith("file://"):
        folder = Path(image_store.url.removeprefix("file://")) / Path(key).parent
        return folder.is_dir() and any("#" in p.name for p in folder.iterdir())
    bucket, _, prefix = image_store.url.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3", endpoint_url=image_store.endpoint, region_name=image_store.region,
                      aws_access_key_id=image_store.access_key_id.get_secret_value(),
                      aws_secret_access_key=image_store.secret_access_key.get_secret_value())
    uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix=f"{prefix}/{key}").get("Uploads", [])
    return bool(uploads)


def test_an_upload_killed_mid_way_leaves_no_partial_object(image_store: ImageStoreSettings, tmp_path):
    # Large enough to be a multipart upload and to take a while (the S3 server is slower).
    big = _fits_like(tmp_path / "big.fit", 160 if image_store.url.startswith("file://") else 48)
    key = frame_key(8, "5f0e0e0e-1111-2222-3333-444444444444", "fits")
    cfg_json = ImageStoreSettings(**store_group(image_store)).model_dump_json()
    proc = subprocess.Popen([sys.executable, "-c", _UPLOADER, cfg_json, key, str(big)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "uploading"
        deadline = time.monotonic() + 60
        while not _uploading(image_store, key):
            assert proc.poll() is None, "the upload ended before it could be seen under way"
            assert time.monotonic() < deadline, "the upload never started"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)  # mid-upload: the staging file / multipart upload is open
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    store = open_store(image_store)
    assert store.head(key) is None  # no object at all: never a truncated one
    assert store.list("frames/8/") == []
    # The retried upload (the activity's next attempt) stores the whole file.
    retried = store_frame_file(store, key, big)
    assert retried.uploaded and (retried.sha256, retried.size) == sha256_of(big)
    assert store.head(key).size == big.stat().st_size


async def test_api_answers_404_for_a_missing_object_and_503_when_the_store_is_unreachable(make_api, tmp_path):
    from core.processes import free_port
    from tests.api.conftest import auth

    async with make_api() as api:
        store = frame_store(api.settings)
        c = await api.customer()
        order = await api.insert_order(c.customer_id, status="completed")
        header = b"".join(f"{card:<80}".encode() for card in (
            "SIMPLE  =                    T", "BITPIX  =                   16", "NAXIS   =                    0",
            "OBJECT  = 'M42     '", "EXPTIME =                 60.0", "END"))
        kept = store_frame_file(store, frame_key(order.id, "kept", "fits"), header.ljust(2880, b" "))
        frame = await api.insert_frame(order.id, filter="L", exposure=60, accepted=True, filename="M42_1.fit",
                                       fits_key=kept.key, fits_sha256=kept.sha256)
        lost = await api.insert_frame(order.id, filter="L", exposure=60, accepted=True, filename="M42_2.fit",
                                      fits_key=frame_key(order.id, "lost", "fits"), jpg_key=frame_key(order.id, "lost", "jpg"))
        r = await api.client.get(f"/api/images/{frame.id}/fits", headers=auth(c.api_key))
        assert r.status_code == 200 and r.content == header.ljust(2880, b" ")
        assert r.headers["content-length"] == "2880"
        assert await header_summary(api.settings, frame) == {"OBJECT": "M42", "EXPTIME": "60.0"}
        r = await api.client.get(f"/api/images/{lost.id}/fits", headers=auth(c.api_key))
        assert r.status_code == 404 and r.json()["error"]["code"] == "fits_not_found"
        r = await api.client.get(f"/api/images/{lost.id}.jpg", headers=auth(c.api_key))
        assert r.status_code == 404 and r.json()["error"]["code"] == "image_not_available"

    dead = {"url": "s3://nowhere/frames", "endpoint": f"http://127.0.0.1:{free_port()}", "allow_http": True,
            "access_key_id": "k", "secret_access_key": "s", "timeout": 2.0}
    async with make_api(image_store=dead) as api:
        r = await api.client.get(f"/api/images/{frame.id}/fits", headers=auth(c.api_key))
        assert r.status_code == 503 and r.json()["error"]["code"] == "image_store_unavailable"
        r = await api.client.get(f"/api/orders/{order.id}/frames.zip", headers=auth(c.api_key))
        assert r.status_code == 503 and r.json()["error"]["code"] == "image_store_unavailable"
