"""Mosaic and Set fields of the new-order form and the Sets page, in a real browser: a Quasar
customer creates a Set on the Sets page and orders a 2×2 mosaic into it (the price before submit is
the estimate API's); the order page shows each panel's progress and the gallery filters by panel; a
Nebula customer sees mosaic and Set disabled naming Quasar; a quantity that does not divide by the
panel count is refused beside its field (docs/mosaics.md, docs/sets.md)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

import httpx
from playwright.async_api import expect
from sqlmodel import select

from api.security import issue_key
from models.db import CustomerSet, Order, OrderPanel, OrderShot, ShotDone, Subscription
from tests.web.conftest import WebApp, new_email, screenshot
from tests.web.pages import customer_id, grant_credits, sign_up


async def _subscribed(web: WebApp, page, plan: str, credits: int) -> int:
    email = new_email()
    await sign_up(page, web.url, email)
    cid = await customer_id(web, email)
    now = datetime.now(timezone.utc)
    async with web.sessionmaker() as s:  # a manual (invoiced) plan: no Stripe needed
        s.add(Subscription(customer_id=cid, plan=plan, status="active", monthly_credits=0,
                           current_period_start=now, current_period_end=now + timedelta(days=30)))
        await s.commit()
    await grant_credits(web, cid, credits)
    return cid


async def _fill_shot(page, target: str, exposure: str, quantity: str) -> None:
    await page.get_by_label("Target (catalogue name, e.g. M42, NGC 7000)").fill(target)
    await page.locator("#exposure_0").fill(exposure)
    await page.locator("#quantity_0").fill(quantity)


async def test_a_quasar_customer_orders_a_2x2_mosaic_into_a_set_made_on_the_sets_page(web: WebApp, page):
    cid = await _subscribed(web, page, "quasar", 500)
    await page.goto(f"{web.url}/app/sets")
    assert await page.title() == "My sets · Stellar"
    await page.get_by_label("Set name").fill("Winter nebulae")
    await page.get_by_role("button", name="Create the set").click()
    rows = page.get_by_test_id("set-row")
    await page.locator("[data-testid=set-row][data-name='Winter nebulae']").wait_for()
    await expect(rows).to_have_count(2)
    assert await rows.first.get_attribute("data-name") != "Winter nebulae"
    # The API's rule and message: a live name already used is refused, nothing created.
    await page.get_by_label("Set name").fill("winter NEBULAE")
    await page.get_by_role("button", name="Create the set").click()
    await expect(page.get_by_test_id("sets-error")).to_contain_text("you already have a set named 'winter NEBULAE'")
    await expect(rows).to_have_count(2)  # on the page that answered the refusal
    await screenshot(page, "sets-created")
    async with web.sessionmaker() as s:
        winter = (await s.exec(select(CustomerSet).where(CustomerSet.customer_id == cid,
                                                         CustomerSet.name == "Winter nebulae"))).one()

    await page.goto(f"{web.url}/app/orders/new")
    assert await page.get_by_test_id("needs-mosaics").count() == 0
    assert await page.get_by_test_id("needs-sets").count() == 0
    options = page.locator("#set_id option")
    assert "(default)" in await options.first.inner_text()
    assert await options.nth(1).inner_text() == "Winter nebulae"
    await page.get_by_label("Set", exact=True).select_option(label="Winter nebulae")
    await _fill_shot(page, "IC 1396", "600", "40")
    await page.get_by_label("Image a mosaic of panels around the target").check()
    await page.get_by_label("Columns (1–5)").fill("2")
    await page.get_by_label("Rows (1–5)").fill("2")
    await page.get_by_label("Overlap (percent, 0–50)").fill("15")
    price = page.get_by_test_id("price-credits")
    await price.wait_for(timeout=30_000)
    await page.get_by_test_id("altitude-chart").wait_for()

    # The same order through the estimate API, with a key of this customer.
    async with web.sessionmaker() as s:
        _, key = await issue_key(s, cid, "customer")
        await s.commit()
    body = {"target": {"priority": 0, "shots": [{"filter": "L", "exposure": 600, "quantity": 40}],
                       "mosaic": {"columns": 2, "rows": 2, "overlap_percent": 15, "rotation_deg": 0}}}
    async with httpx.AsyncClient(base_url=web.url, timeout=30) as http:
        answer = await http.post("/api/pricing/estimate", json=body, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    estimated = answer.json()["estimation"]["final_cost"]
    # The last change's preview may still be on its way.
    await expect(price).to_have_text(str(estimated), timeout=30_000)
    await screenshot(page, "new-order-mosaic-2x2")

    await page.get_by_role("button", name="Order", exact=True).click()
    await page.wait_for_url(re.compile(r".*/app/orders/\d+$"), timeout=60_000)
    order_id = int(page.url.rsplit("/", 1)[1])
    async with web.sessionmaker() as s:
        order = await s.get(Order, order_id)
        panels = (await s.exec(select(OrderPanel).where(OrderPanel.order_id == order_id)
                               .order_by(OrderPanel.panel_index))).all()
    assert order.customer_id == cid and order.set_id == winter.id and order.cost == estimated
    assert order.mosaic["columns"] == 2 and order.mosaic["rows"] == 2 and order.mosaic["overlap_percent"] == 15
    assert [p.name for p in panels] == ["IC 1396 P1-1", "IC 1396 P2-1", "IC 1396 P1-2", "IC 1396 P2-2"]

    panel_rows = page.get_by_test_id("panel-row")
    assert await panel_rows.count() == 4
    assert "IC 1396 P2-1" in await panel_rows.nth(1).inner_text()
    assert "0 / 10" in await panel_rows.nth(1).inner_text()  # 40 frames over 4 panels

    # Three frames of panel P2-1 arrive (as the workflow would ingest them: its shot line's GUID).
    async with web.sessionmaker() as s:
        line = (await s.exec(select(OrderShot).where(OrderShot.order_id == order_id,
                                                     OrderShot.panel_index == 1))).one()
        line.shot_guid = str(uuid.uuid4())
        s.add(line)
        for i, accepted in enumerate((True, True, False)):
            s.add(ShotDone(order_id=order_id, session_guid=str(uuid.uuid4()), shot_done_guid=str(uuid.uuid4()),
                           shot_guid=line.shot_guid, filter="L", exposure=600.0, hfd=2.0 + i, accepted=accepted,
                           filename=f"p2-1-{i}.fit", taken_at=datetime.now(timezone.utc)))
        await s.commit()
    await page.reload()
    cells = [await c.inner_text() for c in await panel_rows.nth(1).locator("td").all()]
    assert cells[1:4] == ["3 / 10", "2", "20"] and cells[4] == "L 3/10"  # 2 accepted × 600 s = 20 min
    assert "0 / 10" in await panel_rows.nth(0).inner_text()
    await screenshot(page, "order-mosaic-panels")

    await panel_rows.nth(1).get_by_role("link").click()
    await page.wait_for_url(re.compile(r".*/gallery\?panel=1$"))
    assert await page.get_by_label("Panel").input_value() == "1"
    assert [await o.inner_text() for o in await page.locator("#gallery-panel option").all()][1:] == \
        [p.name for p in panels]
    frames = page.get_by_test_id("gallery-frame")
    await expect(frames).to_have_count(3)
    assert {await f.inner_text() for f in await page.get_by_test_id("frame-panel").all()} == {"IC 1396 P2-1"}
    await screenshot(page, "gallery-mosaic-panel")
    await page.get_by_label("Panel").select_option(label="IC 1396 P1-1")  # htmx swaps the grid
    await page.wait_for_url(re.compile(r".*panel=0"))
    await page.get_by_test_id("gallery-count").filter(has_text="0 of 3 frames").wait_for()

    # The Set now holds an open order: it cannot be deleted (the API's rule and message).
    await page.goto(f"{web.url}/app/sets")
    row = page.locator(f"[data-testid=set-row][data-set-id='{winter.id}']")
    await row.get_by_role("button", name="Pause").click()
    await page.locator(f"[data-testid=set-row][data-set-id='{winter.id}'][data-paused='true']").wait_for()
    await row.get_by_role("button", name="Delete").click()
    await expect(row.get_by_test_id("set-error")).to_contain_text("still holds 1 order(s) that have not ended")
    await row.get_by_label("New name").fill("Winter mosaics")
    await row.get_by_role("button", name="Rename").click()
    await page.locator(f"[data-testid=set-row][data-set-id='{winter.id}'][data-name='Winter mosaics']").wait_for()
    await screenshot(page, "sets-paused-renamed")


async def test_a_nebula_customer_sees_mosaic_and_set_disabled_naming_quasar(web: WebApp, page):
    await _subscribed(web, page, "nebula", 50)
    await page.goto(f"{web.url}/app/orders/new")
    assert await page.get_by_test_id("needs-mosaics").inner_text() == "needs Quasar"
    assert await page.get_by_test_id("needs-sets").inner_text() == "needs Quasar"
    for field in ("#mosaic_on", "#mosaic_columns", "#mosaic_rows", "#mosaic_overlap_percent", "#mosaic_rotation_deg",
                  "#set_id"):
        assert await page.locator(field).is_disabled(), field
    await screenshot(page, "new-order-nebula-mosaic-locked")
    await page.goto(f"{web.url}/app/sets")
    assert "included in the Quasar plan" in await page.get_by_test_id("sets-not-in-plan").inner_text()
    assert await page.get_by_test_id("set-row").count() == 0


async def test_a_quantity_that_does_not_split_over_the_panels_is_refused_beside_its_field(web: WebApp, page):
    cid = await _subscribed(web, page, "quasar", 500)
    await page.goto(f"{web.url}/app/orders/new")
    await page.get_by_label("Image a mosaic of panels around the target").check()
    await page.get_by_label("Columns (1–5)").fill("3")
    await page.get_by_label("Rows (1–5)").fill("2")
    await _fill_shot(page, "M42", "300", "40")
    error = page.get_by_test_id("error-shots.0.quantity")
    refusal = "40 frames do not split evenly over 6 panels; nearest valid quantities: 36 or 42"
    await expect(error).to_have_text(refusal, timeout=30_000)  # previews of the half-typed form come first
    await expect(page.get_by_test_id("price")).to_have_count(0)
    await expect(page.locator("#submit-order")).to_be_disabled()
    await screenshot(page, "new-order-mosaic-quantity")
    await page.locator("#quantity_0").fill("42")
    await page.get_by_test_id("price-credits").wait_for(timeout=30_000)
    await expect(error).to_have_text("")
    async with web.sessionmaker() as s:  # the previews wrote nothing
        assert (await s.exec(select(Order).where(Order.customer_id == cid))).first() is None

    # The Sets page's forms carry the CSRF token: a post without it is refused, nothing created.
    refused = await page.request.post(f"{web.url}/app/sets", form={"name": "Forged"})
    assert refused.status == 403
    async with web.sessionmaker() as s:
        assert (await s.exec(select(CustomerSet).where(CustomerSet.customer_id == cid,
                                                       CustomerSet.name == "Forged"))).first() is None
