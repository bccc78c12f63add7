"""The one switch between Stripe Checkout and the test card (``web.payment_flow``; docs/web.md).

``checkout`` redirects to Stripe's payment page (a card number never reaches our server, PCI DSS);
``card`` takes Stripe's test card on our page and is honoured only against localstripe, which has
no Checkout. Credit packs (``web/routes/packs.py``) and plans (``web/routes/billing.py``) both ask here.
"""

from __future__ import annotations

from core.settings import Settings

TEST_CARD = "4242424242424242"  # Stripe's documented always-succeeds test card


def payment_flow(settings: Settings) -> str:
    """``checkout`` or ``card`` (``card`` only with localstripe; otherwise ``unavailable``)."""
    flow = settings.web.payment_flow or ("card" if settings.stripe.is_localstripe() else "checkout")
    if flow == "card" and not settings.stripe.is_localstripe():
        return "unavailable"
    return flow
