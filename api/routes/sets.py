"""``/api/sets``: a Quasar customer's RoboTarget Sets (docs/sets.md). Logic: api/services/sets.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response

from api.deps import PrincipalDep, ResourcesDep, SessionDep
from api.errors import errors
from api.schemas.sets import SetCreate, SetId, SetList, SetOut, SetPatch
from api.services import sets
from api.services.orders import MAX_IDEMPOTENCY_KEY, check_idempotency_key

router = APIRouter(prefix="/api/sets", tags=["sets"])

IdempotencyKey = Annotated[
    str | None,
    Header(max_length=MAX_IDEMPOTENCY_KEY, description="same key → the Set it created (200)"),
]


@router.post("", status_code=201, response_model=SetOut, summary="Create a Set (Quasar)",
             responses={200: {"model": SetOut, "description": "replay of an earlier request with this Idempotency-Key"},
                        **errors(403, 409)})
async def post_set(body: SetCreate, me: PrincipalDep, res: ResourcesDep, session: SessionDep, response: Response,
                   idempotency_key: IdempotencyKey = None) -> SetOut:
    """A named RoboTarget Set (tag ``user_<id>``), enabled unless ``paused``; place orders in it
    with ``set_id``. 403 ``sets_not_in_plan`` without Quasar; 409 ``set_name_taken``."""
    out, created = await sets.create_set(res, session, me, body, check_idempotency_key(idempotency_key))
    if not created:
        response.status_code = 200
    return out


@router.get("", response_model=SetList, summary="List my Sets (Quasar)", responses=errors(403))
async def get_sets(me: PrincipalDep, res: ResourcesDep, session: SessionDep) -> SetList:
    """The default Set (where orders without ``set_id`` go) first, then the others."""
    return SetList(items=await sets.list_sets(res, session, me))


@router.get("/{set_id}", response_model=SetOut, summary="One of my Sets (Quasar)", responses=errors(403, 404))
async def get_set(set_id: SetId, me: PrincipalDep, res: ResourcesDep, session: SessionDep) -> SetOut:
    return await sets.read_set(res, session, me, set_id)


@router.patch("/{set_id}", response_model=SetOut, summary="Rename, pause or resume one of my Sets (Quasar)",
              responses=errors(403, 404, 409))
async def patch_set(set_id: SetId, body: SetPatch, me: PrincipalDep, res: ResourcesDep,
                    session: SessionDep) -> SetOut:
    """``paused`` true: Voyager starts no session on the Set's targets (a session already running
    stops after its current frame); their orders wait and their deadlines still run. false: resumed."""
    return await sets.update_set(res, session, me, set_id, body)


@router.delete("/{set_id}", status_code=204, summary="Delete one of my empty Sets (Quasar)",
               responses=errors(403, 404, 409))
async def delete_set(set_id: SetId, me: PrincipalDep, res: ResourcesDep, session: SessionDep) -> Response:
    """409 ``set_not_empty`` while an order in it has not ended; 409 ``set_is_default`` for the default Set."""
    await sets.delete_set(res, session, me, set_id)
    return Response(status_code=204)
