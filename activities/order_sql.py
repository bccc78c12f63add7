"""The order's hot statements, one round trip each (the order workflow's activities use them).

Each replaces several ORM round trips that did one job: the order row with its shot lines and
panels read in one statement (``order_store.load_order``, ``ledger.price_and_hold``), a status
change with its ``status`` event (``voyager.submit_target``, ``ingest.close_target``), the progress
recomputed from the frames (``activities/progress.py``). The worker spends 2–3 ms of CPU per
statement in SQLAlchemy and asyncpg, more than PostgreSQL spends running it (bench/orders_e2e.py).

Why a status change can be one statement: its ``SELECT … FOR UPDATE`` in a CTE waits for a
concurrent writer and returns the row's latest version (READ COMMITTED), and the ``UPDATE`` and the
event's ``INSERT`` act on what that lock returned, so a change is checked and written atomically
and once. The progress needs the order row locked by an earlier statement of its transaction (the
ingest does the same), because its count of frames reads the statement's snapshot.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.exceptions import ApplicationError

from core.database import autocommit
from models.orders import FINAL_STATUSES, AbortRecord, AbortRequest, OrderStatus, abort_role
from models.temporal_contract import ERR_ORDER_NOT_FOUND

#: The order columns :data:`READ_ORDER` returns (with ``telescope_slug``, ``shots`` and ``panels``).
ORDER_COLUMNS = ("id", "customer_id", "plan", "status", "target_name", "ra_j2000", "dec_j2000", "pa", "priority",
                 "c_moon_down", "c_hfd_mean_limit", "c_alt_min", "c_ha_start", "c_ha_end", "date_start", "date_end",
                 '"repeat"', "created_at", "set_guid", "target_guid", "price_multiplier", "workflow_id", "mosaic")
_SHOT_COLUMNS = "id, position, filter, exposure, quantity, bin, gain, \"offset\", shot_guid, filter_index, panel_index"
_PANEL_COLUMNS = "panel_index, \"column\", \"row\", name, ra_j2000, dec_j2000, target_guid"

_READ = f"""
SELECT {", ".join("o." + c for c in ORDER_COLUMNS)}, t.slug AS telescope_slug,
       (SELECT json_agg(s ORDER BY s.position, s.id)
        FROM (SELECT {_SHOT_COLUMNS} FROM order_shot WHERE order_id = o.id) s) AS shots,
       (SELECT json_agg(p ORDER BY p.panel_index)
        FROM (SELECT {_PANEL_COLUMNS} FROM order_panel WHERE order_id = o.id) p) AS panels
FROM "order" o LEFT JOIN telescope t ON t.id = o.telescope_id
WHERE o.id = CAST(:order_id AS bigint)
"""

#: Parameters: order_id, workflow_id (None: record none). The order's :data:`ORDER_COLUMNS`, its
#: telescope's ``telescope_slug`` (None without one), ``shots`` (its ``order_shot`` rows by position,
#: ``models.orders.ShotLine`` fields) and ``panels`` (``PanelLine`` fields by index), both lists or
#: None when empty. Records ``workflow_id`` on an order that has none and has shot lines (the
#: statement's snapshot, read here, is from before that write). No row: no such order.
READ_ORDER = sa.text(f"""
WITH claimed AS (
    UPDATE "order" SET workflow_id = CAST(:workflow_id AS varchar)
    WHERE id = CAST(:order_id AS bigint) AND workflow_id IS NULL AND CAST(:workflow_id AS varchar) IS NOT NULL
      AND EXISTS (SELECT 1 FROM order_shot WHERE order_id = CAST(:order_id AS bigint))
)
{_READ}
""").columns(shots=sa.JSON, panels=sa.JSON, mosaic=sa.JSON)

#: :data:`READ_ORDER` without the write, the order row locked (``FOR UPDATE``) for the transaction.
LOCK_AND_READ_ORDER = sa.text(_READ + " FOR UPDATE OF o").columns(shots=sa.JSON, panels=sa.JSON, mosaic=sa.JSON)

#: Parameter: order_id. Locks the order row for the transaction; one row (``id``) back, none when
#: there is no such order.
LOCK_ORDER = sa.text('SELECT id FROM "order" WHERE id = CAST(:order_id AS bigint) FOR UPDATE')

#: Parameter: order_id. :data:`LOCK_ORDER`, and the order's hold in the same row (``order_id``,
#: ``customer_id``, ``amount``, ``from_subscription``, ``from_pack``, ``status``; NULL without one).
LOCK_ORDER_AND_HOLD = sa.text("""
SELECT o.id, h.order_id, h.customer_id, h.amount, h.from_subscription, h.from_pack, h.status
FROM "order" o LEFT JOIN credit_hold h ON h.order_id = o.id
WHERE o.id = CAST(:order_id AS bigint)
FOR UPDATE OF o
""")

#: Parameters: order_id, status, reason, finals (the final statuses), only_from (statuses the change
#: may start from; None = any), aborted_by / abort_reason / abort_role (the abort's record; None = no
#: abort). Locks the order, then moves it to ``status`` with ``reason`` and inserts its ``status``
#: event, unless it already has ``status``, is final or is not in ``only_from`` (the rules of
#: ``order_store.move_status``); records the abort on an order that has none. One row back:
#: ``moved`` (NULL: no such order).
MOVE_STATUS = sa.text("""
WITH old AS (
    SELECT id, status, aborted_by, target_name FROM "order" WHERE id = CAST(:order_id AS bigint) FOR UPDATE
), change AS (
    SELECT old.id, old.target_name,
           old.status <> CAST(:status AS varchar) AND NOT (old.status = ANY(CAST(:finals AS text[])))
               AND (CAST(:only_from AS text[]) IS NULL OR old.status = ANY(CAST(:only_from AS text[]))) AS move,
           old.aborted_by IS NULL AND CAST(:aborted_by AS varchar) IS NOT NULL AS note
    FROM old
), written AS (
    UPDATE "order" o
    SET status = CASE WHEN c.move THEN CAST(:status AS varchar) ELSE o.status END,
        status_reason = CASE WHEN c.move THEN CAST(:reason AS varchar) ELSE o.status_reason END,
        updated_at = CASE WHEN c.move THEN now() ELSE o.updated_at END,
        aborted_by = CASE WHEN c.note THEN CAST(:aborted_by AS varchar) ELSE o.aborted_by END,
        abort_reason = CASE WHEN c.note THEN CAST(:abort_reason AS varchar) ELSE o.abort_reason END,
        abort_role = CASE WHEN c.note THEN CAST(:abort_role AS varchar) ELSE o.abort_role END
    FROM change c
    WHERE o.id = c.id AND (c.move OR c.note)
), event AS (
    INSERT INTO order_event (order_id, kind, payload, email_status, created_at)
    SELECT c.id, 'status', jsonb_build_object('status', CAST(:status AS text), 'reason', CAST(:reason AS text),
                                              'target_name', c.target_name), 'none', now()
    FROM change c WHERE c.move
)
SELECT c.move AS moved FROM (VALUES (1)) AS one(x) LEFT JOIN change c ON true
""")

_PROGRESS_OF = """
WITH o AS (
    SELECT id, GREATEST(1, COALESCE("repeat", 1)) AS runs FROM "order" WHERE id = CAST(:order_id AS bigint)
), frames AS (
    SELECT shot_guid, count(*) AS done, count(*) FILTER (WHERE accepted) AS acc
    FROM shot_done WHERE order_id = CAST(:order_id AS bigint) GROUP BY shot_guid
), per_line AS (
    SELECT l.id, l.exposure, l.quantity * o.runs AS want, COALESCE(f.done, 0) AS done, COALESCE(f.acc, 0) AS acc
    FROM order_shot l JOIN o ON l.order_id = o.id LEFT JOIN frames f ON f.shot_guid = NULLIF(l.shot_guid, '')
), totals AS (
    SELECT CAST(COALESCE(sum(want), 0) AS bigint) AS shots_total,
           CAST(COALESCE(sum(LEAST(acc, want)), 0) AS bigint) AS shots_done,
           CAST(COALESCE(sum(acc), 0) AS bigint) AS frames_accepted,
           CAST(COALESCE(sum(done), 0) AS bigint) AS frames_taken,
           CAST(COALESCE(sum(exposure * LEAST(acc, want)), 0) AS double precision) AS integration_seconds,
           CAST(COALESCE(sum(exposure * want), 0) AS double precision) AS requested_integration_seconds
    FROM per_line
), hfd AS (
    SELECT CAST(round(CAST(avg(hfd) AS numeric), 3) AS double precision) AS mean_hfd
    FROM shot_done WHERE order_id = CAST(:order_id AS bigint) AND accepted
)"""
_PROGRESS_RETURNS = """t.shots_total, t.shots_done, t.frames_accepted, t.frames_taken, t.integration_seconds,
       t.requested_integration_seconds, h.mean_hfd"""

#: Parameters: order_id, cost, credits_held, set_guid, target_guid (the GUIDs in force), shot_ids /
#: shot_guids and panel_indexes / panel_guids (GUIDs to store on lines and panels, arrays),
#: held (move ``pending`` → ``held`` and insert its ``status`` event), target_name (the event's).
#: The write of ``ledger.price_and_hold`` once the hold is made, with the order row locked by an
#: earlier statement of the transaction, which decided every value.
HOLD_WRITE = sa.text("""
WITH shots AS (
    UPDATE order_shot s SET shot_guid = v.guid
    FROM unnest(CAST(:shot_ids AS integer[]), CAST(:shot_guids AS text[])) AS v(id, guid)
    WHERE s.id = v.id AND s.order_id = CAST(:order_id AS bigint)
), panels AS (
    UPDATE order_panel p SET target_guid = v.guid
    FROM unnest(CAST(:panel_indexes AS integer[]), CAST(:panel_guids AS text[])) AS v(panel_index, guid)
    WHERE p.order_id = CAST(:order_id AS bigint) AND p.panel_index = v.panel_index
), event AS (
    INSERT INTO order_event (order_id, kind, payload, email_status, created_at)
    SELECT CAST(:order_id AS bigint), 'status',
           jsonb_build_object('status', 'held', 'reason', '', 'target_name', CAST(:target_name AS text)), 'none', now()
    WHERE CAST(:held AS boolean)
)
UPDATE "order"
SET cost = CAST(:cost AS integer), credits_held = CAST(:credits_held AS integer), updated_at = now(),
    set_guid = CAST(:set_guid AS varchar), target_guid = CAST(:target_guid AS varchar),
    status = CASE WHEN CAST(:held AS boolean) THEN 'held' ELSE status END,
    status_reason = CASE WHEN CAST(:held AS boolean) THEN '' ELSE status_reason END
WHERE id = CAST(:order_id AS bigint)
""")

#: Parameter: order_id. What the final report reads besides the order row, in one round trip:
#: ``filters`` (per filter by name: ``filter``, accepted ``frames``, ``rejected``, accepted
#: ``seconds`` and the accepted frames' mean ``hfd``), ``fits`` (the accepted frames' FITS paths
#: by time taken), ``sessions`` (recorded by the monitor), ``seen_sessions`` (that delivered
#: frames), ``has_panels`` (a mosaic: its per-panel report is read apart).
REPORT_READ = sa.text("""
SELECT
    (SELECT json_agg(f ORDER BY f.filter) FROM (
        SELECT filter, count(*) FILTER (WHERE accepted IS TRUE) AS frames,
               count(*) FILTER (WHERE accepted IS FALSE) AS rejected,
               COALESCE(sum(exposure) FILTER (WHERE accepted IS TRUE), 0.0) AS seconds,
               avg(hfd) FILTER (WHERE accepted IS TRUE) AS hfd
        FROM shot_done WHERE order_id = CAST(:order_id AS bigint) GROUP BY filter) f) AS filters,
    (SELECT json_agg(fits_path ORDER BY taken_at, id) FROM shot_done
     WHERE order_id = CAST(:order_id AS bigint) AND accepted IS TRUE) AS fits,
    (SELECT count(*) FROM voyager_session WHERE order_id = CAST(:order_id AS bigint)) AS sessions,
    (SELECT count(DISTINCT session_guid) FROM shot_done WHERE order_id = CAST(:order_id AS bigint)) AS seen_sessions,
    EXISTS (SELECT 1 FROM order_panel WHERE order_id = CAST(:order_id AS bigint)) AS has_panels
""").columns(filters=sa.JSON, fits=sa.JSON)

#: Parameters: order_id, status, reason, report and payload (JSON), now, captured / released (None:
#: keep the stored ones). The final status with its report, and its ``status`` event (e-mail
#: ``pending``), in one statement; the caller holds the order row.
FINALIZE_WRITE = sa.text("""
WITH event AS (
    INSERT INTO order_event (order_id, kind, payload, email_status, created_at)
    VALUES (CAST(:order_id AS bigint), 'status', :payload, 'pending', now())
)
UPDATE "order"
SET status = CAST(:status AS varchar), status_reason = CAST(:reason AS varchar), report = :report,
    finished_at = :now, updated_at = :now,
    credits_captured = COALESCE(CAST(:captured AS integer), credits_captured),
    credits_released = COALESCE(CAST(:released AS integer), credits_released)
WHERE id = CAST(:order_id AS bigint)
""").bindparams(sa.bindparam("payload", type_=JSONB), sa.bindparam("report", type_=JSONB),
                sa.bindparam("now", type_=sa.DateTime(timezone=True)))

#: Parameter: order_id. Recomputes every shot line's ``done``/``accepted`` (written where they
#: changed) and the order's progress columns from its ``shot_done`` rows, as
#: ``activities/progress.py`` documents, and returns them: ``shots_total``, ``shots_done``,
#: ``frames_accepted``, ``frames_taken``, ``integration_seconds``, ``requested_integration_seconds``,
#: ``mean_hfd`` (rounded to 3 decimals; NULL without an accepted frame with an HFD). No row: no
#: such order. Run it with the order row locked by an earlier statement of the transaction.
REFRESH_PROGRESS = sa.text(f"""{_PROGRESS_OF}, lines AS (
    UPDATE order_shot s SET done = p.done, accepted = p.acc
    FROM per_line p WHERE s.id = p.id AND (s.done <> p.done OR s.accepted <> p.acc)
)
UPDATE "order" SET shots_total = t.shots_total, shots_done = t.shots_done, frames_accepted = t.frames_accepted,
    integration_seconds = t.integration_seconds, requested_integration_seconds = t.requested_integration_seconds,
    mean_hfd = h.mean_hfd
FROM totals t, hfd h
WHERE "order".id = CAST(:order_id AS bigint)
RETURNING {_PROGRESS_RETURNS}
""")

#: :data:`REFRESH_PROGRESS`'s answer, written nowhere (a preview).
PROGRESS_OF = sa.text(f"""{_PROGRESS_OF}
SELECT {_PROGRESS_RETURNS} FROM o, totals t, hfd h
""")


def engine_of(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    """The engine ``sessionmaker`` binds its sessions to."""
    return sessionmaker.kw["bind"]


@asynccontextmanager
async def one_statement(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncConnection]:
    """A pooled connection in autocommit, for one statement that is a transaction of its own (no
    BEGIN and COMMIT round trips; ``core.database.autocommit``)."""
    async with autocommit(engine_of(sessionmaker)) as conn:
        yield conn


def not_found(order_id: int) -> ApplicationError:
    """The non-retryable ``OrderNotFound`` of an order that does not exist."""
    return ApplicationError(f"order {order_id} does not exist", type=ERR_ORDER_NOT_FOUND, non_retryable=True)


async def read_order(conn: AsyncConnection, order_id: int, *, workflow_id: str | None = None,
                     lock: bool = False) -> Any:
    """The order's row as :data:`READ_ORDER` returns it (``lock``: :data:`LOCK_AND_READ_ORDER`,
    which records no ``workflow_id``). Raises non-retryable ``OrderNotFound``."""
    if lock:
        row = (await conn.execute(LOCK_AND_READ_ORDER, {"order_id": order_id})).first()
    else:
        row = (await conn.execute(READ_ORDER, {"order_id": order_id, "workflow_id": workflow_id})).first()
    if row is None:
        raise not_found(order_id)
    return row


async def move_status_now(conn: AsyncConnection, order_id: int, status: OrderStatus, reason: str, *,
                          only_from: tuple[str, ...] | None = None, abort: AbortRecord | None = None) -> bool:
    """:data:`MOVE_STATUS` on ``conn``: the rules of ``order_store.move_status`` (and, with
    ``abort``, of ``order_store.note_abort``) in one statement. Returns True when the status
    changed. Raises non-retryable ``OrderNotFound``."""
    params: dict[str, Any] = {
        "order_id": order_id, "status": status.value, "reason": reason, "finals": [s.value for s in FINAL_STATUSES],
        "only_from": list(only_from) if only_from is not None else None,
        "aborted_by": None, "abort_reason": None, "abort_role": None}
    if abort is not None:
        params.update(aborted_by=abort.requested_by or "unknown", abort_reason=abort.reason,
                      abort_role=abort_role(AbortRequest(requested_by=abort.requested_by, role=abort.role)).value)
    moved = (await conn.execute(MOVE_STATUS, params)).scalar()
    if moved is None:
        raise not_found(order_id)
    return bool(moved)
