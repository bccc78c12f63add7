"""The new-order page in a real browser: options the plan does not allow are disabled and name the
plan that unlocks them; an order placed by RA/Dec typed in sexagesimal (astropy parses it; a bad
value is refused beside its field), with the price and the night's chart before submit."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, timezone

from playwright.async_api import expect

from models.db import Order, Subscription
from tests.web.conftest import WebApp, new_email, screenshot
from tests.web.pages import customer_id, grant_credits, sign_up


async def test_options_the_plan_does_not_allow_are_disabled_with_the_plan_that_unlocks_them(web: WebApp, page):
    await sign_up(page, web.url, new_email())  # no subscription: Stardust rules
    await page.goto(f"{web.url}/app/orders/new")
    assert await page.title() == "New order · Stellar"
    priority = page.get_by_label("Priority")
    assert await priority.locator("option[value='1']").is_enabled()
    two = priority.locator("option[value='2']")
    assert await two.is_disabled() and "needs Nebula" in await two.inner_text()
    assert "needs Quasar" in await priority.locator("option[value='3']").inner_text()
    assert await page.get_by_test_id("needs-c_moon_down").inner_text() == "needs Nebula"
    assert await page.get_by_test_id("needs-repeat").inner_text() == "needs Nebula"
    assert await page.get_by_test_id("needs-c_hfd_mean_limit").inner_text() == "needs Quasar"
    assert await page.locator("#c_moon_down").is_disabled()
    assert await page.locator("#c_hfd_mean_limit").is_disabled() and await page.locator("#repeat").is_disabled()
    await screenshot(page, "new-order-stardust-locked")


async def test_quasar_unlocks_the_hfd_slider_and_repeat_and_the_price_follows(web: WebApp, page):
    email = new_email()
    await sign_up(page, web.url, email)
    cid = await customer_id(web, email)
    now = datetime.now(timezone.utc)
    async with web.sessionmaker() as s:  # a manual (invoiced) Quasar plan: no Stripe needed
        s.add(Subscription(customer_id=cid, plan="quasar", status="active", monthly_credits=150,
                           current_period_start=now, current_period_end=now + timedelta(days=30)))
        await s.commit()
    await grant_credits(web, cid, 50)
    await page.goto(f"{web.url}/app/orders/new")
    assert await page.get_by_test_id("needs-c_hfd_mean_limit").count() == 0
    assert await page.locator("#c_moon_down").is_checked()  # always moon-down with Quasar
    await page.get_by_label("Target (catalogue name, e.g. M42, NGC 7000)").fill("M42")
    await page.locator("#exposure_0").fill("300")
    await page.locator("#quantity_0").fill("12")
    price = page.get_by_test_id("price-credits")
    await price.wait_for(timeout=30_000)  # only a complete shot line is priced: this is the standard price
    standard = int(await price.inner_text())
    await page.get_by_label("My own HFD limit").check()
    slider = page.get_by_label("HFD limit (px): frames above it are rejected and not charged")
    await slider.focus()
    for _ in range(15):  # 4.0 → 2.5 px with the keyboard
        await page.keyboard.press("ArrowLeft")
    await expect(page.get_by_test_id("hfd-value")).to_have_text("2.5")
    await page.get_by_label("Repeat: runs of the shot list, one per night").fill("2")
    async with asyncio.timeout(30):
        while int(await price.inner_text()) <= 2 * standard:
            await asyncio.sleep(0.2)
    # Two runs at a custom 2.5 px cost more than twice one run at the free standard limit.
    assert int(await price.inner_text()) > 2 * standard
    await screenshot(page, "new-order-quasar-hfd")


async def test_an_order_by_ra_dec_in_sexagesimal(web: WebApp, page):
    email = new_email()
    await sign_up(page, web.url, email)
    cid = await customer_id(web, email)
    await grant_credits(web, cid, 10)
    await page.goto(f"{web.url}/app/orders/new")
    await page.get_by_label("By coordinates (RA/Dec J2000)").check()
    await page.get_by_label("Target (catalogue name, e.g. M42, NGC 7000)").fill("Trapezium field")
    await page.locator("#exposure_0").fill("60")
    await page.locator("#quantity_0").fill("5")
    await page.get_by_label("Right ascension (J2000)").fill("25h10m")
    await page.get_by_label("Declination (J2000)").fill("-05d23m28s")
    error = page.get_by_test_id("error-ra_j2000")
    # The span is there from the start and earlier previews (RA still empty) fill it with "give the
    # right ascension": wait for the answer to the 25 h, not for the element.
    await expect(error).to_contain_text("right ascension must be 0–24 h", timeout=30_000)
    await screenshot(page, "new-order-bad-ra")

    await page.get_by_label("Right ascension (J2000)").fill("05h35m17.3s")
    price = page.get_by_test_id("price-credits")
    await price.wait_for(timeout=30_000)
    await page.get_by_test_id("altitude-chart").wait_for()
    await expect(error).to_have_text("")
    await expect(page.locator("#submit-order")).to_be_enabled()
    await screenshot(page, "new-order-ra-dec")
    await page.get_by_role("button", name="Order", exact=True).click()
    await page.wait_for_url(re.compile(r".*/app/orders/\d+$"), timeout=60_000)
    order_id = int(page.url.rsplit("/", 1)[1])
    async with web.sessionmaker() as s:
        order = await s.get(Order, order_id)
    assert order.customer_id == cid and order.target_name == "Trapezium field"
    assert abs(order.ra_j2000 - (5 + 35 / 60 + 17.3 / 3600)) < 1e-6
    assert abs(order.dec_j2000 - -(5 + 23 / 60 + 28 / 3600)) < 1e-6


async def test_the_chart_judges_moon_down_as_the_order_runs_on_a_plan_without_it(web: WebApp, page):
    """Moon-down sent by a customer whose plan has none (a page opened under Nebula, a lapsed plan):
    the form refuses it beside the box, and its chart shows the night without moon-down, as the plan
    gate sends the order (``C_MoonDown`` false) — the chart used to judge it by the box."""
    email = new_email()
    await sign_up(page, web.url, email)  # no subscription: Stardust rules
    cid = await customer_id(web, email)
    await grant_credits(web, cid, 10)
    await page.goto(f"{web.url}/app/orders/new")
    await page.get_by_label("Target (catalogue name, e.g. M42, NGC 7000)").fill("M42")
    await page.locator("#exposure_0").fill("60")
    await page.locator("#quantity_0").fill("5")
    chart = page.get_by_test_id("altitude-chart")
    await expect(chart).to_have_attribute("data-moon-down", "false", timeout=30_000)

    await page.evaluate("""() => { const box = document.getElementById('c_moon_down');
        box.disabled = false; box.checked = true; box.dispatchEvent(new Event('change', {bubbles: true})); }""")
    error = page.get_by_test_id("error-c_moon_down")
    await expect(error).to_contain_text("moon-down needs Nebula", timeout=30_000)
    # Read once, on purpose: the chart came in the same answer as the refusal (one swap), and no
    # other answer follows until the box changes again.
    assert await chart.get_attribute("data-moon-down") == "false"  # what the order runs with on this plan

    await page.evaluate("""() => { const box = document.getElementById('c_moon_down');
        box.checked = false; box.dispatchEvent(new Event('change', {bubbles: true})); }""")
    await expect(error).to_have_text("", timeout=30_000)
    await expect(page.locator("#submit-order")).to_be_enabled()
    await page.get_by_role("button", name="Order", exact=True).click()
    await page.wait_for_url(re.compile(r".*/app/orders/\d+$"), timeout=60_000)
    async with web.sessionmaker() as s:
        order = await s.get(Order, int(page.url.rsplit("/", 1)[1]))
    assert order.customer_id == cid and order.c_moon_down is False  # as the chart showed
