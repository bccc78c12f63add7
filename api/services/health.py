"""Reachability checks for ``GET /health``: database, Temporal, Voyager (README, "API at a glance").

Each check has its own timeout (``api.health_timeout_seconds``) and returns ``ok`` with a short
detail; one failing check makes the whole answer 503.
"""

from __future__ import annotations

import asyncio
import json
import time

from sqlalchemy import text
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from api.resources import Resources


async def _timed(coro, timeout: float) -> dict:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(coro, timeout)
        ok = True
    except asyncio.TimeoutError:
        ok, detail = False, f"no answer within {timeout:g} s"
    except Exception as exc:  # noqa: BLE001 - a health check reports every failure as data
        ok, detail = False, f"{type(exc).__name__}: {exc}"[:500]
    return {"ok": ok, "detail": detail, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


async def _database(res: Resources) -> str:
    async with res.engine.connect() as conn:
        version = await conn.scalar(text("SHOW server_version"))
    return f"PostgreSQL {version}"


async def _temporal(res: Resources) -> str:
    client = await res.temporal.get()
    await client.workflow_service.get_system_info(GetSystemInfoRequest())
    return f"{res.settings.temporal.effective_address()} namespace {res.settings.temporal.namespace}"


async def _voyager(res: Resources) -> str:
    """TCP connect and read the ``Version`` event Voyager sends first (docs/voyager-protocol.md §2.1)."""
    host, port = res.settings.voyager.effective_host(), res.settings.voyager.port
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    try:
        line = await reader.readline()
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
    try:
        event = json.loads(line)
    except ValueError:
        raise RuntimeError(f"{host}:{port} did not send a Version event") from None
    if not isinstance(event, dict) or event.get("Event") != "Version":
        raise RuntimeError(f"{host}:{port} sent {str(event)[:80]!r} instead of a Version event")
    return f"{host}:{port} {event.get('VOYVersion', '')}".strip()


async def check_health(res: Resources) -> tuple[bool, dict]:
    """(all ok, {"status": "ok"|"degraded", "checks": {name: {ok, detail, latency_ms}}})."""
    timeout = res.settings.api.health_timeout_seconds
    names = ("database", "temporal", "voyager")
    results = await asyncio.gather(_timed(_database(res), timeout), _timed(_temporal(res), timeout),
                                   _timed(_voyager(res), timeout))
    checks = dict(zip(names, results))
    healthy = all(c["ok"] for c in results)
    return healthy, {"status": "ok" if healthy else "degraded", "checks": checks}
