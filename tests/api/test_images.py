"""Frames: list, JPG preview, FITS streaming or a 404 with the reason."""

from __future__ import annotations

from tests.api.conftest import auth


async def test_images_list_jpg_and_fits(api):
    c = await api.customer(plan="nebula")  # live previews of a running order: the dashboard
    order = await api.insert_order(c.customer_id, shots=[("Ha", 300.0, 2)])
    jpg_dir = api.settings.images.jpg_dir / f"order_{order.id}"
    jpg_dir.mkdir(parents=True)
    (jpg_dir / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0JPEGDATA")
    fits_dir = api.settings.images.fit_dir / "M42"
    fits_dir.mkdir(parents=True)
    fits_bytes = b"SIMPLE  =                    T" + b" " * 2850
    (fits_dir / "M42_Ha_1.fit").write_bytes(fits_bytes)
    f1 = await api.insert_frame(order.id, filter="Ha", exposure=300, hfd=2.1, accepted=True,
                                jpg_path=str(jpg_dir / "a.jpg"), filename="M42_Ha_1.fit",
                                fits_path=r"C:\Users\obs\Documents\Voyager\FIT\M42\M42_Ha_1.fit")
    f2 = await api.insert_frame(order.id, filter="Ha", exposure=300, hfd=4.9, accepted=False,
                                filename="M42_Ha_2.fit", fits_path=r"C:\Voyager\FIT\M42\M42_Ha_2.fit")
    r = await api.client.get(f"/api/orders/{order.id}/images", headers=auth(c.api_key))
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["id"] for i in items] == [f1.id, f2.id] and r.json()["total"] == 2
    assert items[0]["jpg_url"] == f"/api/images/{f1.id}.jpg" and items[1]["jpg_url"] is None
    assert items[0]["accepted"] is True and items[1]["accepted"] is False

    r = await api.client.get(items[0]["jpg_url"], headers=auth(c.api_key))
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content.startswith(b"\xff\xd8")
    r = await api.client.get(f"/api/images/{f2.id}.jpg", headers=auth(c.api_key))
    assert r.status_code == 404 and r.json()["error"]["code"] == "image_not_available"

    r = await api.client.get(items[0]["fits_url"], headers=auth(c.api_key))
    assert r.status_code == 200 and r.content == fits_bytes
    assert r.headers["content-type"] == "application/fits"
    assert "M42_Ha_1.fit" in r.headers["content-disposition"]
    r = await api.client.get(f"/api/images/{f2.id}/fits", headers=auth(c.api_key))
    assert r.status_code == 404 and r.json()["error"]["code"] == "fits_not_found"


async def test_fits_is_404_with_a_reason_when_the_fit_directory_is_unreachable(make_api, tmp_path):
    async with make_api(images={"fit_dir": tmp_path / "not-mounted"}) as h:
        c = await h.customer()
        order = await h.insert_order(c.customer_id)
        frame = await h.insert_frame(order.id, filter="L", exposure=60, accepted=True, filename="x.fit",
                                     fits_path=r"D:\FIT\x.fit")
        r = await h.client.get(f"/api/images/{frame.id}/fits", headers=auth(c.api_key))
        assert r.status_code == 404
        err = r.json()["error"]
        assert err["code"] == "fits_dir_unreachable" and "not-mounted" in err["message"]
        assert r"D:\FIT\x.fit" in err["message"]


async def test_order_view_reports_progress_per_filter(api):
    c = await api.customer(plan="nebula")
    order = await api.insert_order(c.customer_id, shots=[("L", 60.0, 4), ("Ha", 300.0, 2)], cost=3)
    for hfd, accepted in [(2.0, True), (3.0, True), (6.0, False)]:
        await api.insert_frame(order.id, filter="L", exposure=60, hfd=hfd, accepted=accepted)
    await api.insert_frame(order.id, filter="Ha", exposure=300, hfd=2.5, accepted=True)
    r = await api.client.get(f"/api/orders/{order.id}", headers=auth(c.api_key))
    assert r.status_code == 200
    body = r.json()
    p = body["progress"]
    per = {f["filter"]: f for f in p["per_filter"]}
    assert per["L"] == {"filter": "L", "done": 3, "total": 4, "accepted": 2, "integration_seconds": 120.0,
                        "mean_hfd": 2.5}
    assert per["Ha"]["done"] == 1 and per["Ha"]["total"] == 2 and per["Ha"]["integration_seconds"] == 300.0
    assert (p["shots_done"], p["shots_total"], p["frames_accepted"], p["integration_seconds"]) == (4, 6, 3, 420.0)
    assert p["mean_hfd"] == round((2.5 * 2 + 2.5) / 3, 3)
    assert len(body["latest_frames"]) == 4 and body["latest_frames"][0]["filter"] == "Ha"
    assert body["credits"] == {"cost": 3, "held": 0, "captured": 0, "released": 0}
