"""The new-order page judges the telescope the order would run on, as ``POST /api/orders`` does
(docs/telescopes.md §2): with the reference (northern) telescope and a southern one online,
47 Tucanae on ``any`` shows the southern telescope and why, is priced with its multiplier and the
order is assigned to it; the same target on the northern telescope shows the API's refusal beside
the target and cannot be sent. A telescope in maintenance is not offered."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

import httpx
from playwright.async_api import expect
from sqlmodel import select

from api.security import issue_key
from models.db import Order, Telescope
from tests.web.conftest import WebApp, new_email, screenshot
from tests.web.pages import customer_id, grant_credits, sign_up

TARGET = "Target (catalogue name, e.g. M42, NGC 7000)"
#: The southern telescope's price multiplier: its price differs from the reference telescope's.
SOUTH_MULTIPLIER = Decimal("1.5")
#: A filter only the southern telescope has, and one only the telescope in maintenance has.
SOUTH_ONLY_FILTER, CLOSED_ONLY_FILTER = "Hb", "UV"


def _telescope(slug: str, name: str, site: str, latitude: float, longitude: float, status: str,
               extra_filter: str) -> Telescope:
    return Telescope(slug=slug, name=name, site_name=site, latitude=latitude, longitude=longitude, elevation=1500.0,
                     time_zone="America/Santiago", horizon_alt=10.0, aperture_mm=106.0, focal_length_mm=530.0,
                     sensor_width_px=6248, sensor_height_px=4176, pixel_size_um=3.76,
                     filters=[{"name": n, "index": i} for i, n in enumerate(["L", "R", "G", "B", "Ha", extra_filter])],
                     voyager_profile="south.v2y", price_multiplier=SOUTH_MULTIPLIER, status=status)


async def test_the_preview_assigns_prices_and_refuses_as_the_order_api(web: WebApp, page):
    run = uuid.uuid4().hex[:6]
    south, closed = f"south-{run}", f"closed-{run}"
    reference = web.settings.orders.telescope
    async with web.sessionmaker() as s:
        # Other tests' online telescopes are parked for this test and put back afterwards.
        others = (await s.exec(select(Telescope).where(Telescope.slug != reference,
                                                       Telescope.status == "online"))).all()
        for t in others:
            t.status = "maintenance"
        s.add(_telescope(south, f"Chile 106 {run}", "Chile", -30.2, -70.8, "online", SOUTH_ONLY_FILTER))
        s.add(_telescope(closed, f"Closed 106 {run}", "Closed site", -31.0, -70.0, "maintenance", CLOSED_ONLY_FILTER))
        await s.commit()
        parked = [t.id for t in others]
    try:
        await _assigned_priced_refused(web, page, reference, south, closed)
    finally:
        async with web.sessionmaker() as s:
            for t in (await s.exec(select(Telescope).where(Telescope.id.in_(parked)))).all():
                t.status = "online"
            for t in (await s.exec(select(Telescope).where(Telescope.slug.in_([south, closed])))).all():  # type: ignore[attr-defined]
                t.status = "retired"  # kept for the order's history, never assigned again
            await s.commit()


async def _preview_settled(page) -> None:
    """Until htmx has answered the last change (no preview request in flight)."""
    await page.wait_for_function("!document.querySelector('#order-form.htmx-request')", timeout=30_000)


async def _assigned_priced_refused(web: WebApp, page, reference: str, south: str, closed: str) -> None:
    email = new_email()
    await sign_up(page, web.url, email)
    cid = await customer_id(web, email)
    await grant_credits(web, cid, 20)
    await page.goto(f"{web.url}/app/orders/new")

    # The selector: any (the default), then the online telescopes; not the one in maintenance.
    select_ = page.get_by_label("Telescope", exact=True)
    values = await select_.locator("option").evaluate_all("options => options.map(o => o.value)")
    assert values[0] == "any" and await select_.input_value() == "any"
    assert reference in values and south in values and closed not in values
    # The shot lines offer the filters of the telescopes offered, not those of one in maintenance.
    filters = await page.locator("#filter_0 option").evaluate_all("options => options.map(o => o.value)")
    assert SOUTH_ONLY_FILTER in filters and CLOSED_ONLY_FILTER not in filters and "L" in filters

    await page.get_by_label(TARGET).fill("NGC 104")  # 47 Tucanae, Dec −72°
    await page.locator("#exposure_0").fill("300")
    await page.locator("#quantity_0").fill("10")
    assigned = page.get_by_test_id("assigned-telescope")
    on_south = page.locator(f"[data-testid=assigned-telescope][data-slug='{south}']")
    await on_south.wait_for(timeout=60_000)
    await _preview_settled(page)
    reason = await page.get_by_test_id("assignment-reason").inner_text()
    assert reason.startswith(f"any: {south} at Chile, next observable window "), reason
    assert "Chile" in await assigned.inner_text()
    await expect(page.get_by_test_id("error-target_name")).to_have_text("")
    await page.get_by_test_id("altitude-chart").wait_for()
    await page.get_by_test_id("next-window").wait_for()
    await expect(page.locator("#submit-order")).to_be_enabled()

    # The price is the estimate API's for the same target on any, which names the southern
    # telescope and its multiplier; the reference telescope's price is lower.
    shown = int(await page.get_by_test_id("price-credits").inner_text())
    assert "1.5" in await page.get_by_test_id("price-telescope").inner_text()
    async with web.sessionmaker() as s:
        _, key = await issue_key(s, cid, "customer")
        await s.commit()
    shots = [{"filter": "L", "exposure": 300, "quantity": 10}]
    async with httpx.AsyncClient(base_url=web.url, timeout=60, headers={"Authorization": f"Bearer {key}"}) as http:
        on_any = await http.post("/api/pricing/estimate", json={"target": {"target_name": "NGC 104", "shots": shots}})
        on_reference = await http.post("/api/pricing/estimate",
                                        json={"target": {"telescope": reference, "shots": shots}})
    assert on_any.status_code == 200 and on_reference.status_code == 200, (on_any.text, on_reference.text)
    assert on_any.json()["telescope"]["slug"] == south
    assert on_any.json()["estimation"]["multipliers"]["telescope"] == 1.5
    assert shown == on_any.json()["estimation"]["final_cost"] > on_reference.json()["estimation"]["final_cost"]
    await screenshot(page, "new-order-any-southern-telescope")

    # The northern telescope picked: the API's refusal beside the target, no order button.
    await select_.select_option(reference)
    error = page.get_by_test_id("error-target_name")
    await error.filter(has_text="never rises").wait_for(timeout=60_000)
    await _preview_settled(page)
    assert reference in await error.inner_text()
    await expect(page.locator("#submit-order")).to_be_disabled()
    await expect(assigned).to_have_count(0)
    await screenshot(page, "new-order-northern-telescope-refused")

    # Back on any: submittable again, and the order runs on the southern telescope at the price shown.
    await select_.select_option("any")
    await on_south.wait_for(timeout=60_000)
    await _preview_settled(page)
    await expect(page.locator("#submit-order")).to_be_enabled()
    await page.get_by_role("button", name="Order", exact=True).click()
    await page.wait_for_url(re.compile(r".*/app/orders/\d+$"), timeout=60_000)
    order_id = int(page.url.rsplit("/", 1)[1])
    async with web.sessionmaker() as s:
        order = await s.get(Order, order_id)
        telescope = await s.get(Telescope, order.telescope_id)
    assert order.customer_id == cid and order.target_name == "NGC 104"
    assert telescope.slug == south and order.price_multiplier == SOUTH_MULTIPLIER
    assert order.cost == shown and order.assignment_reason.startswith(f"any: {south} at Chile")
