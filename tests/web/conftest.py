"""Web app fixtures: a real Chromium (Debian's package) driven by Playwright, and the API process
with the web app served by uvicorn on a loopback port.

``web`` is the app alone (PostgreSQL, Temporal client, no worker): enough for sign-in, CSRF and
ownership checks. ``web_stack`` adds what the customer journey needs: localstripe (its webhooks
POSTed to this app), the Voyager simulator on a real socket and the real worker (order, monitor
and payment workflows) on the test's task queue.

The browser is never downloaded (no ``playwright install``): ``CHROMIUM`` must exist. Without it
the browser tests skip — except in CI (``CI=true``), where a skipped browser test is a failure.
Screenshots go to ``.artifacts/web/`` (git-ignored).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import pytest_asyncio

from api.app import create_app
from core.settings import Settings, SiteSettings
from models.db import Order, OrderShot
from tests.api.conftest import api_settings, temporal_address
from tests.conftest import free_port
from tests.payments.conftest import WEBHOOK_SECRET, localstripe, serve  # noqa: F401  (localstripe: fixture)
from tests.patience import patience
from tests.workflows.support import NIGHT_START, start_sim, terminate_quietly
from worker import monitor_workflow_id, open_worker

CHROMIUM = Path(os.environ.get("STELLAR_TEST_CHROMIUM", "/usr/bin/chromium"))
#: ms: how long a page action, a locator's wait and a retrying ``expect`` wait for what they expect
#: (Playwright's own ``expect`` default, 5 s, is short for a browser sharing two cores with the stack).
WAIT_MS = patience(20.0) * 1000
ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts" / "web"


@pytest_asyncio.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        message = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + ": in CI a skipped browser test is a failure")
        pytest.skip(message)
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=WAIT_MS)
    pw = await async_playwright().start()
    b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
    yield b
    await b.close()
    await pw.stop()


@pytest.fixture(scope="session")
def warm_ephemeris() -> None:
    """The reference site's sky computed once per session, as the new-order preview computes it.

    A process's first preview reads astropy's IERS tables and computes the site's sun and moon for
    the look-ahead (``api.services.order_schedule.site_sky`` keeps them): about 10 s of CPU at a load
    of 7, more than the 30 s a test gives a preview on CI's loaded cores. Paid here, before any
    test's wait, the first preview a test waits for costs what every later one does."""
    from api.services.order_schedule import constraints, site_sky
    from core.ephemeris import next_window
    from web.sky_chart import night_curves

    site, now = SiteSettings(), datetime.now(UTC)  # the reference telescope's site (0010_telescopes)
    for moon_down in (False, True):
        c = constraints(site, ra_j2000=5.588, dec_j2000=-5.39, c_alt_min=30.0, c_moon_down=moon_down)
        next_window(site_sky(site), c, now.timestamp())
        night_curves(5.588, -5.39, alt_min=30.0, moon_down=moon_down, latitude=site.latitude,
                     longitude=site.longitude, elevation=site.elevation, horizon_alt=site.horizon_alt)


@pytest_asyncio.fixture
async def page(browser) -> AsyncIterator[Any]:
    """A fresh browser context (own cookies) and page; English unless a test asks otherwise."""
    context = await browser.new_context(locale="en-GB", accept_downloads=True, viewport={"width": 1100, "height": 900})
    p = await context.new_page()
    p.set_default_timeout(WAIT_MS)
    yield p
    await context.close()


async def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as a test artefact; returns its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


@dataclass
class WebApp:
    url: str
    settings: Settings
    sessionmaker: Any
    engine: Any
    sim: Any = None

    async def insert_order(self, customer_id: int) -> Order:
        """An order row of ``customer_id`` written directly (pages that read it need no workflow)."""
        async with self.sessionmaker() as s:
            order = Order(customer_id=customer_id, target_name="M42", ra_j2000=5.588, dec_j2000=-5.39,
                          status="running", cost=1, shots_total=5)
            s.add(order)
            await s.flush()
            s.add(OrderShot(order_id=order.id, position=0, filter="L", exposure=60.0, quantity=5))
            await s.commit()
            await s.refresh(order)
            return order


@pytest_asyncio.fixture
async def web(database_url, engine, sessionmaker, temporal_env, task_queue, tmp_path,
              warm_ephemeris) -> AsyncIterator[WebApp]:
    settings = api_settings(database_url, temporal_address(temporal_env), task_queue, tmp_path)
    app = create_app(settings, engine=engine, sessionmaker=sessionmaker, temporal_client=temporal_env.client)
    port = free_port()
    async with serve(app, port):
        yield WebApp(f"http://127.0.0.1:{port}", settings, sessionmaker, engine)


@pytest_asyncio.fixture
async def web_stack(database_url, engine, sessionmaker, temporal_env, task_queue, tmp_path,
                    localstripe, warm_ephemeris) -> AsyncIterator[WebApp]:  # noqa: F811
    """Simulator (night at OHP, 60× real time) + worker + localstripe + the app on a real port."""
    sim = await start_sim(tmp_path, start_time=NIGHT_START, speed=60.0)
    cfg = sim.config
    settings = api_settings(
        database_url, temporal_address(temporal_env), task_queue, tmp_path,
        voyager={"host": "127.0.0.1", "port": sim.port, "username": cfg.username, "password": cfg.password,
                 "mac_key": cfg.mac_key, "mac_words": ",".join(cfg.mac_words), "profile_name": cfg.profile_name,
                 "pool_size": 3, "command_timeout": 10.0},
        images={"jpg_dir": tmp_path / "jpg", "fit_dir": cfg.fit_dir},
        image_store={"local_dir": tmp_path / "image-store"},
        orders={"telescope": f"web-{task_queue[-8:]}", "monitor_poll_interval": 0.5, "watch_poll_interval": 0.3,
                "sweep_wait_for_end": 20.0},
        stripe={"api_base": localstripe.url, "webhook_secret": WEBHOOK_SECRET, "localstripe_compat": True},
    )
    app = create_app(settings, engine=engine, sessionmaker=sessionmaker, temporal_client=temporal_env.client)
    port = free_port()
    localstripe.configure_webhook(f"http://127.0.0.1:{port}/api/stripe/webhook", WEBHOOK_SECRET)
    try:
        async with open_worker(settings, client=temporal_env.client, engine=engine, task_queue=task_queue):
            async with serve(app, port):
                w = WebApp(f"http://127.0.0.1:{port}", settings, sessionmaker, engine, sim)
                try:
                    yield w
                finally:
                    await terminate_quietly(temporal_env.client, monitor_workflow_id(settings.orders.telescope))
    finally:
        localstripe.configure_webhook("http://127.0.0.1:9/nowhere", WEBHOOK_SECRET)
        await sim.stop()


def new_email() -> str:
    return f"web-{uuid.uuid4().hex[:12]}@example.com"
