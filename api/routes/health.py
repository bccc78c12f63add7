"""``GET /health``: database, Temporal and Voyager reachability; 200 when all answer, else 503."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import ResourcesDep
from api.services.health import check_health

router = APIRouter(tags=["health"])


class Check(BaseModel):
    ok: bool
    detail: str
    latency_ms: float


class Checks(BaseModel):
    database: Check
    temporal: Check
    voyager: Check


class Health(BaseModel):
    status: str
    checks: Checks


@router.get("/health", response_model=Health, summary="Reachability of the database, Temporal and Voyager",
            responses={503: {"model": Health, "description": "at least one check failed (see its detail)"}})
async def get_health(res: ResourcesDep) -> JSONResponse:
    healthy, body = await check_health(res)
    return JSONResponse(Health.model_validate(body).model_dump(), status_code=200 if healthy else 503)
