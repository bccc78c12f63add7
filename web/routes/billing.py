"""Plans (subscribe with a card) and credits (balance by bucket, held, ledger history).

Card entry: in the embedded stack Stripe is localstripe, which has no Checkout and accepts raw test
card numbers, so the page takes the test card and makes the PaymentMethod server-side. Against real
Stripe a card number must never reach our server (PCI DSS): the page then says payment by card is
not available here (Checkout is not built yet).
"""

from __future__ import annotations

from typing import Annotated

import stripe
from fastapi import APIRouter, Form, Request

from api.deps import ResourcesDep, SessionDep
from api.errors import ApiError
from api.services import credits as credit_service
from api.services import payments
from billing.plans import PLANS
from billing.stripe_client import make_stripe_client
from models.payment_workflows import CancelCommand, ChangePlanCommand, SubscribeCommand
from models.payments import CancelResult, ChangePlanResult, SubscribeResult
from web.deps import CsrfDep, MeDep
from web.routes.accounts import see_other
from web.templating import render

router = APIRouter(prefix="/app")

TEST_CARD = "4242424242424242"  # Stripe's documented always-succeeds test card


def card_entry_allowed(res) -> bool:
    return res.settings.stripe.is_localstripe()


@router.get("/plans")
async def plans_page(request: Request, me: MeDep, res: ResourcesDep, session: SessionDep):
    return await _plans_after(request, res, me)


@router.post("/plans/subscribe")
async def subscribe(request: Request, me: MeDep, res: ResourcesDep, session: SessionDep, _csrf: CsrfDep,
                    plan: Annotated[str, Form()] = "", card_number: Annotated[str, Form()] = ""):
    error = None
    if not card_entry_allowed(res):
        error = "card_entry_unavailable"
    else:
        try:
            client = make_stripe_client(res.settings.stripe)
            pm = await client.v1.payment_methods.create_async({"type": "card", "card": {
                "number": card_number.replace(" ", ""), "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
            temporal = await res.temporal.get()
            cmd = SubscribeCommand(plan=plan.strip().lower(), payment_method_id=pm.id, actor=me.actor)
            await payments.subscription_command(res, temporal, me.customer_id, "subscribe", cmd, SubscribeResult)
        except ApiError as exc:
            error = exc.message
        except stripe.StripeError as exc:
            error = getattr(exc, "user_message", None) or str(exc)
    if error is None:
        return see_other("/app/credits")
    return await _plans_after(request, res, me, error=error,
                              status_code=402 if error != "card_entry_unavailable" else 409)


async def _plans_after(request: Request, res, me, *, error: str | None = None, notice: str | None = None,
                       status_code: int = 200):
    current = await payments.current_subscription(res, me.customer_id)
    return render(request, "plans.html", status_code=status_code, plans=list(PLANS.values()), current=current,
                  error=error, notice=notice, card_entry=card_entry_allowed(res), test_card=TEST_CARD)


@router.post("/plans/change")
async def change_plan(request: Request, me: MeDep, res: ResourcesDep, _csrf: CsrfDep,
                      plan: Annotated[str, Form()] = ""):
    """Upgrade now (prorated) or downgrade at the period's end: the subscription workflow decides."""
    try:
        cmd = ChangePlanCommand(plan=plan.strip().lower(), actor=me.actor)
        out = await payments.subscription_command(res, await res.temporal.get(), me.customer_id, "change_plan", cmd,
                                                  ChangePlanResult)
    except ApiError as exc:
        return await _plans_after(request, res, me, error=exc.message, status_code=exc.status_code)
    return await _plans_after(request, res, me, notice=out.message)


@router.post("/plans/cancel")
async def cancel(request: Request, me: MeDep, res: ResourcesDep, _csrf: CsrfDep):
    """Cancel at the period's end; the page then shows the date until which credits stay usable."""
    try:
        out = await payments.subscription_command(res, await res.temporal.get(), me.customer_id, "cancel",
                                                  CancelCommand(actor=me.actor), CancelResult)
    except ApiError as exc:
        return await _plans_after(request, res, me, error=exc.message, status_code=exc.status_code)
    return await _plans_after(request, res, me, notice=out.message)


@router.get("/credits")
async def credits_page(request: Request, me: MeDep, res: ResourcesDep, session: SessionDep):
    balance = await credit_service.credits_of(res, session, me.customer_id)
    page = await credit_service.transactions(res, session, me.customer_id, limit=200, offset=0)
    return render(request, "credits.html", balance=balance, lines=page.items, total=page.total)
