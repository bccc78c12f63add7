"""Password reset in a real browser, the e-mail going through the outbox, the sender and a real
SMTP server (aiosmtpd): request → read the sink → open the link → new password → sign in."""

from __future__ import annotations

import re
import time
from typing import AsyncIterator

import pytest_asyncio
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from playwright.async_api import expect

from api.app import create_app
from mail.sender import MailSender
from tests.api.conftest import api_settings, temporal_address
from tests.conftest import free_port
from tests.mail.conftest import sink, sink_dir  # noqa: F401  (fixtures)
from tests.payments.conftest import serve
from tests.web.conftest import WebApp, new_email, screenshot
from tests.web.pages import PASSWORD, sign_in, sign_up
from web.password_reset import SALT, ResetLinkInvalid, check_link

NEW_PASSWORD = "a brand new passphrase"


@pytest_asyncio.fixture
async def reset_web(database_url, engine, sessionmaker, temporal_env, task_queue, tmp_path, sink) -> AsyncIterator[WebApp]:  # noqa: F811
    """The web app on a real port whose links point at itself, mailing through ``sink``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = api_settings(database_url, temporal_address(temporal_env), task_queue, tmp_path,
                            api={"public_url": url},
                            mail={"host": "127.0.0.1", "port": sink.port, "starttls": False},
                            web={"session_secret": "reset-test-secret-0123456789"})
    app = create_app(settings, engine=engine, sessionmaker=sessionmaker, temporal_client=temporal_env.client)
    async with serve(app, port):
        yield WebApp(url, settings, sessionmaker, engine)


async def _deliver(web: WebApp) -> None:
    # Deliver only: composing would mail other suites' order events from the shared database.
    await MailSender(web.engine, web.settings).run_once(compose=False)


async def _ask_link(page, web: WebApp, email: str) -> str:
    await page.goto(f"{web.url}/app/sign-in")
    await page.get_by_role("link", name="Forgotten password?").click()
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_role("button", name="Send the link").click()
    return await page.get_by_test_id("reset-sent").inner_text()


def _link_in(message) -> str:
    body = message.get_payload(decode=True).decode()
    return re.search(r"https?://\S+/app/password-reset/\S+", body).group(0)


async def test_reset_by_e_mail_link_then_sign_in_with_the_new_password(reset_web: WebApp, page, sink):  # noqa: F811
    email = new_email()
    await sign_up(page, reset_web.url, email)
    await page.context.clear_cookies()

    answer = await _ask_link(page, reset_web, email)
    await screenshot(page, "password-reset-sent")
    # An unknown e-mail gets the same answer, and no e-mail.
    unknown = new_email()
    assert (await _ask_link(page, reset_web, unknown)).replace(unknown, email) == answer

    await _deliver(reset_web)
    [message] = sink.messages(email)
    assert sink.messages(unknown) == []
    assert message["Subject"] == "Stellar — reset your password" and message["Message-ID"]
    link = _link_in(message)
    assert link.startswith(reset_web.url)

    response = await page.goto(link)
    assert response.status == 200 and response.headers["referrer-policy"] == "no-referrer"
    await page.get_by_label("New password (at least 10 characters)").fill("short")
    await page.evaluate("document.querySelector('#password').removeAttribute('minlength')")
    await page.get_by_role("button", name="Save the new password").click()
    # The answer is a new page: counted once right after the click, the form before it has none.
    await expect(page.get_by_role("alert")).to_have_count(1)  # the service's length rule, next to the field
    await page.get_by_label("New password (at least 10 characters)").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Save the new password").click()
    await page.wait_for_url(f"{reset_web.url}/app/sign-in?reset=done")
    assert await page.get_by_test_id("reset-done").count() == 1
    await screenshot(page, "password-reset-done")

    assert await sign_in(page, reset_web.url, email, PASSWORD) == 401
    assert await sign_in(page, reset_web.url, email, NEW_PASSWORD) == 303
    await page.wait_for_url(f"{reset_web.url}/app/orders")

    # The link worked once: opening it again says so.
    await page.context.clear_cookies()
    again = await page.goto(link)
    assert again.status == 400 and await page.get_by_test_id("reset-invalid").count() == 1
    await screenshot(page, "password-reset-link-used")


async def test_reset_requests_are_rate_limited_whether_or_not_the_account_exists(reset_web: WebApp, page):
    unknown = new_email()
    for _ in range(reset_web.settings.web.reset_requests_per_hour):
        await _ask_link(page, reset_web, unknown)
    await page.goto(f"{reset_web.url}/app/password-reset")
    await page.get_by_label("E-mail").fill(unknown)
    async with page.expect_response(lambda r: r.request.method == "POST") as info:
        await page.get_by_role("button", name="Send the link").click()
    assert (await info.value).status == 429
    assert "Too many requests" in await page.get_by_test_id("reset-error").inner_text()


async def test_the_reset_pages_speak_french(reset_web: WebApp, browser):
    context = await browser.new_context(locale="fr-FR")
    page = await context.new_page()
    try:
        await page.goto(f"{reset_web.url}/app/password-reset")
        assert await page.title() == "Mot de passe oublié · Stellar"
        await page.get_by_label("E-mail").fill(new_email())
        await page.get_by_role("button", name="Envoyer le lien").click()
        assert "un lien pour choisir un nouveau mot de passe" in await page.get_by_test_id("reset-sent").inner_text()
    finally:
        await context.close()


async def test_an_expired_or_forged_link_is_refused(reset_web: WebApp, page):
    email = new_email()
    await sign_up(page, reset_web.url, email)
    secret = reset_web.settings.web.session_secret.get_secret_value()
    async with reset_web.sessionmaker() as s:
        from sqlmodel import select

        from models.db import Customer, WebLogin
        from web.password_reset import make_token
        customer = (await s.exec(select(Customer).where(Customer.email == email))).one()
        login = await s.get(WebLogin, customer.id)
        fresh = make_token(secret, customer.id, login.password_hash)
        assert (await check_link(s, secret, fresh, 3600)).id == customer.id

        class TwoHoursAgo(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(time.time()) - 7200

        old = URLSafeTimedSerializer(secret, salt=SALT, signer=TwoHoursAgo).dumps(
            URLSafeTimedSerializer(secret, salt=SALT).loads(fresh))
        for bad in (old, fresh[:-2] + "xx", make_token("another secret", customer.id, login.password_hash)):
            try:
                await check_link(s, secret, bad, 3600)
                raise AssertionError(f"accepted {bad}")
            except ResetLinkInvalid:
                pass
    r = await page.goto(f"{reset_web.url}/app/password-reset/{old}")
    assert r.status == 400 and await page.get_by_test_id("reset-invalid").count() == 1
