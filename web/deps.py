"""Dependency aliases of the web pages: the signed-in customer, a staff member, the CSRF check."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Request

from api.deps import SessionDep
from api.errors import Forbidden
from api.security import Principal
from web.accounts import staff_role
from web.security import require_csrf, web_principal

MeDep = Annotated[Principal, Depends(web_principal)]
CsrfDep = Annotated[None, Depends(require_csrf)]


async def web_staff(request: Request, session: SessionDep) -> Principal:
    """The signed-in customer with their staff role (support or admin, from their active API keys:
    ``web.accounts.staff_role``). Raises SignInRequired, Forbidden (``forbidden``, as the API)."""
    me = web_principal(request)
    role = await staff_role(session, me.customer_id)
    if role is None:
        raise Forbidden("this page needs the support role", code="forbidden")
    return replace(me, role=role)


StaffDep = Annotated[Principal, Depends(web_staff)]
