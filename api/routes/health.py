"""Health for operators and orchestrators.

* ``GET /health/live``: the process answers (no I/O at all).
* ``GET /health/ready``: 200 when the database and Temporal answer, else 503; every telescope's
  Voyager (each one not retired) as last seen by its own observatory monitor, reported but never
  required (a day a telescope PC is off the API still serves): ``checks.voyagers`` by telescope
  slug, and ``checks.voyager`` summing them up (``down`` if any is down, else ``unknown`` if any
  is unknown, else ``ok``; with one telescope, its own status as before). Anonymous callers get
  statuses only; an admin key adds each check's detail (``detail``) and each telescope's
  (``voyagers_detail``). docs/network.md §4.
* ``GET /health``: the same answer as ``/health/ready`` (kept for existing probes).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from api.deps import ResourcesDep, bearer_scheme, current_principal
from api.errors import Unauthorized
from api.services.health import check_ready

router = APIRouter(tags=["health"])

Status = Literal["ok", "down", "unknown"]


class Live(BaseModel):
    status: Literal["ok"]


class ReadyChecks(BaseModel):
    database: Status
    temporal: Status
    voyager: Status = Field(description="every telescope's Voyager summed up: down if any is down, else unknown if "
                                        "any is unknown, else ok; never makes the API unready")
    voyagers: dict[str, Status] = Field(
        default_factory=dict, description="by telescope slug (each one not retired): its Voyager as last seen by its "
                                          "own observatory monitor", examples=[{"spain": "ok", "chile": "unknown"}])


class CheckDetail(BaseModel):
    status: Status
    detail: str
    latency_ms: float | None = None
    checked_at: str | None = Field(default=None, description="Voyager: the monitor's last report, ISO 8601")
    last_ok_at: str | None = Field(default=None, description="Voyager: the last poll it answered, ISO 8601")


class Ready(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: ReadyChecks
    detail: dict[str, CheckDetail] | None = Field(default=None, description="admins only: hosts, versions, errors")
    voyagers_detail: dict[str, CheckDetail] | None = Field(
        default=None, description="admins only: each telescope's Voyager check (by slug), with its monitor's last report")


@router.get("/health/live", response_model=Live, summary="The process answers")
async def get_live() -> Live:
    return Live(status="ok")


async def _is_admin(request: Request, res: ResourcesDep,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]) -> bool:
    """An admin key sees the detail; no key or any other key sees statuses only (never a 401, so
    probes need no key). Over the client's rate limits: 429 (``RateLimited`` propagates)."""
    if credentials is None:
        return False
    try:
        principal = await current_principal(request, res, credentials)
    except Unauthorized:
        return False
    return principal.has_role("admin")


_READY_DOC = {"response_model": Ready,
              "responses": {503: {"model": Ready, "description": "the database or Temporal does not answer"}}}


@router.get("/health/ready", summary="Database and Temporal answer (every telescope's Voyager reported)",
            **_READY_DOC)
async def get_ready(res: ResourcesDep, admin: Annotated[bool, Depends(_is_admin)]) -> JSONResponse:
    ready, checks, voyagers = await check_ready(res)
    body = Ready(status="ready" if ready else "not_ready",
                 checks=ReadyChecks(**{name: c["status"] for name, c in checks.items()},
                                    voyagers={slug: c["status"] for slug, c in voyagers.items()}),
                 detail={name: CheckDetail(**c) for name, c in checks.items()} if admin else None,
                 voyagers_detail={slug: CheckDetail(**c) for slug, c in voyagers.items()} if admin else None)
    return JSONResponse(body.model_dump(exclude_none=not admin), status_code=200 if ready else 503)


@router.get("/health", summary="Same as /health/ready", **_READY_DOC)
async def get_health(res: ResourcesDep, admin: Annotated[bool, Depends(_is_admin)]) -> JSONResponse:
    return await get_ready(res, admin)
