"""The live dashboard is a plan feature: who may watch an order while it runs.

docs/pricing.md §1: the real-time dashboard (``features.dashboard``) is sold with Nebula and
Quasar. "Live" means the event stream (``GET /api/orders/{id}/events``) at any time, and the frame
previews (JPG, latest frames) of an order that has not ended. Without the feature a customer
still reads status and progress (``GET /api/orders/{id}``) and, once the order has ended, its
report and gallery. Support staff see everything.
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import Forbidden
from api.security import Principal
from api.services.customers import effective_plan
from billing.plans import PLANS, get_plan
from models.db import Order
from models.orders import FINAL_STATUSES

#: Error code of a refused live view (api/errors.py).
DASHBOARD_NOT_IN_PLAN = "dashboard_not_in_plan"
_FINAL = {s.value for s in FINAL_STATUSES}


def dashboard_plans() -> list[str]:
    """Names of the plans that include the live dashboard, cheapest first (``["Nebula", "Quasar"]``)."""
    return [p.name for p in PLANS.values() if p.dashboard]


async def has_dashboard(session: AsyncSession, principal: Principal) -> bool:
    """Whether ``principal`` may watch orders live: support/admin, or a customer whose effective plan
    (api/services/customers.py) has ``dashboard``."""
    if principal.has_role("support"):
        return True
    return get_plan((await effective_plan(session, principal.customer_id)).plan).dashboard


async def require_dashboard(session: AsyncSession, principal: Principal) -> None:
    """Raises Forbidden (403 ``dashboard_not_in_plan``, naming the plans that include it) unless
    :func:`has_dashboard`."""
    if not await has_dashboard(session, principal):
        raise Forbidden(f"the live dashboard is included in the {' and '.join(dashboard_plans())} plans; "
                        "follow this order's status with GET /api/orders/{id}, its report and gallery "
                        "are yours when it ends", code=DASHBOARD_NOT_IN_PLAN)


def is_live(order: Order) -> bool:
    """An order whose frames are still live previews: it has not reached a final status."""
    return order.status not in _FINAL


async def may_see_live_frames(session: AsyncSession, principal: Principal, order: Order) -> bool:
    """Frame previews of ``order`` are visible: it has ended, or the caller has the dashboard."""
    return not is_live(order) or await has_dashboard(session, principal)
