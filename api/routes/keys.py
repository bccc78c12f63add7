"""``/api/keys``: rotate my API key."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PrincipalDep, SessionDep
from api.errors import errors
from api.schemas.customers import KeyRotated
from api.security import rotate_key

router = APIRouter(prefix="/api/keys", tags=["keys"])


@router.post("/rotate", response_model=KeyRotated, summary="Replace my API key (the old one stops working)",
             responses=errors())
async def post_rotate(me: PrincipalDep, session: SessionDep) -> KeyRotated:
    row, clear = await rotate_key(session, me)
    await session.commit()
    return KeyRotated(api_key=clear, key_prefix=row.prefix, role=row.role, created_at=row.created_at)
