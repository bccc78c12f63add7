"""The customer journey in a real browser: sign up → subscribe to Nebula with the test card →
order M42 with the price and the night's chart in view → frames arrive live → abort → the credits
page shows hold, capture and release → the gallery lists the frames and a FITS file downloads →
cancel the subscription (credits usable until the period's end).

Everything is real: Chromium, the API process serving the web app on a loopback port, PostgreSQL,
the Temporal dev server with the real worker, localstripe, the Voyager simulator on a socket.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from astropy.io import fits
from playwright.async_api import expect

from tests.web.conftest import WebApp, new_email, screenshot
from tests.web.pages import sign_up

pytestmark = pytest.mark.e2e

LIVE_FRAMES = 3


async def test_sign_up_subscribe_order_watch_abort_and_download(web_stack: WebApp, page, tmp_path):
    base = web_stack.url
    await sign_up(page, base, new_email())

    # Plans side by side; subscribe to Nebula with Stripe's test card.
    assert await page.locator("section.plan").count() == 3
    await screenshot(page, "1-plans")
    nebula = page.locator("section.plan[data-plan=nebula]")
    await nebula.get_by_label("Test card number").fill("4242 4242 4242 4242")
    await nebula.get_by_role("button", name="Subscribe to Nebula").click(timeout=90_000)  # Stripe round trips: slow under load
    await page.wait_for_url(f"{base}/app/credits", timeout=90_000)
    assert await page.get_by_test_id("bucket-subscription").inner_text() == "60"

    # The new order: the price and the chart appear before any submit.
    await page.goto(f"{base}/app/orders/new")
    await page.get_by_label("Target (catalogue name, e.g. M42, NGC 7000)").fill("M42")
    await page.locator("#filter_0").select_option("L")
    await page.locator("#exposure_0").fill("120")
    await page.locator("#quantity_0").fill("60")
    await page.get_by_label("Priority").select_option("2")
    price = page.get_by_test_id("price-credits")
    await price.wait_for(timeout=30_000)
    await page.get_by_test_id("altitude-chart").wait_for()
    # 60 × (120 + 30) s = 2.5 h × 1.2 = 3 credits: long enough that an abort a few frames in
    # keeps part of the hold and releases the rest, even on a slow machine.
    await expect(price).to_have_text("3")  # the answer to the last change (priority 2) may follow
    await expect(page.get_by_test_id("next-window")).to_have_count(1)
    await expect(page.get_by_test_id("order-errors")).to_have_count(0)
    await screenshot(page, "2-new-order")
    await page.get_by_role("button", name="Order", exact=True).click(timeout=90_000)  # slow under load
    await page.wait_for_url(re.compile(r".*/app/orders/\d+$"), timeout=60_000)
    order_id = int(page.url.rsplit("/", 1)[1])

    # Frames arrive over SSE while the page stays loaded (a reload would drop the marker).
    await page.evaluate("window.__notReloaded = true")
    frames = page.get_by_test_id("frame")
    first = await frames.count()
    async with asyncio.timeout(180):
        while await frames.count() < first + LIVE_FRAMES:
            await asyncio.sleep(0.25)
    assert await page.evaluate("window.__notReloaded === true")
    await screenshot(page, "3-order-live")

    # The HFD chart follows the frames live: one dot per frame (accepted or rejected). The summary
    # carrying the chart is the stream's next message after a frame's card: wait for it.
    await page.wait_for_function(
        f"document.querySelectorAll('[data-testid=hfd-chart] .hfd-point').length >= {LIVE_FRAMES}", timeout=30_000)

    # Abort: the confirmation states what settling now would keep and refund (the settlement policy).
    await page.get_by_role("button", name="Abort").click()
    refund = page.get_by_test_id("abort-refund")
    await refund.wait_for(timeout=30_000)
    held, kept, refunded = map(int, re.findall(r"\d+", await refund.inner_text()))
    assert held == 3 and kept + refunded == held and refunded > 0, await refund.inner_text()
    await screenshot(page, "3b-abort-confirmation")
    await page.get_by_role("button", name="Yes, abort").click()
    await page.get_by_test_id("abort-ok").wait_for(timeout=30_000)
    status = page.get_by_test_id("status")
    async with asyncio.timeout(120):
        while await status.get_attribute("data-status") not in {"aborted", "partial", "completed"}:
            await asyncio.sleep(0.5)
    assert await status.get_attribute("data-status") == "aborted"
    assert await page.evaluate("window.__notReloaded === true")
    await screenshot(page, "4-order-aborted")

    # The credits page: the hold, what was captured and the release of the rest.
    await page.goto(f"{base}/app/credits")
    rows = page.locator(f"tr:has(a[href='/app/orders/{order_id}'])")
    kinds = {await r.get_attribute("data-kind") for r in await rows.all()}
    assert {"hold", "capture", "release"} <= kinds, kinds
    assert await page.get_by_test_id("held").inner_text() == "0"
    await screenshot(page, "5-credits")

    # The gallery and a FITS download that astropy opens.
    await page.goto(f"{base}/app/orders/{order_id}/gallery")
    assert await page.get_by_test_id("gallery-frame").count() >= LIVE_FRAMES
    header = page.get_by_test_id("fits-header").first
    await header.locator("summary").click()
    assert "OBJECT" in await header.inner_text() and "M42" in await header.inner_text()
    await screenshot(page, "6-gallery")
    async with page.expect_download() as info:
        await page.get_by_test_id("fits-link").first.click()
    download = await info.value
    path = tmp_path / download.suggested_filename
    await download.save_as(path)
    with fits.open(path) as hdul:
        assert hdul[0].header["NAXIS"] == 2 and hdul[0].data.size > 0

    # Cancelling keeps the plan and its credits until the period's end, and says until when.
    await page.goto(f"{base}/app/plans")
    await page.get_by_role("button", name="Cancel my subscription").click()
    await page.get_by_test_id("ends-at").wait_for(timeout=60_000)
    await expect(page.get_by_test_id("plan-notice")).to_contain_text("keep your credits")
    await screenshot(page, "7-plans-cancelled")
