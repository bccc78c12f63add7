"""The support console in a real browser, on the real stack (worker, simulator): a support member
finds a customer's order by e-mail, status and target, opens it, adjusts the customer's credits
with a reason (once per form; never their own account; above the limit only for admins) and aborts
the order with a reason — settled as a support abort."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

import httpx
import pytest
from playwright.async_api import expect
from sqlmodel import select

from api.services.customers import create_customer_with_key
from billing.ledger import Ledger
from models.db import LedgerEntry, Order, ShotDone
from tests.web.conftest import WebApp, new_email, screenshot
from tests.web.pages import PASSWORD, grant_credits, sign_in
from web.accounts import set_password

pytestmark = pytest.mark.e2e


async def _balance(web: WebApp, cid: int) -> int:
    return (await Ledger(web.engine).balances(cid)).pack


async def test_support_finds_adjusts_and_aborts_an_order(web_stack: WebApp, page):
    web = web_stack
    async with web.sessionmaker() as s:
        staff = await create_customer_with_key(s, email=new_email(), role="support")
        await set_password(s, staff.customer_id, PASSWORD)
        customer = await create_customer_with_key(s, email=new_email(), plan="nebula")
    await grant_credits(web, customer.customer_id, 5)
    async with httpx.AsyncClient(base_url=web.url, headers={"Authorization": f"Bearer {customer.api_key}"},
                                 timeout=60) as api:
        r = await api.post("/api/orders", json={"target_name": "M42", "priority": 1,
                                                "shots": [{"filter": "L", "exposure": 60, "quantity": 60}]})
    assert r.status_code == 201, r.text
    order_id = r.json()["id"]

    assert await sign_in(page, web.url, staff.email, PASSWORD) in (200, 303)
    await page.get_by_role("link", name="Support").click()
    assert await page.title() == "Support console · Stellar"
    await page.get_by_label("Customer (id or e-mail)").fill(customer.email.split("@")[0])
    await page.get_by_label("Target").fill("m42")
    rows = page.get_by_test_id("support-order")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-order-id", str(order_id))
    await page.get_by_label("Status").select_option("completed")
    await expect(rows).to_have_count(0)
    await page.get_by_label("Status").select_option("")
    await expect(rows).to_have_count(1)
    await screenshot(page, "support-search")
    await rows.first.get_by_role("link", name=str(order_id)).click()
    await page.wait_for_url(f"{web.url}/app/support/orders/{order_id}")
    await expect(page.get_by_test_id("support-customer")).to_contain_text(customer.email)

    # Credits: +3 with a reason; the same form sent twice moves them once.
    before = await _balance(web, customer.customer_id)
    await page.get_by_label("Credits (negative to take away)").fill("3")
    await page.get_by_label("Reason (kept in the ledger)").fill("ticket 42: cloudy night")
    await page.get_by_role("button", name="Adjust").click()
    ok = page.get_by_test_id("support-adjust-ok")
    await ok.wait_for()
    await page.get_by_role("button", name="Adjust").click()
    await page.get_by_text("already done: this form was sent before").wait_for()
    assert await _balance(web, customer.customer_id) == before + 3
    async with web.sessionmaker() as s:
        entry = (await s.exec(select(LedgerEntry).where(LedgerEntry.customer_id == customer.customer_id,
                                                        LedgerEntry.actor == f"support:{staff.email}"))).one()
    assert entry.kind == "adjustment" and entry.amount == 3 and entry.reason == "ticket 42: cloudy night"
    # Above the support limit: only admins (the API's rule and message).
    await page.reload()
    await page.get_by_label("Credits (negative to take away)").fill(str(web.settings.api.support_adjust_limit + 1))
    await page.get_by_label("Reason (kept in the ledger)").fill("big gesture")
    await page.get_by_role("button", name="Adjust").click()
    await expect(page.get_by_test_id("support-error")).to_have_attribute("data-code", "admin_required")
    # Never one's own account.
    r = await page.request.post(f"{web.url}/app/support/customers/{staff.customer_id}/credits",
                                headers={"X-CSRF-Token": await _csrf(page)},
                                form={"amount": "5", "reason": "me", "idem": "self-1"})
    assert r.status == 403 and "staff cannot adjust their own account" in await r.text()

    # Abort with a reason: the confirmation states the credits, the workflow settles a support abort.
    async with asyncio.timeout(120):  # once a frame is in, so the page has one to show
        while True:
            async with web.sessionmaker() as s:
                if (await s.exec(select(ShotDone.id).where(ShotDone.order_id == order_id))).first():
                    break
            await asyncio.sleep(0.5)
    await page.reload()
    assert "credits" in await page.get_by_test_id("abort-refund").inner_text()
    # An empty reason is refused by the browser: no request leaves (counted once the real abort has
    # answered — a count of answers read right after the click could not fail).
    aborts = []
    page.on("request", lambda r: aborts.append(r) if r.method == "POST" and r.url.endswith("/abort") else None)
    reason = page.get_by_label("Reason (the customer sees it)")
    await page.get_by_role("button", name="Abort the order").click()
    assert await reason.evaluate("box => box.validity.valueMissing")
    await reason.fill("telescope maintenance tonight")
    await page.get_by_role("button", name="Abort the order").click()
    await page.get_by_test_id("support-abort-ok").wait_for(timeout=30_000)
    sent = [parse_qs(a.post_data or "").get("reason") for a in aborts]
    assert sent == [["telescope maintenance tonight"]], sent
    await screenshot(page, "support-order-aborted")
    async with asyncio.timeout(120):
        while True:
            async with web.sessionmaker() as s:
                order = await s.get(Order, order_id)
            if order.status in {"aborted", "partial", "completed"}:
                break
            await asyncio.sleep(0.5)
    assert order.status == "aborted"
    assert order.aborted_by == f"support:{staff.email}" and order.abort_reason == "telescope maintenance tonight"
    await page.reload()
    assert await page.get_by_test_id("status").get_attribute("data-status") == "aborted"
    # The customer's frame previews show to staff (the console's own preview route).
    preview = page.locator("[data-testid=frame] img").first
    await preview.wait_for()
    assert await preview.evaluate("img => img.complete && img.naturalWidth > 0")
    assert await page.locator("[data-testid=hfd-chart] .hfd-point").count() >= 1


async def _csrf(page) -> str:
    return await page.locator("input[name=csrf_token]").first.input_value()
