"""What an abort would settle now: the credits kept for the frames delivered and the credits
released back to the customer, by the settlement policy itself (``billing.settlement``,
docs/pricing.md §6) on the integration the settle activity would count (``activities.progress``).
Shown by ``GET /api/orders/{id}/abort-preview`` and the web app's abort confirmation."""

from __future__ import annotations

from api.resources import Resources
from api.schemas.orders import AbortPreviewOut
from api.security import Principal
from activities.progress import progress_now
from billing.settlement import preview_settlement
from models.billing import SettlementOutcome
from models.db import Order


async def abort_preview(res: Resources, order: Order, by: Principal) -> AbortPreviewOut:
    """The settlement an abort of ``order`` by ``by`` would give now; nothing is written. ``held`` 0
    while the order holds nothing yet (or its hold is already resolved)."""
    async with res.sessionmaker() as session:
        # The settle activity's own count (accepted frames up to each line's number), written nowhere.
        progress = await progress_now(await session.connection(), order.id, write=False)
        await session.rollback()
    hold = await res.ledger.get_hold(order.id)
    held = hold.amount if hold is not None and hold.status == "open" else 0
    outcome = SettlementOutcome.support_abort if by.has_role("support") else SettlementOutcome.customer_abort
    split = preview_settlement(held, progress.requested_integration_seconds, progress.integration_seconds,
                               outcome, res.settings.billing)
    return AbortPreviewOut(order_id=order.id, held=split.held, captured=split.captured, released=split.released,
                           accepted_integration_seconds=progress.integration_seconds,
                           requested_integration_seconds=progress.requested_integration_seconds)
