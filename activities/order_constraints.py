"""The scheduling constraints of an order row, read in one place for the two steps that take them.

The row is ``activities.order_sql.read_order``'s (the ``orders`` columns). ``order_store.load_order``
hands them to the workflow as stored (:func:`stored_constraints`); ``ledger.price_and_hold`` hands
them to the plan gate (:func:`gate_constraints`), where an HFD mean limit of 0 — the column's "no
custom limit" — is ``None``, "not asked" (``models.billing.OrderConstraints``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypedDict

from models.billing import OrderConstraints
from models.orders import ShotLine


class StoredConstraints(TypedDict):
    """An order row's constraint columns (docs/order-workflow.md; docs/pricing.md §4 for the plan
    rules): ``priority`` 0–2; ``c_moon_down``; ``c_hfd_mean_limit`` px, 0.0 = no custom limit;
    ``repeat`` runs ≥ 1; ``c_alt_min`` degrees; ``c_ha_start``/``c_ha_end`` hours −12…12, None =
    no hour-angle window; ``date_start``/``date_end`` aware UTC, None = open."""

    priority: int
    c_moon_down: bool
    c_hfd_mean_limit: float
    repeat: int
    c_alt_min: float
    c_ha_start: float | None
    c_ha_end: float | None
    date_start: datetime | None
    date_end: datetime | None


def stored_constraints(order: Any) -> StoredConstraints:
    """The constraint columns of ``order`` as stored (dates made aware UTC): what the workflow's
    ``OrderSnapshot`` carries."""
    return StoredConstraints(
        priority=order.priority,
        c_moon_down=order.c_moon_down,
        c_hfd_mean_limit=order.c_hfd_mean_limit,
        repeat=order.repeat,
        c_alt_min=order.c_alt_min,
        c_ha_start=order.c_ha_start,
        c_ha_end=order.c_ha_end,
        date_start=aware_utc(order.date_start),
        date_end=aware_utc(order.date_end),
    )


def gate_constraints(order: Any, lines: list[ShotLine]) -> OrderConstraints:
    """The constraints of ``order`` as ``billing.plans.gate`` takes them (docs/pricing.md §4): the
    stored columns, but an HFD mean limit of 0 is None ("not asked": the plan's standard limit
    applies), and ``mosaic_panels`` the distinct panels of its shot ``lines`` (0 for a single
    field, docs/mosaics.md)."""
    stored = stored_constraints(order)
    return OrderConstraints(**{
        **stored,
        "c_hfd_mean_limit": stored["c_hfd_mean_limit"] or None,
        "mosaic_panels": len({s.panel_index for s in lines if s.panel_index is not None}),
    })


def aware_utc(value: datetime | None) -> datetime | None:
    """``value`` with UTC attached when the database gave it naive (None stays None)."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
