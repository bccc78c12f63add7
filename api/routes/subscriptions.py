"""``/api/subscriptions``: subscribe, change plan, cancel, current (docs/payments.md, docs/pricing.md §7).

Each command is an update of the customer's ``SubscriptionWorkflow`` (``api/services/payments.py``).
``GET /api/subscriptions/plans`` lives in ``api/routes/plans.py``.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PrincipalDep, ResourcesDep, TemporalDep
from api.services import payments as service
from models.payment_workflows import CancelCommand, ChangePlanCommand, SubscribeCommand
from api.schemas.payments import CancelOut, ChangePlanIn, ChangePlanOut, CurrentSubscriptionOut, SubscribeIn, SubscribeOut
from models.payments import CancelResult, ChangePlanResult, SubscribeResult

router = APIRouter(prefix="/api/subscriptions", tags=["subscriptions"])


@router.post("/subscribe", response_model=SubscribeOut, summary="Subscribe to a plan",
             responses=service.payment_errors(402, 404, 409, 502, 503))
async def subscribe(body: SubscribeIn, me: PrincipalDep, res: ResourcesDep, client: TemporalDep) -> SubscribeResult:
    """Body: ``{"plan": "nebula", "payment_method_id": "pm_…"}``. Stripe charges the first
    month now; its credits are granted once (``credits_added``). 402 ``card_declined`` leaves no
    subscription behind."""
    cmd = SubscribeCommand(plan=body.plan.strip().lower(), payment_method_id=body.payment_method_id, actor=me.actor)
    return await service.subscription_command(res, client, me.customer_id, "subscribe", cmd, SubscribeResult)


@router.post("/change", response_model=ChangePlanOut, summary="Change plan (upgrade now, downgrade at period end)",
             responses=service.payment_errors(402, 409, 502, 503))
async def change(body: ChangePlanIn, me: PrincipalDep, res: ResourcesDep, client: TemporalDep) -> ChangePlanResult:
    """Upgrade: the prorated difference is charged now and the credit difference is added now.
    Downgrade: the current plan stays until ``current_period_end``; the next renewal is the new
    plan. Changing back to the current plan cancels a pending downgrade."""
    cmd = ChangePlanCommand(plan=body.plan.strip().lower(), actor=me.actor)
    return await service.subscription_command(res, client, me.customer_id, "change_plan", cmd, ChangePlanResult)


@router.post("/cancel", response_model=CancelOut, summary="Cancel at the end of the period",
             responses=service.payment_errors(409, 502, 503))
async def cancel(me: PrincipalDep, res: ResourcesDep, client: TemporalDep) -> CancelResult:
    """docs/pricing.md §7: the subscription ends at the end of the paid period and the credits stay usable until
    then; at the end, remaining subscription credits expire (pack credits stay)."""
    return await service.subscription_command(res, client, me.customer_id, "cancel", CancelCommand(actor=me.actor),
                                              CancelResult)


@router.get("/current", response_model=CurrentSubscriptionOut, summary="My current subscription",
            responses=service.payment_errors())
async def current(me: PrincipalDep, res: ResourcesDep) -> CurrentSubscriptionOut:
    """The latest subscription with its status (see ``models.payments.SubscriptionStatus``), or null."""
    return CurrentSubscriptionOut(subscription=await service.current_subscription(res, me.customer_id))
