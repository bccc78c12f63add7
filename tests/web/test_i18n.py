"""French and English: every message has a French translation, the browser's language picks the
catalog, and the switch in the header overrides it."""

from __future__ import annotations

from babel.messages.pofile import read_po

from tests.web.conftest import WebApp
from web.i18n import TRANSLATIONS_DIR, choose_language


def test_every_message_of_the_templates_has_a_french_translation():
    with open(TRANSLATIONS_DIR / "messages.pot", "rb") as f:
        ids = {m.id for m in read_po(f) if m.id}
    with open(TRANSLATIONS_DIR / "fr" / "LC_MESSAGES" / "messages.po", "rb") as f:
        french = {m.id: m.string for m in read_po(f, locale="fr") if m.id}
    assert ids and not [i for i in ids if not french.get(i)]


def test_accept_language_picks_french_or_english():
    assert choose_language(None, "fr-CA,fr;q=0.9,en;q=0.5") == "fr"
    assert choose_language(None, "de-DE,en;q=0.3,fr;q=0.2") == "en"
    assert choose_language(None, "de") == "en"
    assert choose_language("fr", "en-GB") == "fr"


async def test_a_french_browser_reads_french_and_can_switch(web: WebApp, browser):
    context = await browser.new_context(locale="fr-FR")
    page = await context.new_page()
    try:
        await page.goto(f"{web.url}/app/sign-in")
        assert await page.locator("html").get_attribute("lang") == "fr"
        assert await page.get_by_role("heading", level=1).inner_text() == "Se connecter"
        await page.get_by_role("link", name="EN").click()
        assert await page.get_by_role("heading", level=1).inner_text() == "Sign in"
        await page.get_by_role("link", name="FR").click()
        await page.get_by_role("link", name="Créer un compte").click()
        assert await page.title() == "Créer un compte · Stellar"
    finally:
        await context.close()
