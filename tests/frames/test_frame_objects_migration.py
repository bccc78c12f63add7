"""Revision 0014_frame_objects upgrades a database holding frames ingested before the image store:
they keep every value, their object keys and hashes are empty, and the API still serves their
files from this host's directories (docs/frames.md §Frames from before the store)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from core.migrate import upgrade_in_thread
from models.db import Customer, Order, ShotDone
from tests.api.conftest import auth
from tests.scratch_db import insert_as_of_revision, scratch_database_at


async def test_upgrade_keeps_frames_with_paths_and_empty_keys(engine, database_url):
    # 0013_host_earnings: the revision before 0014_frame_objects.
    async with scratch_database_at(engine, database_url, "0013_host_earnings") as (url, eng):
        async with eng.begin() as conn:
            cid = await insert_as_of_revision(conn, Customer(email="old@example.com"))
            oid = await insert_as_of_revision(conn, Order(
                customer_id=cid, target_name="M42", ra_j2000=5.588, dec_j2000=-5.39, status="completed",
                cost=1, shots_total=1))
            await insert_as_of_revision(conn, ShotDone(
                order_id=oid, session_guid="s", shot_done_guid=str(uuid.uuid4()), filter="Ha", exposure=300,
                hfd=2.1, filename="a.fit", fits_path="/x/a.fit", jpg_path="a.jpg", accepted=True))
        upgrade_in_thread(url, "0014_frame_objects")
        async with eng.connect() as conn:
            frame = (await conn.execute(sa.text(
                "SELECT filter, hfd, fits_path, jpg_path, fits_key, fits_sha256, jpg_key, jpg_sha256 "
                "FROM shot_done WHERE order_id = :o"), {"o": oid})).one()
        assert tuple(frame) == ("Ha", 2.1, "/x/a.fit", "a.jpg", None, None, None, None)


async def test_a_frame_from_before_the_store_is_served_from_this_host_or_answers_why_not(api):
    c = await api.customer()
    order = await api.insert_order(c.customer_id, status="completed")
    fits = api.settings.images.fit_dir / "M42" / "M42_L_1.fit"
    fits.parent.mkdir(parents=True)
    fits.write_bytes(b"SIMPLE  =                    T" + b" " * 2850)
    here = await api.insert_frame(order.id, filter="L", exposure=60, accepted=True, filename=fits.name,
                                  fits_path=r"C:\Voyager\FIT\M42\M42_L_1.fit")
    gone = await api.insert_frame(order.id, filter="L", exposure=60, accepted=True, filename="M42_L_2.fit",
                                  fits_path=r"C:\Voyager\FIT\M42\M42_L_2.fit")
    r = await api.client.get(f"/api/images/{here.id}/fits", headers=auth(c.api_key))
    assert r.status_code == 200 and r.content == fits.read_bytes()
    r = await api.client.get(f"/api/images/{gone.id}/fits", headers=auth(c.api_key))
    assert r.status_code == 404 and r.json()["error"]["code"] == "fits_not_found"
    assert "M42_L_2.fit" in r.json()["error"]["message"]
