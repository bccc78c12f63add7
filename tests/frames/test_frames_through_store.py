"""Frames travel through the image store end to end (docs/frames.md), on both backends: an order
runs on the Voyager simulator with a real worker; the ingest uploads each frame's FITS and JPG; an
API process with directories of its own — Voyager's FIT directory deleted, nothing shared but the
database and the store — serves the FITS, the JPG and the zip with the recorded SHA-256. A store that refuses uploads makes
the frames wait unbilled; once it accepts them the order completes, each frame billed once."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import shutil
import sys
import tempfile
import uuid
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import boto3
import httpx
import pytest

from api.services.customers import create_customer as create_api_customer
from bench._processes import ChildProcess, settings_env, wait_http
from billing.ledger import Ledger
from core.processes import free_port
from core.settings import ImageStoreSettings, StorageSettings
from models.orders import OrderStatus
from tests.api.conftest import auth, temporal_address
from tests.frames.conftest import store_group
from tests.workflows.support import create_customer, create_order, frames_of, ledger_entries, order_row, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
SHOTS = [{"filter": "L", "exposure": 60.0, "quantity": 3}]


@contextlib.asynccontextmanager
async def api_process(database_url: str, temporal_env, task_queue: str,
                      image_store: ImageStoreSettings) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    """The API as a process of its own (uvicorn), every directory of it fresh (state, JPG, FIT):
    it shares nothing with the ingesting side but the database and the image store. Yields a
    client on it and its directory tree."""
    own = Path(tempfile.mkdtemp(prefix="stellar-api-host-"))
    port = free_port()
    env = settings_env({
        "state_dir": own / "state",  # type: ignore[dict-item]
        "database": {"url": database_url},
        "temporal": {"address": temporal_address(temporal_env), "task_queue": task_queue},
        "images": {"jpg_dir": own / "jpg", "fit_dir": own / "fits"},
        "image_store": store_group(image_store),
        "api": {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"},
    })
    api = ChildProcess("api", [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host",
                               "127.0.0.1", "--port", str(port), "--log-level", "warning"], env, own / "api.log")
    api.start()
    try:
        await wait_http(api, f"http://127.0.0.1:{port}/api/subscriptions/plans")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60.0) as client:
            yield client, own
    finally:
        await asyncio.to_thread(api.stop)
        shutil.rmtree(own, ignore_errors=True)


async def _start_stack(order_stack, temporal_env, image_store: ImageStoreSettings):
    stack = await order_stack(temporal_env, start_worker=False)
    stack.settings = stack.settings.model_copy(update={"image_store": image_store})
    await stack.start_worker(start_monitor=True, start_reconciliation=True)
    return stack


async def test_a_frames_fits_is_downloadable_from_an_api_process_sharing_no_directory_with_the_ingest(
        image_store, temporal_env, order_stack, database_url, engine, sessionmaker, task_queue):
    stack = await _start_stack(order_stack, temporal_env, image_store)
    c = await create_api_customer(sessionmaker, email=f"frames-{uuid.uuid4().hex[:10]}@example.com", name="F",
                                  plan="nebula")
    await Ledger(engine).grant(c.customer_id, 10, "pack", f"test-grant-{uuid.uuid4()}", "admin", "test")
    order_id = await create_order(engine, c.customer_id, SHOTS)
    result = await asyncio.wait_for(stack.result(await stack.start(order_id, c.customer_id)), 150)
    assert result.status == OrderStatus.COMPLETED, result.reason
    assert result.credits_captured == result.cost == 1

    frames = [f for f in await frames_of(engine, order_id) if f.accepted]
    assert len(frames) == 3 and all(f.fits_key and f.fits_sha256 and f.jpg_key for f in frames)
    voyager_side = {f.id: Path(f.fits_path).read_bytes() for f in frames}
    assert all(hashlib.sha256(voyager_side[f.id]).hexdigest() == f.fits_sha256 for f in frames)
    # Nothing of the ingesting side is left: Voyager's FIT directory is gone.
    shutil.rmtree(stack.sim.config.fit_dir)
    assert not any(Path(f.fits_path).exists() for f in frames)

    async with api_process(database_url, temporal_env, task_queue, image_store) as (api, own):
        key = auth(c.api_key)
        listed = (await api.get(f"/api/orders/{order_id}/images", headers=key)).json()["items"]
        assert {i["fits_sha256"] for i in listed} == {f.fits_sha256 for f in frames}
        for f in frames:
            r = await api.get(f"/api/images/{f.id}/fits", headers=key)
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == "application/fits" and f.filename in r.headers["content-disposition"]
            assert r.content == voyager_side[f.id] and hashlib.sha256(r.content).hexdigest() == f.fits_sha256
            jpg = await api.get(f"/api/images/{f.id}.jpg", headers=key)
            assert jpg.status_code == 200 and jpg.content[:2] == b"\xff\xd8"
            assert hashlib.sha256(jpg.content).hexdigest() == f.jpg_sha256

        r = await api.get(f"/api/orders/{order_id}/frames.zip", headers=key)
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
            assert zf.testzip() is None
            for f in frames:
                assert zf.read(f"fits/{f.filename}") == voyager_side[f.id]
            kept = [f for f in await frames_of(engine, order_id) if not f.is_deleted]  # Voyager's rejects: not in it
            assert sum(n.startswith("jpg/") for n in zf.namelist()) == len(kept)
        # The API host never had a FIT or JPG directory: everything came from the store.
        assert not (own / "fits").exists() and not (own / "jpg").exists()


async def test_frames_wait_unbilled_while_the_store_refuses_them_then_are_billed_once(
        s3_server: StorageSettings, temporal_env, order_stack, engine):
    bucket = f"late-{uuid.uuid4().hex[:8]}"  # does not exist yet: every upload is refused
    image_store = ImageStoreSettings(url=f"s3://{bucket}/frames", endpoint=s3_server.endpoint, allow_http=True,
                                     access_key_id=s3_server.access_key_id,
                                     secret_access_key=s3_server.secret_access_key)
    stack = await _start_stack(order_stack, temporal_env, image_store)

    customer = await create_customer(engine, credits=10)
    order_id = await create_order(engine, customer, SHOTS)
    handle = await stack.start(order_id, customer)

    async def voyager_took_frames() -> bool:
        return len(stack.sim.store.shots_done) >= 3

    await wait_for(voyager_took_frames, 120, "Voyager took the frames")
    await asyncio.sleep(3)  # several watch polls (0.3 s) find them and fail to store them
    row = await order_row(engine, order_id)
    assert await frames_of(engine, order_id) == []  # no frame recorded without its files
    assert (row.shots_done, row.frames_accepted, row.credits_captured) == (0, 0, 0)
    assert row.status not in {"completed", "partial"}

    boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1",
                 aws_access_key_id=s3_server.access_key_id.get_secret_value(),
                 aws_secret_access_key=s3_server.secret_access_key.get_secret_value()).create_bucket(Bucket=bucket)
    result = await asyncio.wait_for(stack.result(handle), 150)

    assert result.status == OrderStatus.COMPLETED, result.reason
    frames = await frames_of(engine, order_id)
    assert len({f.shot_done_guid for f in frames}) == len(frames) and all(f.jpg_key for f in frames)
    assert sum(1 for f in frames if f.accepted and f.fits_key) == 3
    assert result.credits_captured == result.cost == 1
    assert sorted(e.kind for e in await ledger_entries(engine, order_id)) == ["capture", "hold"]
