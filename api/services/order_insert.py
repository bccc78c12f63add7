"""An order, its mosaic panels and its shot lines written in one statement (``POST /api/orders``):

    WITH ident AS (SELECT nextval(<the order id sequence>) AS id),
         in_set AS (SELECT id, guid FROM customer_set WHERE … FOR SHARE),      -- an order in a Set
         new_order AS (INSERT INTO "order" (id, workflow_id, …) SELECT ident.id, 'order-' || ident.id, …
                       FROM ident [JOIN in_set ON true] RETURNING id, workflow_id),
         panels AS (INSERT INTO order_panel … SELECT new_order.id, p.* FROM new_order, unnest(…) p),  -- a mosaic
         shots AS (INSERT INTO order_shot … SELECT new_order.id, s.* FROM new_order, unnest(…) s)
    SELECT id, workflow_id FROM new_order

One statement is one transaction, with no BEGIN or COMMIT to send: the order is written whole or
not at all. Its workflow id — the order's business key, ``models.temporal_contract.order_workflow_id``
— is written with it, so nothing follows the workflow's start. The Set's row is share-locked until
the statement commits: a concurrent delete of the Set waits, then sees this order (docs/sets.md); a
Set deleted meanwhile leaves no order. Foreign keys (shot line → panel) are checked at the end of
the statement, once every row is in. One prepared statement per shape (Set or not, mosaic or
not), whatever the number of shot lines.
"""

from __future__ import annotations

from functools import cache

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from models.db import CustomerSet, Order, OrderPanel, OrderShot
from models.temporal_contract import order_workflow_id

_ORDER = Order.__table__
_SHOT = OrderShot.__table__
_PANEL = OrderPanel.__table__
_SET = CustomerSet.__table__
#: ``order_workflow_id(n)`` is this prefix and the id.
WORKFLOW_PREFIX = order_workflow_id(0).removesuffix("0")
_KEYS = ("id", "workflow_id", "set_id", "set_guid")
_ORDER_COLUMNS = [c for c in _ORDER.columns if c.name not in _KEYS]
_SHOT_COLUMNS = [c for c in _SHOT.columns if c.name not in ("id", "order_id")]
_PANEL_COLUMNS = [c for c in _PANEL.columns if c.name not in ("id", "order_id")]


def _lines(table: sa.Table, columns: list[sa.Column], prefix: str, new_order: sa.CTE) -> sa.CTE:
    """``INSERT INTO table`` one row per element of the array parameters ``<prefix><column>``."""
    arrays = sa.func.unnest(*[sa.bindparam(prefix + c.name, type_=ARRAY(c.type)) for c in columns])
    rows = arrays.table_valued(*[c.name for c in columns]).render_derived(name=prefix.rstrip("_"))
    picked = sa.select(new_order.c.id, *[rows.c[c.name] for c in columns]).select_from(new_order.join(rows, sa.true()))
    return table.insert().from_select(["order_id", *[c.name for c in columns]], picked).cte(prefix + "rows")


@cache
def _statement(in_set: bool, panels: bool) -> sa.Select:
    """The statement of one shape, built once."""
    ident = sa.select(sa.func.nextval(sa.func.pg_get_serial_sequence('"order"', "id")).label("id")).cte("ident")
    source: sa.FromClause = ident
    keys: list[sa.ColumnElement] = [ident.c.id, sa.literal(WORKFLOW_PREFIX) + sa.cast(ident.c.id, sa.String)]
    if in_set:
        locked = (sa.select(_SET.c.id, _SET.c.guid)
                  .where(_SET.c.id == sa.bindparam("set_id"), _SET.c.customer_id == sa.bindparam("set_customer_id"),
                         _SET.c.deleted_at.is_(None))
                  .with_for_update(read=True).cte("in_set"))
        source = ident.join(locked, sa.true())
        keys += [locked.c.id, locked.c.guid]
    else:
        keys += [sa.null(), sa.null()]
    values = [sa.bindparam(c.name, type_=c.type) for c in _ORDER_COLUMNS]
    new_order = (_ORDER.insert()
                 .from_select([*_KEYS, *[c.name for c in _ORDER_COLUMNS]], sa.select(*keys, *values).select_from(source))
                 .returning(_ORDER.c.id, _ORDER.c.workflow_id, _ORDER.c.set_guid).cte("new_order"))
    writes = [_lines(_SHOT, _SHOT_COLUMNS, "shot_", new_order)]
    if panels:
        writes.insert(0, _lines(_PANEL, _PANEL_COLUMNS, "panel_", new_order))
    return sa.select(new_order.c.id, new_order.c.workflow_id, new_order.c.set_guid).add_cte(*writes)


def _row(model: type[SQLModel], columns: list[sa.Column], values: dict) -> dict:
    """``values`` completed with the model's defaults for ``columns`` (what ``model(**values)``
    would hold, without its cost: a table model's constructor is most of a request's own time)."""
    fields = model.model_fields
    return {c.name: values[c.name] if c.name in values else fields[c.name].get_default(call_default_factory=True)
            for c in columns}


async def insert_order(conn: AsyncConnection, values: dict, shots: list[dict],
                       panels: list[dict] | None = None) -> Order | None:
    """Write an order of ``values`` (``Order`` fields; ``set_id`` given: in that Set of its
    customer's), its ``shots`` (``OrderShot`` fields, at least one) and ``panels`` (``OrderPanel``
    fields) in one statement on ``conn`` (in autocommit: the statement commits itself). Returns the
    order as written — a snapshot to read, attached to no session — or None, writing nothing, when
    the Set is deleted or not the customer's. Raises IntegrityError (e.g. an ``idempotency_key``
    taken by a concurrent request), writing nothing."""
    order = _row(Order, _ORDER_COLUMNS, values)
    params = dict(order)
    lines = [_row(OrderShot, _SHOT_COLUMNS, s) for s in shots]
    params.update({f"shot_{c.name}": [line[c.name] for line in lines] for c in _SHOT_COLUMNS})
    if panels:
        full = [_row(OrderPanel, _PANEL_COLUMNS, p) for p in panels]
        params.update({f"panel_{c.name}": [row[c.name] for row in full] for c in _PANEL_COLUMNS})
    set_id = values.get("set_id")
    if set_id is not None:
        params.update(set_id=set_id, set_customer_id=values["customer_id"])
    row = (await conn.execute(_statement(set_id is not None, bool(panels)), params)).first()
    if row is None:
        return None
    return Order.model_construct(**order, id=row.id, workflow_id=row.workflow_id, set_id=set_id, set_guid=row.set_guid)
