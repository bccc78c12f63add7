"""Retention deletes a frame's objects from the image store (docs/operations.md §Retention,
docs/frames.md), on both backends; the API then answers 410, and a second pass deletes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from temporalio.testing import ActivityEnvironment

from activities.retention_ops import RetentionActivities
from core.frame_store import frame_key, frame_store, store_frame_file
from core.settings import ImageStoreSettings
from models.data_care import RetentionOrderInput
from models.db import Order, ShotDone
from tests.api.conftest import auth
from tests.frames.conftest import store_group


async def test_retention_deletes_the_frames_objects_and_the_api_answers_410(image_store: ImageStoreSettings, make_api):
    async with make_api(image_store=store_group(image_store)) as api:
        store = frame_store(api.settings)
        c = await api.customer()
        now = datetime.now(UTC)
        async with api.sessionmaker() as s:
            order = Order(customer_id=c.customer_id, status="completed", target_name="M42", ra_j2000=5.588,
                          dec_j2000=-5.39, finished_at=now - timedelta(days=31),
                          retention_notice_at=now - timedelta(days=8), cost=1, credits_held=1)
            s.add(order)
            await s.flush()
            rows = []
            for i in range(2):
                guid = str(uuid.uuid4())
                fits = store_frame_file(store, frame_key(order.id, guid, "fits"), b"SIMPLE  =  T" + bytes([i]) * 4000)
                jpg = store_frame_file(store, frame_key(order.id, guid, "jpg"), b"\xff\xd8" + bytes([i]) * 100)
                row = ShotDone(order_id=order.id, session_guid=str(uuid.uuid4()), shot_done_guid=guid, filter="L",
                               exposure=60.0, accepted=True, filename=f"M42_{i}.fit", fits_key=fits.key,
                               fits_sha256=fits.sha256, jpg_key=jpg.key, jpg_sha256=jpg.sha256)
                s.add(row)
                rows.append(row)
            await s.commit()
            order_id, frame_id = order.id, rows[0].id
        assert len(store.list(f"frames/{order_id}/")) == 4
        r = await api.client.get(f"/api/images/{frame_id}/fits", headers=auth(c.api_key))
        assert r.status_code == 200 and r.content.startswith(b"SIMPLE")

        retention = RetentionActivities(api.sessionmaker, api.settings)
        ref = RetentionOrderInput(order_id=order_id, as_of=now, days=30, notice_days=7)
        done = await ActivityEnvironment().run(retention.delete_frames, ref)
        assert (done.frames, done.files, done.bytes, done.skipped) == (2, 4, 2 * 4012 + 2 * 102, "")
        assert store.list(f"frames/{order_id}/") == []
        r = await api.client.get(f"/api/images/{frame_id}/fits", headers=auth(c.api_key))
        assert r.status_code == 410 and r.json()["error"]["code"] == "image_expired"
        again = await ActivityEnvironment().run(retention.delete_frames, ref)
        assert (again.frames, again.files) == (0, 0)
