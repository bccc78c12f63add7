"""French and English: every message has a French translation, the browser's language picks the
catalog, and the switch in the header overrides it."""

from __future__ import annotations

from babel.messages.pofile import read_po
from playwright.async_api import expect

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
        # Each click navigates: the heading and the title read once could still be the page before.
        await page.get_by_role("link", name="EN").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
        await page.get_by_role("link", name="FR").click()
        await page.get_by_role("link", name="Créer un compte").click()
        await expect(page).to_have_title("Créer un compte · Stellar")
    finally:
        await context.close()


def test_api_messages_and_statuses_are_translated_by_shape():
    from web.api_messages import translate_message, translate_status
    from web.i18n import translations

    fr = translations("fr").gettext
    assert translate_message("priority 3 needs Quasar", fr) == "la priorité 3 demande Quasar"
    assert translate_message("order 12 is settling and can no longer be aborted", fr) == \
        "la commande 12 est « en règlement » et ne peut plus être annulée"
    assert translate_message("Input should be greater than 0", fr) == "doit être supérieur à 0"
    assert translate_status("aborted", fr) == "annulée"
    en = translations("en").gettext
    assert translate_message("priority 3 needs Quasar", en) == "priority 3 needs Quasar"
    # A message of no known shape is shown as the API wrote it.
    assert translate_message("something new from the API", fr) == "something new from the API"


def test_the_telescope_assignment_reads_french():
    from web.api_messages import translate_message
    from web.i18n import translations

    fr = translations("fr").gettext
    reason = ("any: chile at Cerro Tololo, Chile, next observable window 2026-12-02 01:07 UTC, 0 order(s) waiting "
              "there; 1 other telescope(s) fit, 2 online one(s) do not")
    assert translate_message(reason, fr) == (
        "au choix : chile à Cerro Tololo, Chile, prochaine fenêtre d'observation 2026-12-02 01:07 UTC, 0 commande(s) "
        "en attente là-bas ; 1 autre(s) télescope(s) conviennent, 2 en ligne ne conviennent pas")
    # A refusal names every telescope: each part is translated.
    ohp = ("NGC 104 never rises above 30° in darkness at OHP (main) between 2026-12-01 16:31 and 2026-12-31 16:31 "
           "UTC (at best -26.0°)")
    dark = ("NGC 104 never rises above 30° in darkness at Polar (polar-1) between 2026-06-01 00:00 and "
            "2026-06-30 00:00 UTC (never in darkness)")
    assert translate_message(f"{ohp}; {dark}", fr) == (
        "NGC 104 ne dépasse jamais 30° de nuit à OHP (main) entre 2026-12-01 16:31 et 2026-12-31 16:31 UTC "
        "(au mieux -26.0°); NGC 104 ne dépasse jamais 30° de nuit à Polar (polar-1) entre 2026-06-01 00:00 et "
        "2026-06-30 00:00 UTC (jamais de nuit)")
    assert translate_message(f"{ohp}; something new", fr).endswith("; something new")
