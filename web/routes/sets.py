"""The Sets page (docs/sets.md, Quasar): list with paused state; create, rename, pause/resume,
delete when empty — every change through ``api.services.sets`` (the API's rules and messages)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from pydantic import ValidationError

from api.deps import ResourcesDep, SessionDep
from api.errors import ApiError
from api.schemas.common import MAX_ID
from api.schemas.sets import SetCreate, SetPatch
from api.services import sets
from web.deps import CsrfDep, MeDep
from web.routes.accounts import see_other
from web.templating import render

router = APIRouter(prefix="/app/sets")

SetIdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


async def _page(request: Request, res, session, me, status_code: int = 200, error: str = "",
                error_set: int | None = None, values: dict | None = None):
    """The list (or, without Sets in the plan, the API's reason naming the plan that has them)."""
    try:
        items, not_in_plan = await sets.list_sets(res, session, me), ""
    except ApiError as exc:
        items, not_in_plan = [], exc.message
    return render(request, "sets.html", status_code=status_code, sets=items, not_in_plan=not_in_plan,
                  error=error, error_set=error_set, idem=str(uuid.uuid4()), v=values or {})


def _schema_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'name'}: {e['msg']}" for e in exc.errors())


@router.get("")
async def sets_page(request: Request, me: MeDep, res: ResourcesDep, session: SessionDep):
    return await _page(request, res, session, me)


@router.post("")
async def create(request: Request, me: MeDep, res: ResourcesDep, session: SessionDep, _csrf: CsrfDep,
                 name: Annotated[str, Form()] = "", paused: Annotated[str, Form()] = "",
                 idem: Annotated[str, Form(max_length=200)] = ""):
    """Create through ``sets.create_set``, keyed by the form's idempotency key (a double submit
    creates one Set)."""
    try:
        body = SetCreate(name=name.strip(), paused=paused == "on")
        await sets.create_set(res, session, me, body, idem or None)
    except ValidationError as exc:
        return await _page(request, res, session, me, 422, _schema_message(exc), values={"name": name})
    except ApiError as exc:
        return await _page(request, res, session, me, exc.status_code, exc.message, values={"name": name})
    return see_other("/app/sets")


async def _patch(request, me, res, session, set_id: int, **fields):
    try:
        await sets.update_set(res, session, me, set_id, SetPatch(**fields))
    except ValidationError as exc:
        return await _page(request, res, session, me, 422, _schema_message(exc), error_set=set_id)
    except ApiError as exc:
        return await _page(request, res, session, me, exc.status_code, exc.message, error_set=set_id)
    return see_other("/app/sets")


@router.post("/{set_id}/rename")
async def rename(request: Request, set_id: SetIdPath, me: MeDep, res: ResourcesDep, session: SessionDep,
                 _csrf: CsrfDep, name: Annotated[str, Form()] = ""):
    return await _patch(request, me, res, session, set_id, name=name.strip())


@router.post("/{set_id}/pause")
async def pause(request: Request, set_id: SetIdPath, me: MeDep, res: ResourcesDep, session: SessionDep,
                _csrf: CsrfDep):
    return await _patch(request, me, res, session, set_id, paused=True)


@router.post("/{set_id}/resume")
async def resume(request: Request, set_id: SetIdPath, me: MeDep, res: ResourcesDep, session: SessionDep,
                 _csrf: CsrfDep):
    return await _patch(request, me, res, session, set_id, paused=False)


@router.post("/{set_id}/delete")
async def delete(request: Request, set_id: SetIdPath, me: MeDep, res: ResourcesDep, session: SessionDep,
                 _csrf: CsrfDep):
    """409 ``set_not_empty`` / ``set_is_default`` come back as the API's message beside the Set."""
    try:
        await sets.delete_set(res, session, me, set_id)
    except ApiError as exc:
        return await _page(request, res, session, me, exc.status_code, exc.message, error_set=set_id)
    return see_other("/app/sets")
