"""The gallery in a real browser: filter by filter and by accepted/rejected (htmx, no reload), and
the order's zip of FITS files downloaded through the web session (another customer gets 404)."""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from astropy.io import fits
from PIL import Image
from playwright.async_api import expect

from core.frame_store import frame_key, frame_store, store_frame_file
from models.db import ShotDone
from tests.web.conftest import WebApp, new_email, screenshot
from tests.web.pages import customer_id, sign_up

FRAMES = [("L", True, 2.1), ("L", False, 5.2), ("R", True, 2.4), ("R", True, 2.6), ("Ha", False, 4.9)]


async def _order_with_frames(web: WebApp, cid: int) -> int:
    order = await web.insert_order(cid)
    fit_dir = Path(web.settings.images.fit_dir)
    fit_dir.mkdir(parents=True, exist_ok=True)
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    async with web.sessionmaker() as s:
        for i, (name, accepted, hfd) in enumerate(FRAMES):
            filename = f"o{order.id}-{i}-{name}.fits"
            hdu = fits.PrimaryHDU(np.zeros((8, 8), dtype=np.uint16))
            hdu.header["OBJECT"], hdu.header["FILTER"] = "M42", name
            hdu.writeto(fit_dir / filename)
            s.add(ShotDone(order_id=order.id, session_guid=str(uuid.uuid4()), shot_done_guid=str(uuid.uuid4()),
                           filter=name, exposure=60.0, hfd=hfd, filename=filename, fits_path=filename,
                           taken_at=start + timedelta(minutes=2 * i), accepted=accepted))
        await s.commit()
    return order.id


async def test_gallery_filters_and_the_zip_of_fits(web: WebApp, page, tmp_path):
    email = new_email()
    await sign_up(page, web.url, email)
    order_id = await _order_with_frames(web, await customer_id(web, email))
    await page.goto(f"{web.url}/app/orders/{order_id}/gallery")
    frames = page.get_by_test_id("gallery-frame")
    assert await frames.count() == len(FRAMES)
    await page.evaluate("window.__notReloaded = true")

    await page.get_by_label("Filter", exact=True).select_option("L")
    await expect(frames).to_have_count(2)
    await page.get_by_label("Frames", exact=True).select_option("rejected")
    await expect(frames).to_have_count(1)  # only the answer to both choices lists one frame
    assert await frames.first.get_attribute("data-filter") == "L"
    assert await frames.first.get_attribute("data-accepted") == "false"
    assert await page.evaluate("window.__notReloaded === true")  # htmx swapped the grid
    # The filtered view has its own address (htmx's history push: the test sees it as an event).
    await expect(page).to_have_url(re.compile(r"filter=L&state=rejected$"))
    await screenshot(page, "gallery-filtered")
    await page.set_viewport_size({"width": 390, "height": 844})  # phone width: no sideways scrolling
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await page.set_viewport_size({"width": 1100, "height": 900})
    await page.get_by_label("Filter", exact=True).select_option("")
    await expect(frames).to_have_count(2)

    async with page.expect_download() as info:
        await page.get_by_test_id("zip-link").click()
    path = tmp_path / "frames.zip"
    await (await info.value).save_as(path)
    with zipfile.ZipFile(path) as zf:
        names = sorted(n for n in zf.namelist() if n.startswith("fits/"))
        assert len(names) == len(FRAMES)
        with zf.open(names[0]) as f, fits.open(f) as hdul:
            assert hdul[0].header["OBJECT"] == "M42"

    # Another customer: the zip, like the pages, is 404.
    await page.context.clear_cookies()
    await sign_up(page, web.url, new_email())
    assert (await page.request.get(f"{web.url}/app/orders/{order_id}/frames.zip")).status == 404
    assert (await page.request.get(f"{web.url}/app/orders/{order_id}/abort-confirm")).status == 404
    assert (await page.goto(f"{web.url}/app/orders/{order_id}")).status == 404
    # …and the support console is not theirs either.
    assert (await page.goto(f"{web.url}/app/support")).status == 403
    assert (await page.goto(f"{web.url}/app/support/orders/{order_id}")).status == 403


async def test_rejected_only_lists_the_rejected_frames_voyager_deleted(web: WebApp, page):
    """As the ingest records them: a rejected frame is deleted by Voyager and keeps no FITS; the
    gallery still lists it (filter, time, HFD, "rejected"), with no image and nothing to download."""
    email = new_email()
    await sign_up(page, web.url, email)
    order = await web.insert_order(await customer_id(web, email))
    taken = datetime(2026, 3, 1, 21, 30, tzinfo=timezone.utc)
    async with web.sessionmaker() as s:
        for accepted, hfd in ((True, 2.2), (False, 6.4)):
            s.add(ShotDone(order_id=order.id, session_guid=str(uuid.uuid4()), shot_done_guid=str(uuid.uuid4()),
                           filter="Ha", exposure=300.0, hfd=hfd, filename=f"o{order.id}-{hfd}.fits",
                           taken_at=taken, accepted=accepted, is_deleted=not accepted))
        await s.commit()

    await page.goto(f"{web.url}/app/orders/{order.id}/gallery?state=rejected")
    frames = page.get_by_test_id("gallery-frame")
    assert await frames.count() == 1
    rejected = frames.first
    assert (await rejected.get_attribute("data-filter"), await rejected.get_attribute("data-accepted")) == ("Ha", "false")
    text = await rejected.inner_text()
    assert "HFD 6.4" in text and "rejected" in text and "Mar 1, 2026" in text
    assert await rejected.get_by_test_id("frame-deleted").count() == 1
    assert await rejected.locator("img").count() == 0 and await rejected.get_by_test_id("fits-link").count() == 0
    await page.get_by_test_id("gallery-count").filter(has_text="1 of 2 frames").wait_for()

    await page.get_by_label("Frames", exact=True).select_option("")
    await expect(frames).to_have_count(2)
    await expect(page.get_by_test_id("fits-link")).to_have_count(1)  # the accepted frame's


async def test_a_rejected_frame_whose_jpg_was_kept_shows_its_image_and_no_fits(web: WebApp, page):
    """Voyager deleted the rejected frame's FITS, but the ingest stored its JPG preview (``jpg_key``,
    docs/frames.md): "Rejected only" shows that image; the FITS link and header stay away."""
    email = new_email()
    await sign_up(page, web.url, email)
    order = await web.insert_order(await customer_id(web, email))
    guid = str(uuid.uuid4())
    jpg = io.BytesIO()
    Image.new("RGB", (40, 30), (90, 20, 20)).save(jpg, "JPEG")
    stored = store_frame_file(frame_store(web.settings), frame_key(order.id, guid, "jpg"), jpg.getvalue())
    async with web.sessionmaker() as s:
        s.add(ShotDone(order_id=order.id, session_guid=str(uuid.uuid4()), shot_done_guid=guid, filter="OIII",
                       exposure=300.0, hfd=7.3, filename=f"o{order.id}-rejected.fits", jpg_key=stored.key,
                       jpg_sha256=stored.sha256, taken_at=datetime.now(timezone.utc), accepted=False,
                       is_deleted=True))
        await s.commit()

    await page.goto(f"{web.url}/app/orders/{order.id}/gallery?state=rejected")
    frame = page.get_by_test_id("gallery-frame")
    assert await frame.count() == 1 and await frame.get_attribute("data-accepted") == "false"
    image = frame.locator("img")
    assert await image.count() == 1
    await page.wait_for_function("document.querySelector('[data-testid=gallery-frame] img').complete")
    assert await image.evaluate("img => img.naturalWidth") == 40  # the stored JPG, served to its owner
    assert "only its preview is kept" in await frame.get_by_test_id("frame-deleted").inner_text()
    assert await frame.get_by_test_id("fits-link").count() == 0 and await frame.get_by_test_id("fits-header").count() == 0
    src = await image.get_attribute("src")
    assert (await page.request.get(f"{web.url}{src}")).headers["content-type"] == "image/jpeg"
    image_id = src.removeprefix("/app/images/").removesuffix(".jpg")
    assert (await page.request.get(f"{web.url}/app/images/{image_id}/fits")).status == 404  # no FITS of it

    await page.context.clear_cookies()  # another customer gets no preview of it
    await sign_up(page, web.url, new_email())
    assert (await page.request.get(f"{web.url}{src}")).status == 404
