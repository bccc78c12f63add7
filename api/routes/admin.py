"""``/api/admin``: customer creation (``admin`` role)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AdminDep, SessionDep
from api.errors import errors
from api.schemas.customers import CustomerCreate, CustomerCreated
from api.services.customers import create_customer_with_key

router = APIRouter(prefix="/api/admin", tags=["admin"])


@router.post("/customers", status_code=201, response_model=CustomerCreated,
             summary="Create a customer and its first API key (shown once)", responses=errors(403, 409))
async def post_customer(body: CustomerCreate, _: AdminDep, session: SessionDep) -> CustomerCreated:
    """``plan`` sets an active manual subscription (no Stripe); credits are granted separately."""
    c = await create_customer_with_key(session, email=body.email, name=body.name, plan=body.plan, role=body.role)
    return CustomerCreated(id=c.customer_id, email=c.email, name=c.name, role=c.role, plan=c.plan,
                           api_key=c.api_key, key_prefix=c.key_prefix, created_at=c.created_at)
