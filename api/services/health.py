"""Readiness checks for ``GET /health/ready``: database and Temporal, each with its own timeout
(``api.health_timeout_seconds``); every telescope's Voyager as last seen by its own observatory
monitor (``observatory_status``, one row per telescope slug, written by
``activities/observatory_status.py``) — a probe never opens a connection to a telescope PC, and a
Voyager being off does not make the API unready.

Each check yields a status (``ok`` | ``down``; a Voyager also ``unknown`` when its monitor has not
reported within ``api.voyager_stale_seconds``) and a detail (host names, errors) that only admins
see. The telescopes reported are every one not retired, and ``orders.telescope`` (the
single-telescope worker's monitor reports under it); ``voyager`` sums them up: ``down`` when any is
down, else ``unknown`` when any is unknown, else ``ok`` (docs/network.md §4).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

from sqlalchemy import select, text
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from api.resources import Resources
from models.db import ObservatoryStatus, Telescope
from models.telescopes import TelescopeStatus


async def _timed(coro, timeout: float) -> dict:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            detail = await coro
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


def _seen(slug: str, row, now: datetime, stale_seconds: float) -> dict:
    """One telescope's Voyager from its monitor's row (None: never reported)."""
    if row is None:
        return {"status": "unknown", "detail": f"the observatory monitor of {slug!r} has not reported yet"}
    age = (now - row.checked_at).total_seconds()
    base = {"checked_at": row.checked_at.isoformat(),
            "last_ok_at": row.last_ok_at.isoformat() if row.last_ok_at else None}
    if age > stale_seconds:
        return {**base, "status": "unknown", "detail": f"last report {age:.0f} s ago: {row.detail}"}
    return {**base, "status": "ok" if row.ok else "down", "detail": row.detail}


async def voyagers_last_seen(res: Resources) -> dict[str, dict]:
    """Every reported telescope's Voyager, by slug (sorted): ``{"status", "detail", "checked_at",
    "last_ok_at"}``, ``ok`` / ``down`` when its monitor's report is fresh, else ``unknown``. When
    the table cannot be read, ``orders.telescope`` alone, ``unknown``."""
    reference = res.settings.orders.telescope
    telescopes, status = Telescope.__table__, ObservatoryStatus.__table__

    async def read():
        async with res.engine.connect() as conn:
            slugs = {r.slug: r.status for r in await conn.execute(select(telescopes.c.slug, telescopes.c.status))}
            wanted = sorted({s for s, st in slugs.items() if st != TelescopeStatus.RETIRED.value}
                            | ({reference} if slugs.get(reference) != TelescopeStatus.RETIRED.value else set()))
            rows = {r.telescope: r for r in await conn.execute(select(status).where(status.c.telescope.in_(wanted)))}
            return wanted, rows

    try:
        async with asyncio.timeout(res.settings.api.health_timeout_seconds):
            wanted, rows = await read()
    except Exception as exc:  # noqa: BLE001 - reported as data, like the other checks
        return {reference: {"status": "unknown", "detail": f"cannot read the monitors' reports: {type(exc).__name__}"}}
    now = datetime.now(timezone.utc)
    return {slug: _seen(slug, rows.get(slug), now, res.settings.api.voyager_stale_seconds) for slug in wanted}


def voyager_summary(per_telescope: dict[str, dict]) -> dict:
    """The one ``voyager`` check of ``per_telescope`` (:func:`voyagers_last_seen`): ``down`` when
    any is down, else ``unknown`` when any is unknown (or none is reported), else ``ok``; the detail
    names the telescopes that are not ok. One telescope: its own check, unchanged."""
    if len(per_telescope) == 1:
        return dict(next(iter(per_telescope.values())))
    statuses = [c["status"] for c in per_telescope.values()]
    status = "down" if "down" in statuses else "unknown" if "unknown" in statuses or not statuses else "ok"
    bad = [f"{slug} {c['status']}: {c['detail']}" for slug, c in per_telescope.items() if c["status"] != "ok"]
    detail = f"{len(statuses) - len(bad)} of {len(statuses)} telescope(s) ok" + (f"; {'; '.join(bad)}" if bad else "")
    return {"status": status, "detail": detail[:2000]}


async def check_ready(res: Resources) -> tuple[bool, dict[str, dict], dict[str, dict]]:
    """(ready, {"database"|"temporal"|"voyager": {"status", "detail", ...}}, {slug: its Voyager's
    check}). Ready = database and Temporal answer; Voyagers are reported, never required."""
    timeout = res.settings.api.health_timeout_seconds
    db, temporal, voyagers = await asyncio.gather(_timed(_database(res), timeout), _timed(_temporal(res), timeout),
                                                  voyagers_last_seen(res))
    checks = {"database": db, "temporal": temporal, "voyager": voyager_summary(voyagers)}
    return db["status"] == "ok" and temporal["status"] == "ok", checks, voyagers
