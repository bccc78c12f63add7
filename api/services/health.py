"""Readiness checks for ``GET /health/ready``: database and Temporal, each with its own timeout
(``api.health_timeout_seconds``); Voyager as last seen by the observatory monitor
(``observatory_status``, written by ``activities/observatory_status.py``) — a probe never opens a
connection to the telescope PC, and Voyager being off does not make the API unready.

Each check yields a status (``ok`` | ``down``; Voyager also ``unknown`` when the monitor has not
reported within ``api.voyager_stale_seconds``) and a detail (host names, errors) that only admins see.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

from sqlalchemy import select, text
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from api.resources import Resources
from models.db import ObservatoryStatus


async def _timed(coro, timeout: float) -> dict:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(coro, timeout)
        status = "ok"
    except asyncio.TimeoutError:
        status, detail = "down", f"no answer within {timeout:g} s"
    except Exception as exc:  # noqa: BLE001 - a health check reports every failure as data
        status, detail = "down", f"{type(exc).__name__}: {exc}"[:500]
    return {"status": status, "detail": detail, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


async def _database(res: Resources) -> str:
    async with res.engine.connect() as conn:
        version = await conn.scalar(text("SHOW server_version"))
    return f"PostgreSQL {version}"


async def _temporal(res: Resources) -> str:
    client = await res.temporal.get()
    await client.workflow_service.get_system_info(GetSystemInfoRequest())
    return f"{res.settings.temporal.effective_address()} namespace {res.settings.temporal.namespace}"


async def voyager_last_seen(res: Resources) -> dict:
    """Voyager's status from the monitor's row: ``ok`` / ``down`` when fresh, else ``unknown``."""
    telescope = res.settings.orders.telescope
    table = ObservatoryStatus.__table__
    try:
        async with res.engine.connect() as conn:
            row = (await asyncio.wait_for(conn.execute(select(table).where(table.c.telescope == telescope)),
                                          res.settings.api.health_timeout_seconds)).first()
    except Exception as exc:  # noqa: BLE001 - reported as data, like the other checks
        return {"status": "unknown", "detail": f"cannot read the monitor's report: {type(exc).__name__}"}
    if row is None:
        return {"status": "unknown", "detail": f"the observatory monitor of {telescope!r} has not reported yet"}
    age = (datetime.now(timezone.utc) - row.checked_at).total_seconds()
    base = {"checked_at": row.checked_at.isoformat(),
            "last_ok_at": row.last_ok_at.isoformat() if row.last_ok_at else None}
    if age > res.settings.api.voyager_stale_seconds:
        return {**base, "status": "unknown", "detail": f"last report {age:.0f} s ago: {row.detail}"}
    return {**base, "status": "ok" if row.ok else "down", "detail": row.detail}


async def check_ready(res: Resources) -> tuple[bool, dict[str, dict]]:
    """(ready, {"database"|"temporal"|"voyager": {"status", "detail", ...}}). Ready = database and
    Temporal answer; Voyager is reported, never required."""
    timeout = res.settings.api.health_timeout_seconds
    db, temporal, voyager = await asyncio.gather(_timed(_database(res), timeout), _timed(_temporal(res), timeout),
                                                 voyager_last_seen(res))
    checks = {"database": db, "temporal": temporal, "voyager": voyager}
    return db["status"] == "ok" and temporal["status"] == "ok", checks
