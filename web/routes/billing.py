"""Plans (subscribe, change plan, cancel) and credits (balance by bucket, held, ledger history).

Subscribing follows the one switch ``web.payment_flow.payment_flow``: ``checkout`` (production)
redirects to a Stripe Checkout Session in ``subscription`` mode (``api/services/checkout.py``); the
subscription then arrives through the signed webhook, like every other Stripe fact, and Stripe
sends the customer back to ``/app/plans?checkout=done``. ``card`` (the embedded stack: localstripe
has no Checkout and accepts raw test card numbers) takes the test card on the page and runs the
``subscribe`` update. Change plan and cancel are the subscription workflow's updates either way.
"""

from __future__ import annotations

from typing import Annotated

import stripe
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from api.deps import ResourcesDep, SessionDep
from api.errors import ApiError
from api.services import credits as credit_service
from api.services import payments
from api.services.checkout import checkout_subscription
from billing.plans import PLANS
from billing.stripe_client import make_stripe_client
from models.payment_workflows import CancelCommand, ChangePlanCommand, SubscribeCommand
from models.payments import CancelResult, ChangePlanResult, SubscribeResult
from web.deps import CsrfDep, MeDep
from web.payment_flow import TEST_CARD, payment_flow
from web.routes.accounts import see_other
from web.templating import render

router = APIRouter(prefix="/app")

#: ``?checkout=`` of Stripe's return to the plans page: what the page says about it.
CHECKOUT_RETURNS = ("done", "cancelled")


@router.get("/plans")
async def plans_page(request: Request, me: MeDep, res: ResourcesDep, session: SessionDep, checkout: str = ""):
    """The plans; ``?checkout=done|cancelled`` is Stripe Checkout's return."""
    return await _plans_after(request, res, me, checkout=checkout if checkout in CHECKOUT_RETURNS else None)


@router.post("/plans/subscribe")
async def subscribe(request: Request, me: MeDep, res: ResourcesDep, session: SessionDep, _csrf: CsrfDep,
                    plan: Annotated[str, Form()] = "", card_number: Annotated[str, Form()] = ""):
    error = None
    flow = payment_flow(res.settings)
    if flow == "checkout":
        base = res.settings.api.public_url.rstrip("/")
        try:
            url = await checkout_subscription(res, me.customer_id, plan.strip().lower()[:32],
                                              success_url=f"{base}/app/plans?checkout=done",
                                              cancel_url=f"{base}/app/plans?checkout=cancelled")
        except ApiError as exc:
            return await _plans_after(request, res, me, error=exc.message, status_code=exc.status_code)
        return RedirectResponse(url, status_code=303)
    if flow != "card":
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
                       status_code: int = 200, checkout: str | None = None):
    current = await payments.current_subscription(res, me.customer_id)
    return render(request, "plans.html", status_code=status_code, plans=list(PLANS.values()), current=current,
                  error=error, notice=notice, flow=payment_flow(res.settings), test_card=TEST_CARD,
                  checkout=checkout)


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
