"""What ``POST /api/orders`` reads before it writes, in the one statement that also looks up the
caller's API key and counts the request (api/deps.py, ``SharedRateLimiter.hit_if``).

:func:`columns` adds, as scalar subqueries beside the key's row: the caller's subscriptions (its
effective plan, :func:`api.services.customers.effective_plan_of`), its credit balances, the order
an ``Idempotency-Key`` already names, the orders waiting on each online telescope (the assignment's
tie-break, api/services/assignment.py) and a fingerprint of the telescope rows. One round trip
instead of five.

The telescope rows themselves this process keeps, parsed, under their fingerprint
(:class:`TelescopeRows`) and reads again only when the fingerprint changes. Every column but
``last_seen_at`` (stamped every poll by the observatory monitor) and ``updated_at`` is in it, so a
telescope set to maintenance or retired — by the admin API, ``stellar telescope`` or plain SQL, in
any process — changes it: the first order whose statement starts after that change committed no
longer sees the telescope online. No time-to-live, so no staleness bound to document beyond that of
a fresh query.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection

from api.services.customers import EffectivePlan, effective_plan_of
from api.services.order_schedule import WAITING
from models.billing import Balances
from models.db import CreditAccount, Order, Subscription, Telescope
from models.telescopes import TelescopeStatus

_SUB = Subscription.__table__.c
_ACCOUNT = CreditAccount.__table__.c
_ORDER = Order.__table__.c
_TELESCOPE = Telescope.__table__
#: md5 of every telescope row but its poll stamps, in id order (NULL without telescopes).
#: The waiting statuses as one array parameter: ``IN (…)`` of a list is an "expanding" parameter,
#: which SQLAlchemy renders again on every execution.
_WAITING = sa.bindparam("ctx_waiting", list(WAITING), type_=ARRAY(sa.String))
_FINGERPRINT = ("(SELECT md5(string_agg((to_jsonb(tf) - 'last_seen_at' - 'updated_at')::text, '|' ORDER BY tf.id))"
                " FROM telescope tf)")


def columns(customer_id: sa.ColumnElement[int], keyed: bool = False) -> list[sa.ColumnElement]:
    """The context's columns for a statement where ``customer_id`` is the caller's id (a column of
    that statement's FROM, or a bind parameter); ``keyed``: with the order the bind parameter
    ``ctx_idempotency_key`` names (a checked key)."""
    subscriptions = (
        sa.select(sa.func.json_agg(aggregate_order_by(
            sa.func.json_build_array(_SUB.plan, _SUB.status, _SUB.stripe_subscription_id.is_(None),
                                     sa.func.extract("epoch", _SUB.current_period_end)),
            _SUB.created_at.desc(), _SUB.id.desc())))
        .where(_SUB.customer_id == customer_id).scalar_subquery())
    account = (sa.select(sa.func.json_build_array(_ACCOUNT.subscription_credits, _ACCOUNT.pack_credits,
                                                  _ACCOUNT.held, _ACCOUNT.debt))
               .where(_ACCOUNT.customer_id == customer_id).scalar_subquery())
    replay = (sa.select(_ORDER.id).where(_ORDER.customer_id == customer_id,
                                         _ORDER.idempotency_key == sa.bindparam("ctx_idempotency_key", type_=sa.String))
              .scalar_subquery() if keyed else sa.null())
    waiting = (sa.select(_ORDER.telescope_id, sa.func.count().label("n"))
               .join(_TELESCOPE, _TELESCOPE.c.id == _ORDER.telescope_id)
               .where(_TELESCOPE.c.status == TelescopeStatus.ONLINE.value, _ORDER.status == sa.any_(_WAITING))
               .group_by(_ORDER.telescope_id).subquery("waiting"))
    queues = sa.select(sa.func.json_object_agg(waiting.c.telescope_id, waiting.c.n)).scalar_subquery()
    return [subscriptions.label("ctx_subscriptions"), account.label("ctx_account"), replay.label("ctx_replay_id"),
            queues.label("ctx_queues"), sa.literal_column(_FINGERPRINT).label("ctx_telescopes")]


def keyed_columns(customer_id: sa.ColumnElement[int]) -> list[sa.ColumnElement]:
    """:func:`columns` with the ``Idempotency-Key``'s order."""
    return columns(customer_id, keyed=True)


def params(idempotency_key: str | None) -> tuple[Callable[..., list[sa.ColumnElement]], dict]:
    """(the columns function, its bind parameters) for a request with ``idempotency_key`` (checked)."""
    if idempotency_key is None:
        return columns, {}
    return keyed_columns, {"ctx_idempotency_key": idempotency_key}


def _json(value):
    # asyncpg hands json columns back decoded when SQLAlchemy registered its codec, else as text.
    return json.loads(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class OrderContext:
    """The caller's side of an order, read with its key. ``subscriptions``: (plan, status, manual,
    ``current_period_end`` aware UTC or None), newest first; ``replay_id``: the order
    ``idempotency_key`` already names, or None; ``queues``: online telescope id → waiting orders
    (absent when none); ``telescopes``: the rows' fingerprint (None without any telescope)."""

    customer_id: int
    idempotency_key: str | None
    subscriptions: list[tuple[str, str, bool, datetime | None]]
    balances: Balances
    replay_id: int | None
    queues: dict[int, int] = field(default_factory=dict)
    telescopes: str | None = None

    @classmethod
    def of(cls, row, customer_id: int, idempotency_key: str | None) -> "OrderContext":
        """From a row holding :func:`columns`."""
        subs = [(plan, status, bool(manual), None if end is None else datetime.fromtimestamp(float(end), timezone.utc))
                for plan, status, manual, end in _json(row.ctx_subscriptions) or []]
        account = _json(row.ctx_account)
        if account is None:
            balances = Balances(customer_id=customer_id)
        else:
            subscription, pack, held, debt = (int(v) for v in account)
            balances = Balances(customer_id=customer_id, subscription=subscription, pack=pack,
                                available=subscription + pack - debt, held=held, debt=debt)
        queues = {int(k): int(n) for k, n in (_json(row.ctx_queues) or {}).items()}
        return cls(customer_id, idempotency_key, subs, balances, row.ctx_replay_id, queues, row.ctx_telescopes)

    def plan(self, now: datetime | None = None) -> EffectivePlan:
        """The effective plan (:func:`api.services.customers.effective_plan`) at ``now``."""
        return effective_plan_of(self.subscriptions, now)


@cache
def _alone(keyed: bool) -> sa.Select:
    return sa.select(*columns(sa.bindparam("ctx_customer_id", type_=sa.Integer), keyed))


async def fetch(conn: AsyncConnection, customer_id: int, idempotency_key: str | None) -> OrderContext:
    """The context on its own: one statement on ``conn`` (for a caller whose key was looked up
    without it, e.g. the web app's order form)."""
    values = {"ctx_customer_id": customer_id, **params(idempotency_key)[1]}
    row = (await conn.execute(_alone(idempotency_key is not None), values)).one()
    return OrderContext.of(row, customer_id, idempotency_key)


class TelescopeRows:
    """Every telescope row, parsed once per fingerprint (see the module docstring). The rows are
    shared by every request of this process: read them, never change them."""

    def __init__(self) -> None:
        self._fingerprint: str | None = None
        self._rows: tuple[Telescope, ...] = ()

    async def get(self, conn: AsyncConnection, fingerprint: str | None) -> tuple[Telescope, ...]:
        """The rows as of ``fingerprint`` or later, by slug; one statement on ``conn`` when the
        fingerprint is not the one kept."""
        if fingerprint is None:
            return ()
        if fingerprint != self._fingerprint:
            result = (await conn.execute(
                sa.select(_TELESCOPE, sa.literal_column(_FINGERPRINT).label("fingerprint"))
                .order_by(_TELESCOPE.c.slug))).all()
            names = [c.name for c in _TELESCOPE.columns]
            rows = tuple(Telescope(**{n: r._mapping[n] for n in names}) for r in result)
            # Kept under the fingerprint read with them, in the same snapshot: never a newer
            # fingerprint with older rows.
            self._fingerprint, self._rows = (result[0].fingerprint if result else None), rows
            return rows
        return self._rows


#: This process's telescope rows (api/services/orders.py).
TELESCOPES = TelescopeRows()
