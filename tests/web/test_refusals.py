"""What the web app refuses, seen from a real browser: another customer's order, a form without
its CSRF token, a sixth sign-in after five wrong passwords."""

from __future__ import annotations

from sqlmodel import select

from models.db import Customer
from tests.web.conftest import WebApp, new_email, screenshot
from tests.web.pages import PASSWORD, sign_in, sign_up


async def _customer_id(web: WebApp, email: str) -> int:
    async with web.sessionmaker() as s:
        return (await s.exec(select(Customer.id).where(Customer.email == email))).one()


async def test_another_customers_order_page_is_404(web: WebApp, page):
    owner = new_email()
    await sign_up(page, web.url, owner)
    order = await web.insert_order(await _customer_id(web, owner))
    assert (await page.goto(f"{web.url}/app/orders/{order.id}")).status == 200
    # A Stardust order: progress on refresh, no live stream (the plan's dashboard feature).
    assert await page.get_by_test_id("refresh-note").count() == 1
    assert await page.locator("[sse-connect]").count() == 0
    await page.context.clear_cookies()

    await sign_up(page, web.url, new_email())
    response = await page.goto(f"{web.url}/app/orders/{order.id}")
    assert response.status == 404
    assert await page.get_by_test_id("error").get_attribute("data-code") == "not_found"
    assert (await page.goto(f"{web.url}/app/orders/{order.id}/gallery")).status == 404
    await screenshot(page, "order-of-another-customer")


async def test_a_form_without_its_csrf_token_is_refused(web: WebApp, page):
    await sign_up(page, web.url, new_email())
    # The browser's own cookies (a signed-in session), but no token: as a forged cross-site form would.
    r = await page.request.post(f"{web.url}/app/account/keys", form={"x": "1"})
    assert r.status == 403 and "csrf_refused" in await r.text()
    wrong = await page.request.post(f"{web.url}/app/account/keys", form={"csrf_token": "forged"})
    assert wrong.status == 403
    await page.goto(f"{web.url}/app/account")
    assert await page.get_by_test_id("new-key").count() == 0
    # The same form with its token works.
    await page.get_by_role("button", name="Create a key").click()
    assert (await page.get_by_test_id("new-key").inner_text()).count("sk_") == 1
    await screenshot(page, "account-new-key")


async def test_five_wrong_passwords_lock_sign_in(web: WebApp, page):
    email = new_email()
    await sign_up(page, web.url, email)
    await page.context.clear_cookies()
    for _ in range(5):
        assert await sign_in(page, web.url, email, "not the password") == 401
    # Even the right password is refused now.
    assert await sign_in(page, web.url, email, PASSWORD) == 429
    assert "Too many wrong passwords" in await page.get_by_test_id("sign-in-error").inner_text()
    await screenshot(page, "sign-in-locked")
    assert "/app/sign-in" in page.url
