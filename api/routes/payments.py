"""``GET /api/payments``: my credit-pack purchases with their status (docs/payments.md;
transaction history per customer)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PrincipalDep, ResourcesDep
from api.errors import errors
from api.schemas.common import Limit, Offset
from api.services import payments as service
from api.schemas.payments import PaymentListOut

router = APIRouter(prefix="/api/payments", tags=["credit packs"])


@router.get("", response_model=PaymentListOut, summary="My purchases, newest first", responses=errors())
async def list_payments(me: PrincipalDep, res: ResourcesDep, limit: Limit = 50, offset: Offset = 0) -> PaymentListOut:
    """``status``: pending | completed | cancelled | failed."""
    return await service.list_payments(res, me.customer_id, limit, offset)
