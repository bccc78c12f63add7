"""The new-order page says why an order cannot run before it is sent: not enough credits, or a
target that never rises high enough (the order button is then disabled). Nothing is ordered."""

from __future__ import annotations

from playwright.async_api import expect
from sqlmodel import select

from models.db import Order, Telescope
from tests.web.conftest import WebApp, new_email, screenshot
from tests.web.pages import sign_up


async def _fill(page, target: str) -> None:
    await page.get_by_label("Target (catalogue name, e.g. M42, NGC 7000)").fill(target)
    await page.locator("#exposure_0").fill("300")
    await page.locator("#quantity_0").fill("10")


async def test_unaffordable_and_infeasible_orders_say_why_before_submit(web: WebApp, page):
    # The page orders on ``any`` telescope: other tests of this database may have left southern
    # telescopes online, which can see 47 Tucanae. Only the reference observatory is online here.
    async with web.sessionmaker() as s:
        others = (await s.exec(select(Telescope).where(Telescope.slug != web.settings.orders.telescope,
                                                       Telescope.status == "online"))).all()
        for t in others:
            t.status = "maintenance"
        await s.commit()
        parked = [t.id for t in others]
    try:
        await _unaffordable_and_infeasible(web, page)
    finally:
        async with web.sessionmaker() as s:
            for t in (await s.exec(select(Telescope).where(Telescope.id.in_(parked)))).all():
                t.status = "online"
            await s.commit()


async def _unaffordable_and_infeasible(web: WebApp, page) -> None:
    await sign_up(page, web.url, new_email())  # no plan, no credits
    await page.goto(f"{web.url}/app/orders/new")
    await _fill(page, "M42")
    await page.get_by_test_id("unaffordable").wait_for(timeout=30_000)
    await expect(page.get_by_test_id("price-credits")).to_have_text("1")
    await expect(page.locator("#submit-order")).to_be_disabled()  # not enough credits
    await page.get_by_test_id("altitude-chart").wait_for()
    # At phone width the form and the chart fit the screen (no horizontal scrolling).
    await page.set_viewport_size({"width": 390, "height": 844})
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await screenshot(page, "new-order-phone")
    await page.set_viewport_size({"width": 1100, "height": 900})

    # The API's message appears next to the field it names.
    await page.get_by_label("Target (catalogue name, e.g. M42, NGC 7000)").fill("M999")
    await expect(page.get_by_test_id("error-target_name")).to_contain_text("catalogue", timeout=30_000)
    await page.get_by_label("Target (catalogue name, e.g. M42, NGC 7000)").fill("M42")
    await expect(page.get_by_test_id("error-target_name")).to_have_text("", timeout=30_000)  # the error clears
    # The plan gate: priority 3 is not for Stardust rules — offered disabled, naming the plan.
    three = page.get_by_label("Priority").locator("option[value='3']")
    assert await three.is_disabled() and "needs Quasar" in await three.inner_text()
    await screenshot(page, "new-order-field-errors")

    # 47 Tucanae (Dec −72°) never rises at the observatory (latitude 44° N): the API's reason is
    # beside the target, and the order cannot be sent.
    await _fill(page, "NGC 104")
    await expect(page.get_by_test_id("error-target_name")).to_contain_text("never rises", timeout=30_000)
    await expect(page.locator("#submit-order")).to_be_disabled()
    await expect(page.get_by_test_id("assigned-telescope")).to_have_count(0)
    await screenshot(page, "new-order-infeasible")

    # Sent anyway (by script, past the disabled button): the page answers again with the reason,
    # and no order is written (another test of this database may have ordered 47 Tucanae already).
    async def ngc104_orders() -> int:
        async with web.sessionmaker() as s:
            return len((await s.exec(select(Order).where(Order.target_name == "NGC 104"))).all())

    before = await ngc104_orders()
    async with page.expect_navigation():
        await page.evaluate("document.getElementById('order-form').submit()")
    await expect(page.get_by_test_id("error-target_name")).to_contain_text("never rises")
    assert await ngc104_orders() == before
