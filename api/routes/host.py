"""``/api/host/earnings`` (a host's own figures and monthly statement) and ``/api/admin/payouts``
(staff records a payout). Logic: api/services/host_earnings.py, billing/host_payouts.py;
docs/host-earnings.md."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response

from api.deps import AdminDep, CustomerDep, ResourcesDep, SessionDep
from api.errors import IDEMPOTENCY_KEY_REQUIRED, Unprocessable, errors
from api.schemas.host_earnings import MONTH_PATTERN, HostEarningsOut, PayoutIn, PayoutOut
from api.services import host_earnings as service
from api.services.orders import MAX_IDEMPOTENCY_KEY
from billing.host_payouts import StripeTransfer, record_payout
from core.settings import Settings

router = APIRouter(tags=["host earnings"])
Month = Annotated[str, Query(pattern=MONTH_PATTERN, description="YYYY-MM (UTC)")]


@router.get("/api/host/earnings", response_model=HostEarningsOut, summary="Your telescopes' earnings",
            responses=errors(403, 404))
async def get_earnings(me: CustomerDep, session: SessionDep,
                       telescope: Annotated[str | None, Query(max_length=40)] = None) -> HostEarningsOut:
    """Per telescope, per month and per order, with the grants' values that made each figure;
    customers by pseudonymous id with their totals; payouts and the due balance. 403 ``host_only``
    for a customer who hosts no telescope; 404 ``unknown_telescope`` for a slug that is not yours."""
    return await service.host_earnings(await session.connection(), me.customer_id, telescope)


@router.get("/api/host/earnings/statement.csv", summary="Your monthly statement as CSV",
            responses={**errors(403, 422), 200: {"content": {"text/csv": {}}}})
async def get_statement_csv(me: CustomerDep, session: SessionDep, month: Month) -> Response:
    """One row per entry of ``month`` (earnings, reversals, payouts); the same figures as the JSON."""
    lines = await service.statement_lines(await session.connection(), me.customer_id, month)
    return Response(service.statement_csv(lines), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="stellar-statement-{month}.csv"'})


def stripe_transfer(settings: Settings) -> StripeTransfer | None:
    """The Stripe Connect transfer call when ``stripe.connect_payouts`` is on, else None."""
    if not settings.stripe.connect_payouts:
        return None
    from billing.stripe_client import make_stripe_client

    client = make_stripe_client(settings.stripe)

    async def send(account: str, cents: int, key: str) -> str:
        t = await client.v1.transfers.create_async(
            {"amount": cents, "currency": settings.stripe.currency, "destination": account,
             "metadata": {"stellar_payout_key": key}}, {"idempotency_key": f"stellar:payout:{key}"[:255]})
        return t.id

    return send


@router.post("/api/admin/payouts", status_code=201, response_model=PayoutOut, summary="Record a payout to a host",
             responses=errors(403, 422))
async def post_payout(
    body: PayoutIn, staff: AdminDep, res: ResourcesDep, session: SessionDep,
    idempotency_key: Annotated[str | None, Header(max_length=MAX_IDEMPOTENCY_KEY)] = None,
) -> PayoutOut:
    """``Idempotency-Key`` required: the same key again returns the first payout and moves nothing.
    422 ``payout_exceeds_due`` naming the due amount, ``not_a_host``, ``payout_method_unavailable``
    (Stripe Connect off or no connected account)."""
    if not idempotency_key:
        raise Unprocessable("a payout needs an Idempotency-Key header", code=IDEMPOTENCY_KEY_REQUIRED,
                            fields={"Idempotency-Key": "required"})
    conn = await session.connection()
    p = await record_payout(conn, body.host_customer_id, body.amount_cents, body.method, body.reference,
                            idempotency_key, staff.actor, stripe_transfer(res.settings))
    await session.commit()
    return PayoutOut.model_validate(p)
