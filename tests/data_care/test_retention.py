"""Frame retention under the time-skipping server: notice at day 23, deletion at day 30, 410 after,
an open order's and a disputed order's frames untouched, a second pass deleting nothing.

The scan looks at every order of its database, so these tests run on a database of their own.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import select
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.retention_ops import RetentionActivities
from api.app import create_app
from api.services.customers import create_customer
from core.database import make_sessionmaker
from core.settings import load_settings
from models.data_care import RetentionInput, RetentionOrderInput, RetentionReport
from models.db import Order, OrderEvent, PaymentDispute, ShotDone
from workflows.retention import RetentionWorkflow

pytestmark = pytest.mark.asyncio


def _files(tmp: Path, name: str) -> tuple[Path, Path]:
    jpg, fits = tmp / "jpg" / f"{name}.jpg", tmp / "fits" / f"{name}.fit"
    for p, data in ((jpg, b"\xff\xd8jpeg"), (fits, b"SIMPLE  =                    T" + b" " * 2850)):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return jpg, fits


async def _order(sm, tmp: Path, customer_id: int, *, status: str, finished_at: datetime | None,
                 frames: int = 2) -> tuple[int, list[tuple[Path, Path]]]:
    async with sm() as s:
        order = Order(customer_id=customer_id, status=status, target_name="M42", ra_j2000=5.588, dec_j2000=-5.39,
                      finished_at=finished_at, cost=3, credits_held=3)
        s.add(order)
        await s.flush()
        paths = []
        for i in range(frames):
            jpg, fits = _files(tmp, f"o{order.id}-{i}")
            paths.append((jpg, fits))
            s.add(ShotDone(order_id=order.id, session_guid=str(uuid.uuid4()), shot_done_guid=str(uuid.uuid4()),
                           filter="L", exposure=60.0, hfd=2.4, filename=fits.name, fits_path=str(fits),
                           jpg_path=jpg.name, taken_at=finished_at, accepted=True))
        await s.commit()
        return order.id, paths


async def _frames(sm, order_id: int) -> list[ShotDone]:
    async with sm() as s:
        return list((await s.exec(select(ShotDone).where(ShotDone.order_id == order_id).order_by(ShotDone.id))).all())


async def test_notice_at_day_23_deletion_at_day_30_then_410_and_a_second_pass_deletes_nothing(
        skipping_clock_env, own_database, tmp_path, task_queue):
    env = skipping_clock_env
    url, engine = own_database
    sm = make_sessionmaker(engine)
    settings = load_settings(database={"url": url}, images={"jpg_dir": tmp_path / "jpg", "fit_dir": tmp_path / "fits"},
                             api={"public_url": "https://stellar.example"})
    base = await env.get_current_time()
    done = await create_customer(sm, email=f"done-{uuid.uuid4().hex[:8]}@example.com")
    disputed = await create_customer(sm, email=f"disputed-{uuid.uuid4().hex[:8]}@example.com")
    ended, ended_files = await _order(sm, tmp_path, done.customer_id, status="completed", finished_at=base)
    running, running_files = await _order(sm, tmp_path, done.customer_id, status="running", finished_at=None)
    in_dispute, dispute_files = await _order(sm, tmp_path, disputed.customer_id, status="completed", finished_at=base)
    async with sm() as s:
        s.add(PaymentDispute(id=f"dp_{uuid.uuid4().hex}", charge_id="ch_test", customer_id=disputed.customer_id,
                             amount_cents=900, status="needs_response"))
        await s.commit()

    retention = RetentionActivities(sm, settings)
    async with Worker(env.client, task_queue=task_queue, workflows=[RetentionWorkflow],
                      activities=[retention.scan, retention.notify, retention.delete_frames]):
        async def pass_at(day: int) -> RetentionReport:
            now = await env.get_current_time()
            await env.sleep(base + timedelta(days=day) - now)
            # Time moves only by the sleep above: waiting on a result would let the server skip ahead.
            with env.auto_time_skipping_disabled():
                return await env.client.execute_workflow(RetentionWorkflow.run, RetentionInput(),
                                                         id=f"retention-{uuid.uuid4()}", task_queue=task_queue,
                                                         result_type=RetentionReport)

        day22 = await pass_at(22)
        assert day22.notified == [] and day22.deleted == []

        day23 = await pass_at(23)
        assert day23.notified == [ended] and day23.deleted == []
        assert day23.held_in_dispute == [in_dispute]
        async with sm() as s:
            notices = (await s.exec(select(OrderEvent).where(OrderEvent.order_id == ended,
                                                             OrderEvent.kind == "retention"))).all()
        assert len(notices) == 1 and notices[0].email_status == "pending"
        assert notices[0].payload["zip_url"] == f"https://stellar.example/api/orders/{ended}/frames.zip"
        assert notices[0].payload["delete_on"].startswith((base + timedelta(days=30)).date().isoformat())

        # A worker killed mid-deletion: one file already gone, its frame not yet marked expired.
        ended_files[0][0].unlink()
        day29 = await pass_at(29)
        assert day29.notified == [] and day29.deleted == []
        assert all(f.expired_at is None for f in await _frames(sm, ended))

        day30 = await pass_at(30)
        assert [(d.order_id, d.frames, d.files) for d in day30.deleted] == [(ended, 2, 3)]
        assert not any(p.exists() for pair in ended_files for p in pair)
        expired = await _frames(sm, ended)
        assert all(f.expired_at is not None and f.hfd == 2.4 and f.filter == "L" for f in expired)

        again = await pass_at(31)
        assert again.deleted == [] and again.notified == []

    for order_id, files in ((running, running_files), (in_dispute, dispute_files)):
        assert all(f.expired_at is None for f in await _frames(sm, order_id))
        assert all(p.exists() for pair in files for p in pair)

    app = create_app(settings, engine=engine, temporal_client=env.client)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
            key = {"Authorization": f"Bearer {done.api_key}"}
            gone = await http.get(f"/api/orders/{ended}/frames.zip", headers=key)
            assert gone.status_code == 410 and gone.json()["error"]["code"] == "image_expired"
            kept = await http.get(f"/api/orders/{running}/frames.zip", headers=key)
            assert kept.status_code == 200
            with zipfile.ZipFile(io.BytesIO(kept.content)) as zf:
                assert sorted(zf.namelist()) == sorted(
                    [f"jpg/{j.name}" for j, _ in running_files] + [f"fits/{f.name}" for _, f in running_files])
            listed = (await http.get(f"/api/orders/{ended}/images", headers=key)).json()["items"]
            assert {i["status"] for i in listed} == {"expired"}
            for path in (f"/api/images/{expired[0].id}.jpg", f"/api/images/{expired[0].id}/fits"):
                r = await http.get(path, headers=key)
                assert r.status_code == 410, r.text
                assert r.json()["error"]["code"] == "image_expired"
                assert expired[0].expired_at.date().isoformat() in r.json()["error"]["message"]
            live = (await _frames(sm, running))[0]
            # The live JPG preview is a dashboard feature; the FITS of a frame kept is served to every plan.
            assert (await http.get(f"/api/images/{live.id}/fits", headers=key)).status_code == 200


async def test_a_deletion_killed_after_one_frame_resumes_with_the_others(own_database, tmp_path):
    url, engine = own_database
    sm = make_sessionmaker(engine)
    settings = load_settings(database={"url": url}, images={"jpg_dir": tmp_path / "jpg", "fit_dir": tmp_path / "fits"})
    now = datetime.now(UTC)
    c = await create_customer(sm, email=f"kill-{uuid.uuid4().hex[:8]}@example.com")
    order_id, files = await _order(sm, tmp_path, c.customer_id, status="completed",
                                   finished_at=now - timedelta(days=40), frames=3)
    async with sm() as s:
        order = await s.get(Order, order_id)
        order.retention_notice_at = now - timedelta(days=10)
        s.add(order)
        await s.commit()
    retention = RetentionActivities(sm, settings)
    ref = RetentionOrderInput(order_id=order_id, as_of=now, days=30, notice_days=7)

    class WorkerKilled(Exception):
        pass

    def die_after_first_frame(*details):
        raise WorkerKilled  # the heartbeat after the first frame never returns

    crashing = ActivityEnvironment()
    crashing.on_heartbeat = die_after_first_frame
    with pytest.raises(WorkerKilled):
        await crashing.run(retention.delete_frames, ref)
    assert [f.expired_at is not None for f in await _frames(sm, order_id)] == [True, False, False]

    resumed = await ActivityEnvironment().run(retention.delete_frames, ref)
    assert (resumed.frames, resumed.files, resumed.skipped) == (2, 4, "")
    assert all(f.expired_at is not None for f in await _frames(sm, order_id))
    assert not any(p.exists() for pair in files for p in pair)
    again = await ActivityEnvironment().run(retention.delete_frames, ref)
    assert (again.frames, again.files) == (0, 0)
