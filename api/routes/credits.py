"""``/api/credits``: my balances by bucket and my ledger lines."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PrincipalDep, ResourcesDep, SessionDep
from api.errors import errors
from api.schemas.common import Limit, Offset
from api.schemas.credits import CreditsOut, TransactionPage
from api.services import credits as service

router = APIRouter(prefix="/api/credits", tags=["credits"])


@router.get("", response_model=CreditsOut, summary="My credits: available, held, by bucket", responses=errors())
async def get_credits(me: PrincipalDep, res: ResourcesDep, session: SessionDep) -> CreditsOut:
    return await service.credits_of(res, session, me.customer_id)


@router.get("/transactions", response_model=TransactionPage, summary="My ledger lines, newest first",
            responses=errors())
async def get_transactions(me: PrincipalDep, res: ResourcesDep, session: SessionDep, limit: Limit = 50,
                           offset: Offset = 0) -> TransactionPage:
    return await service.transactions(res, session, me.customer_id, limit, offset)
