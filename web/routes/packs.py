"""Credit packs: the catalogue and buying one — Stripe Checkout, or the test card in the embedded
stack (the switch: ``web.payment_flow.payment_flow``).
"""

from __future__ import annotations

from typing import Annotated

import stripe
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from api.deps import ResourcesDep
from api.errors import ApiError
from api.services import payments
from api.services.checkout import checkout_pack
from billing import packs as pack_catalogue
from billing.stripe_client import make_stripe_client
from web.deps import CsrfDep, MeDep
from web.payment_flow import TEST_CARD, payment_flow
from web.routes.accounts import see_other
from web.templating import render

router = APIRouter(prefix="/app")


def _page(request: Request, res, *, error: str | None = None, status_code: int = 200, payment=None):
    return render(request, "credit_packs.html", status_code=status_code, packs=pack_catalogue.packs(),
                  flow=payment_flow(res.settings), test_card=TEST_CARD, error=error, payment=payment)


@router.get("/credit-packs")
async def packs_page(request: Request, me: MeDep, res: ResourcesDep, payment: int | None = None):
    """The catalogue; ``?payment=<id>`` (Checkout's return) shows that purchase's status."""
    shown = await payments.get_payment(res, me.customer_id, payment) if payment else None
    return _page(request, res, payment=shown)


@router.post("/credit-packs/{pack}/buy")
async def buy(request: Request, pack: str, me: MeDep, res: ResourcesDep, _csrf: CsrfDep,
              card_number: Annotated[str, Form()] = ""):
    flow = payment_flow(res.settings)
    base = res.settings.api.public_url.rstrip("/")
    try:
        if flow == "checkout":
            url = await checkout_pack(res, me.customer_id, me.email, pack[:32],
                                      success_url=f"{base}/app/credit-packs?payment={{PAYMENT_ID}}",
                                      cancel_url=f"{base}/app/credit-packs")
            return RedirectResponse(url, status_code=303)
        if flow != "card":
            return _page(request, res, error="card_entry_unavailable", status_code=409)
        client = make_stripe_client(res.settings.stripe)
        pm = await client.v1.payment_methods.create_async({"type": "card", "card": {
            "number": card_number.replace(" ", ""), "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
        out = await payments.purchase_pack(res, await res.temporal.get(), me.customer_id, pack[:32], pm.id)
    except ApiError as exc:
        return _page(request, res, error=exc.message, status_code=exc.status_code)
    except stripe.StripeError as exc:
        return _page(request, res, error=getattr(exc, "user_message", None) or str(exc), status_code=402)
    return see_other(f"/app/credit-packs?payment={out.payment.id}")
