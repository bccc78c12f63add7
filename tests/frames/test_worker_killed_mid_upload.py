"""A worker killed with SIGKILL while it uploads a frame's FITS (an S3 multipart upload open on the
server) leaves no partial object and no frame recorded or billed twice: the next worker uploads the
frame again, records it once, and the order settles once (docs/frames.md)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import boto3
import pytest

from core.frame_store import frame_store
from core.settings import ImageStoreSettings, StorageSettings
from models.orders import OrderStatus
from tests.e2e.test_order_faults import (
    AFTER_KILL,
    _assert_frames_once,
    _assert_settled_once,
    _attempts,
    kill_now,
    worker_process,
)
from tests.workflows.support import create_customer, create_order, wait_for

# The killed worker's activity is the monitor's watch (it ingests the frames): retried once its
# heartbeat timeout passes (tests/e2e/test_order_faults.py AFTER_KILL).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150 + AFTER_KILL + 60)]


async def test_a_worker_killed_mid_upload_leaves_no_partial_object_and_bills_each_frame_once(
        s3_server: StorageSettings, temporal_env, order_stack, engine, tmp_path):
    prefix = f"kill-{uuid.uuid4().hex[:8]}"
    image_store = ImageStoreSettings(url=f"s3://stellar-frames/{prefix}", endpoint=s3_server.endpoint,
                                     allow_http=True, access_key_id=s3_server.access_key_id,
                                     secret_access_key=s3_server.secret_access_key)
    # 3000 × 2000 px of 16 bits: 12 MB FITS files, uploaded in three 5 MB parts.
    stack = await order_stack(temporal_env, sim={"speed": 150.0, "frame_width": 3000, "frame_height": 2000},
                              start_worker=False)
    stack.settings = stack.settings.model_copy(update={"image_store": image_store})
    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1",
                      aws_access_key_id=s3_server.access_key_id.get_secret_value(),
                      aws_secret_access_key=s3_server.secret_access_key.get_secret_value())
    with worker_process(stack, tmp_path) as proc:
        customer = await create_customer(engine, credits=20)
        order_id = await create_order(engine, customer, [{"filter": "L", "exposure": 60.0, "quantity": 4}])
        handle = await stack.start(order_id, customer)

        async def upload_open() -> bool:
            assert proc.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            return bool(s3.list_multipart_uploads(Bucket="stellar-frames", Prefix=f"{prefix}/frames/{order_id}/")
                        .get("Uploads"))

        await wait_for(upload_open, 150, "a FITS upload under way", interval=0.01)
        kill_now(proc)  # mid-upload: its multipart upload stays open, never completed
    [killed] = s3.list_multipart_uploads(Bucket="stellar-frames", Prefix=f"{prefix}/frames/{order_id}/")["Uploads"]
    killed_key = killed["Key"].removeprefix(f"{prefix}/")
    assert frame_store(stack.settings).head(killed_key) is None  # no partial object
    await stack.start_worker(start_monitor=True)

    result = await asyncio.wait_for(stack.result(handle), AFTER_KILL)

    assert result.status == OrderStatus.COMPLETED, result.reason
    frames = await _assert_frames_once(stack, engine, order_id)
    store = frame_store(stack.settings)
    for f in frames:  # every recorded object whole, with the hash on its row
        if f.fits_key:
            assert hashlib.sha256(store.get_bytes(f.fits_key)).hexdigest() == f.fits_sha256
    assert killed_key in {f.fits_key for f in frames}  # the killed upload was done again, completely
    assert sum(f.accepted for f in frames) == 4
    assert await _attempts(handle, "ingest.watch_session") == []  # the restarted monitor closed the night
    await _assert_settled_once(engine, order_id)
    assert result.credits_captured == result.credits_held
