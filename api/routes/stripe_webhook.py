"""``POST /api/stripe/webhook``: Stripe's events, verified on the raw body, forwarded to workflows.

400 when the signature is missing, wrong or stale (nothing changes, Temporal is not touched);
503 when Temporal is down (Stripe retries); otherwise 200 at once — the owning workflow applies
the event, exactly once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from temporalio.service import RPCError

from api.deps import ResourcesDep
from api.errors import ApiError, ServiceUnavailable, errors
from api.services import payments as service
from billing.webhooks import WebhookSignatureError

router = APIRouter(prefix="/api/stripe", tags=["stripe"])


@router.post("/webhook", summary="Stripe webhook endpoint (signed by Stripe)", responses=errors(503))
async def webhook(request: Request, res: ResourcesDep,
                  stripe_signature: Annotated[str | None, Header()] = None) -> dict[str, str]:
    """Answer: ``{"received": "<event id>", "routed": "<workflow id | ignored: why>"}``."""
    payload = await request.body()
    try:
        event, fact = service.parse_webhook(res, payload, stripe_signature)
    except WebhookSignatureError as exc:
        raise ApiError(str(exc), code="invalid_signature", status_code=400) from None
    if fact is None:
        return {"received": event["id"], "routed": "ignored: event type not handled"}
    client = await res.temporal.get()
    try:
        return await service.route_fact(res, client, event, fact)
    except RPCError as exc:
        raise ServiceUnavailable(f"Temporal refused the event: {exc.message}", code="temporal_unavailable") from None
