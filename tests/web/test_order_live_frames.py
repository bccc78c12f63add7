"""The order page's live list in a real browser: each frame the order keeps, once.

Frames and their ``progress`` events are written to the database as the ingest writes them (the
API's LISTEN/NOTIFY stream carries them to the page): a frame Voyager rejected and deleted is a dot
of the HFD chart but no card (nor on reload; the gallery lists it among the rejected frames, without
files), and an event for a frame the page already shows (stored while the page loaded, or replayed
on a reconnect) adds no second card.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from models.db import Order, OrderEvent, ShotDone
from tests.web.conftest import WebApp, new_email
from tests.web.pages import customer_id, sign_up

START = datetime.now(UTC) - timedelta(hours=1)


async def _frame(web: WebApp, order_id: int, i: int, *, accepted: bool = True, event: bool = True) -> int:
    """A frame row as the ingest writes it (rejected = deleted by Voyager), with its ``progress`` event."""
    async with web.sessionmaker() as s:
        row = ShotDone(order_id=order_id, session_guid="s-1", shot_done_guid=str(uuid.uuid4()), filter="L",
                       exposure=60.0, hfd=2.5 if accepted else 5.5, filename=f"f{i}.fits",
                       taken_at=START + timedelta(minutes=2 * i), accepted=accepted, is_deleted=not accepted)
        s.add(row)
        await s.flush()
        if event:
            s.add(_progress(order_id, row.id))
        await s.commit()
        return row.id


def _progress(order_id: int, frame_id: int) -> OrderEvent:
    return OrderEvent(order_id=order_id, kind="progress", payload={"frame": {"id": frame_id}})


async def test_the_live_list_shows_each_kept_frame_once(web: WebApp, page):
    email = new_email()
    await sign_up(page, web.url, email)
    order = await web.insert_order(await customer_id(web, email))
    async with web.sessionmaker() as s:
        row = await s.get(Order, order.id)
        row.plan = "nebula"  # the live view comes with the dashboard feature
        s.add(row)
        await s.commit()
    first = await _frame(web, order.id, 0)

    await page.goto(f"{web.url}/app/orders/{order.id}")
    cards = page.get_by_test_id("frame")
    assert await cards.count() == 1
    await page.wait_for_function("document.querySelector('[sse-connect]') !== null")
    await page.evaluate("window.__notReloaded = true")

    # A rejected frame, the first frame announced again, then a kept frame: the last card proves the
    # stream delivered everything before it (one stream, in event order).
    await _frame(web, order.id, 1, accepted=False)
    async with web.sessionmaker() as s:
        s.add(_progress(order.id, first))
        await s.commit()
    last = await _frame(web, order.id, 2)
    await page.locator(f"[data-testid=frame][data-frame-id='{last}']").wait_for(timeout=30_000)
    await page.wait_for_function(
        "document.querySelectorAll('[data-testid=hfd-chart] .hfd-point').length === 3", timeout=30_000)

    ids = [await c.get_attribute("data-frame-id") for c in await cards.all()]
    assert ids == [str(last), str(first)], ids
    assert await page.evaluate("window.__notReloaded === true")
    await page.reload()
    assert [await c.get_attribute("data-frame-id") for c in await cards.all()] == ids  # as the page lists them
