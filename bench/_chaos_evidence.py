"""What the chaos benchmark prints when a promise fails (bench/chaos.py), so one failed run is enough
to tell why: an order the API accepted (201) with no row, a workflow failed or terminated.

For each such order: whether anything in the database still names it (its hold, ledger entries,
events — the row was there, then lost — or nothing: never seen by another connection), the order
id sequence and the rows whose id the bench was not given (an answered id that is not the inserted
row's), the workflow's failure from its history, the API's and worker's log lines naming it, and
PostgreSQL's own log of its stops and starts (a crash restart or a recovery shows there).
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError

#: PostgreSQL log lines about its life cycle; the per-client "terminating connection" and
#: "is shutting down/starting up" refusals are counted, not listed.
_PG_LIFE = re.compile(r"shutdown|shut down|starting PostgreSQL|ready to accept|redo|recovery|crash|"
                      r"terminated by signal|was interrupted|not properly shut down|PANIC|checkpoint complete|"
                      r"invalid record|aborting any active", re.I)
_PG_NOISE = re.compile(r"terminating connection due to administrator command|"
                       r"the database system is (shutting down|starting up|not yet accepting)", re.I)
_FAILED_EVENTS = (EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
                  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED, EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)


async def missing_orders(engine, ids: list[int]) -> list[int]:
    """The ids of ``ids`` (answered by ``POST /api/orders``) with no ``order`` row."""
    async with engine.connect() as conn:
        found = set((await conn.execute(sa.text('SELECT id FROM "order" WHERE id = ANY(:ids)'), {"ids": ids})).scalars())
    return sorted({i for i in ids if i not in found})


async def _database_facts(engine, ids: list[int], suspects: list[int]) -> list[str]:
    out: list[str] = []
    async with engine.connect() as conn:
        seq = (await conn.execute(sa.text(
            "SELECT s.last_value FROM pg_sequences s "
            "WHERE format('%I.%I', s.schemaname, s.sequencename) = pg_get_serial_sequence('\"order\"', 'id')"))).scalar()
        count, top = (await conn.execute(sa.text('SELECT count(*), max(id) FROM "order"'))).one()
        out.append(f"- order rows in the database: {count}, highest id {top}; the order id sequence's last value {seq}; "
                   f"ids answered by the API: {sorted(ids)}")
        others = (await conn.execute(sa.text(
            'SELECT id, status, created_at, workflow_id FROM "order" WHERE NOT (id = ANY(:ids)) ORDER BY id'),
            {"ids": ids})).all()
        out.append(f"- rows whose id the API did not answer: {[tuple(str(v) for v in r) for r in others] or 'none'}")
        for i in suspects:
            sid = str(i)
            holds = (await conn.execute(sa.text(
                "SELECT status, amount, captured, created_at, resolved_at FROM credit_hold WHERE order_id = :i"),
                {"i": i})).all()
            entries = (await conn.execute(sa.text(
                "SELECT kind, amount, created_at FROM ledger_entry WHERE reference_type = 'order' "
                "AND reference_id = :sid ORDER BY id"), {"sid": sid})).all()
            events = (await conn.execute(sa.text(
                "SELECT kind, created_at FROM order_event WHERE order_id = :i ORDER BY id"), {"i": i})).all()
            out.append(f"- order {i} in other tables (a trace means the row was committed and seen, then lost): "
                       f"holds {[tuple(str(v) for v in r) for r in holds] or 'none'}; "
                       f"ledger entries {[tuple(str(v) for v in r) for r in entries] or 'none'}; "
                       f"order events {[tuple(str(v) for v in r) for r in events] or 'none'}")
    return out


async def _workflow_failure(client: Client, order_id: int) -> str:
    """The order workflow's status and the failures its history records (message and cause chain)."""
    handle = client.get_workflow_handle(f"order-{order_id}")
    try:
        status = (await handle.describe()).status
        history = await handle.fetch_history()
    except RPCError as exc:
        return f"order-{order_id}: not found in Temporal ({exc.message})"
    failures: list[str] = []
    for e in history.events:
        if e.event_type not in _FAILED_EVENTS:
            continue
        attrs = next((getattr(e, f.name) for f, _ in e.ListFields() if f.name.endswith("_attributes")), None)
        failure = getattr(attrs, "failure", None)
        chain: list[str] = []
        while failure is not None and failure.message:
            chain.append(failure.message)
            failure = failure.cause if failure.HasField("cause") else None
        reason = getattr(attrs, "reason", "")
        text = " ← ".join(chain) or reason or ""
        failures.append(f"{EventType.Name(e.event_type).removeprefix('EVENT_TYPE_').lower()} "
                        f"at {e.event_time.ToDatetime():%H:%M:%S}: {text}")
    return (f"order-{order_id}: {status.name if status else '?'}; "
            + ("; ".join(failures[-5:]) if failures else "no failure in its history"))


def _log_lines(path: Path, order_id: int, limit: int = 15) -> list[str]:
    """Lines of the log at ``path`` that name the order (``order_id=N``, ``"order_id": N``,
    ``order N``, ``order-N``)."""
    if not path.exists():
        return [f"  ({path.name}: no log)"]
    names = re.compile(rf"order(?:-|\s+|_id[\"']?\s*[=:]\s*){order_id}\b")
    hits = [_short(line) for line in path.read_text(errors="replace").splitlines() if names.search(line)]
    if len(hits) > limit:  # the first ones (around the fault) and the last ones (how it ended)
        hits = [*hits[:limit // 2], f"… {len(hits) - limit // 2 * 2} more …", *hits[-(limit // 2):]]
    return [f"  {path.parent.name}/{path.name}: {h}" for h in hits] or [f"  ({path.name}: no line names it)"]


def _short(line: str) -> str:
    """A JSON log line as its time, event and the last line of its exception (the error itself)."""
    with contextlib.suppress(ValueError):
        record = json.loads(line)
        if isinstance(record, dict):
            error = str(record.get("exception") or "").strip().splitlines()[-1:]
            return (f"{record.get('timestamp', '')} {str(record.get('event', ''))[:250]}"
                    + (f" | {error[0][:250]}" if error else ""))
    return line[:400]


def postgres_life(log: Path, limit: int = 60) -> list[str]:
    """PostgreSQL's log lines about its stops, starts and recoveries; the refused-client lines counted."""
    if not log.exists():
        return ["  (no postgres.log)"]
    lines = log.read_text(errors="replace").splitlines()
    noise = sum(1 for line in lines if _PG_NOISE.search(line))
    life = [f"  {line[:300]}" for line in lines if _PG_LIFE.search(line) and not _PG_NOISE.search(line)]
    return life[-limit:] + [f"  ({noise} client connections refused or cut while it stopped or started)"]


async def evidence(engine, client: Client, ids: list[int], suspects: list[int], logs: list[Path],
                   pg_log: Path) -> str:
    """The markdown section printed under a failed run: database facts, each suspect order's
    workflow failure and log lines (``logs``: the API's and worker's), PostgreSQL's life cycle."""
    out = ["## Evidence (promises not kept)", ""]
    with contextlib.suppress(OSError, sa.exc.SQLAlchemyError):
        out += await _database_facts(engine, ids, suspects)
    for i in suspects:
        with contextlib.suppress(RPCError):
            out.append(f"- {await _workflow_failure(client, i)}")
        out.append(f"- log lines naming order {i}:")
        for path in logs:
            out += _log_lines(path, i)
    out += ["- PostgreSQL's life cycle (its postgres.log):", *postgres_life(pg_log), ""]
    return "\n".join(out)
