"""Money side of ``OrderWorkflow``: price + hold, then settle or release (docs/order-workflow.md, Life cycle 1 & 5).

Both are idempotent on the order id (``billing.ledger``): a retried hold returns the first hold, a
retried settle returns the first resolution, so a hold is resolved exactly once however often the
workflow or its activities are retried.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.order_constraints import aware_utc, gate_constraints
from activities.order_sql import HOLD_WRITE, LOCK_ORDER_AND_HOLD, engine_of, not_found, one_statement, read_order
from activities.order_store import OrderStoreActivities, guids_in_force
from activities.progress import progress_now
from billing import plans, pricing
from billing.errors import HoldNotFound, IdempotencyConflict, InsufficientCredits, PlanViolation, UnknownPlan
from billing.ledger import Ledger
from billing.settlement import credits_to_capture
from core.settings import Settings
from models.billing import PricedShot
from models.db import Order
from models.orders import (
    ClosedOrder,
    CloseOrderRequest,
    FINAL_STATUSES,
    FinalizeRequest,
    GuidAssignment,
    HoldRequest,
    HoldResult,
    OrderStatus,
    SettleRequest,
    SettleResult,
    ShotLine,
    Shortfall,
    TargetConstraints,
)
from models.temporal_contract import ERR_INSUFFICIENT_CREDITS, ERR_INVALID_ORDER, ERR_PLAN_VIOLATION

log = structlog.get_logger(__name__)
ACTOR = "order-workflow"


class LedgerActivities:
    """``ledger``: :class:`billing.ledger.Ledger` on the same database as ``sessionmaker``;
    ``settings.billing`` holds the settlement thresholds."""

    def __init__(self, ledger: Ledger, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.ledger = ledger
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.store = OrderStoreActivities(sessionmaker, settings)

    @activity.defn(name="ledger.price_and_hold")
    async def price_and_hold(self, ref: HoldRequest) -> HoldResult:
        """Gate the order under its plan, price it and hold the credits (docs/pricing.md §2, §4;
        Engine and "Cycle de vie des transactions" 1. HOLD). Stores ``cost``/``credits_held`` on the
        order and, in that same transaction, the proposed GUIDs (``ref.guids``) and the ``held``
        status (``ref.held``, only from ``pending``): a retry finds them stored and changes nothing.

        Raises non-retryable ApplicationError ``InsufficientCredits`` (details: :class:`Shortfall`)
        or ``PlanViolation`` (details: ``{field: reason}``)."""
        # Read in one statement, no lock (the hold takes the account's; the write below the order's).
        async with one_statement(self.sessionmaker) as conn:
            order = await read_order(conn, ref.order_id)
        lines = [ShotLine.model_validate(s) for s in order.shots or ()]
        customer_id = order.customer_id
        try:
            constraints = plans.gate(order.plan, gate_constraints(order, lines))
        except PlanViolation as exc:
            raise ApplicationError(str(exc), exc.fields, type=ERR_PLAN_VIOLATION, non_retryable=True) from None
        except UnknownPlan as exc:
            raise ApplicationError(str(exc), {"plan": str(exc)}, type=ERR_PLAN_VIOLATION, non_retryable=True) from None
        if not lines:
            raise ApplicationError("order has no shots", type=ERR_INVALID_ORDER, non_retryable=True)
        charged = plans.pricing_input(
            constraints, [PricedShot(filter=s.filter, exposure=s.exposure, quantity=s.quantity) for s in lines]
        )
        # The telescope's multiplier as copied onto the order when it was placed (docs/pricing.md §8).
        cost = pricing.price(charged, order.price_multiplier)
        try:
            hold = await self.ledger.hold(customer_id, ref.order_id, cost, actor=ACTOR)
        except InsufficientCredits as exc:
            details = Shortfall(needed=exc.requested, available=exc.available, shortfall=exc.shortfall)
            raise ApplicationError(str(exc), details.model_dump(), type=ERR_INSUFFICIENT_CREDITS, non_retryable=True) from None
        except IdempotencyConflict as exc:
            # The order already holds a different amount (the price changed between attempts):
            # a bug to look at, never a second hold.
            raise ApplicationError(str(exc), type=ERR_INVALID_ORDER, non_retryable=True) from None
        guids = await self._store_hold(ref, cost, hold.amount)
        log.info("order.held", order_id=ref.order_id, customer_id=customer_id, cost=cost, replayed=hold.replayed)
        return HoldResult(
            order_id=ref.order_id,
            cost=cost,
            credits_held=hold.amount,
            guids=guids,
            constraints=TargetConstraints(
                priority=constraints.priority,
                moon_down=constraints.moon_down,
                hfd_mean_limit=constraints.hfd_mean_limit,
                is_repeat=constraints.is_repeat,
                repeat=constraints.repeat,
                c_mask=constraints.c_mask,
                alt_min=constraints.alt_min,
                ha_start=constraints.ha_start if constraints.ha_start is not None else 0.0,
                ha_end=constraints.ha_end if constraints.ha_end is not None else 0.0,
                date_start=aware_utc(order.date_start),
                date_end=aware_utc(order.date_end),
            ),
        )

    async def _store_hold(self, ref: HoldRequest, cost: int, held: int) -> GuidAssignment | None:
        """In one transaction of three statements, the order row locked first: the progress
        (totals and requested integration, before any frame), then ``cost``/``credits_held``, the
        proposed GUIDs where none is stored (``ref.guids``; returns those in force) and the ``held``
        status from ``pending`` (``ref.held``). Raises non-retryable ``InvalidOrder`` (a line or
        panel with no GUID stored or proposed: nothing is written) or ``OrderNotFound``."""
        async with engine_of(self.sessionmaker).begin() as conn:
            order = await read_order(conn, ref.order_id, lock=True)
            guids, new_shots, new_panels = guids_in_force(order, ref.guids)
            await progress_now(conn, ref.order_id)
            await conn.execute(HOLD_WRITE, {
                "order_id": ref.order_id, "cost": cost, "credits_held": held,
                "set_guid": guids.set_guid if guids else order.set_guid,
                "target_guid": guids.target_guid if guids else order.target_guid,
                "shot_ids": [int(k) for k in new_shots], "shot_guids": list(new_shots.values()),
                "panel_indexes": [int(k) for k in new_panels], "panel_guids": list(new_panels.values()),
                "held": ref.held and order.status == OrderStatus.PENDING.value, "target_name": order.target_name})
        return guids

    @activity.defn(name="ledger.settle")
    async def settle(self, req: SettleRequest) -> SettleResult:
        """Capture what ``billing.settlement.credits_to_capture`` says for the accepted integration
        (recomputed from the ingested frames) and release the rest; or, with ``release``, void the
        hold. Exactly once (the ledger returns the first resolution on a retry). An order without a
        hold (rejected before holding) settles to zeros."""
        return await settle_order(self.ledger, self.sessionmaker, self.settings, req, actor=ACTOR)

    @activity.defn(name="ledger.settle_and_finalize")
    async def settle_and_finalize(self, req: CloseOrderRequest) -> ClosedOrder:
        """:meth:`settle`, then the final status, report and notification
        (``order_store.finalize_order``): the order's last two steps as one. Each part is
        exactly-once on its own (the ledger returns the first resolution, the finalize the stored
        report), so a retry after a crash between them settles nothing twice. Raises non-retryable
        ``InvalidOrder`` for a status that is not final."""
        if req.status not in FINAL_STATUSES:
            raise ApplicationError(f"{req.status} is not final", type=ERR_INVALID_ORDER, non_retryable=True)
        settled = await settle_order(self.ledger, self.sessionmaker, self.settings,
                                     SettleRequest(order_id=req.order_id, outcome=req.outcome, reason=req.reason,
                                                   release=req.release), actor=ACTOR, store=False)
        # The settle just recomputed the progress (every ingest keeps it current too), and its
        # credits are stored with the final status: one transaction fewer, two statements fewer.
        report = await self.store.finalize(FinalizeRequest(order_id=req.order_id, status=req.status, reason=req.reason),
                                           refresh=False, settled=settled)
        return ClosedOrder(settled=settled, report=report)


async def settle_order(ledger: Ledger, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings,
                       req: SettleRequest, *, actor: str, store: bool = True) -> SettleResult:
    """Settle (or, with ``req.release``, release) the order's hold by its delivered frames, once,
    and (``store``) store the captured/released credits on the order (else the caller does).
    ``actor``: who settles (ledger entries' ``actor``: ``order-workflow`` or ``repair``). Shared by
    :meth:`LedgerActivities.settle`, :meth:`LedgerActivities.settle_and_finalize` and the repair
    sweep (activities/repair.py)."""
    # One transaction, two statements: the order row locked (serialized with the ingest of a
    # frame) with its hold read, then the progress recomputed from the frames.
    async with engine_of(sessionmaker).begin() as conn:
        row = (await conn.execute(LOCK_ORDER_AND_HOLD, {"order_id": req.order_id})).first()
        if row is None:
            raise not_found(req.order_id)
        progress = await progress_now(conn, req.order_id)
    held = Ledger.hold_from_row(row) if row.order_id is not None else None
    if held is None:
        return SettleResult(order_id=req.order_id, held=0, captured=0, released=0,
                            requested_seconds=progress.requested_integration_seconds,
                            accepted_seconds=progress.integration_seconds)
    requested = progress.requested_integration_seconds
    accepted = progress.integration_seconds
    reason = req.reason or req.outcome.value
    try:
        if req.release or requested <= 0:
            res = await ledger.release(req.order_id, actor=actor, reason=reason)
        else:
            capture = credits_to_capture(held.amount, requested, accepted, req.outcome, settings.billing)
            res = await ledger.capture(req.order_id, capture, actor=actor, reason=reason)
    except HoldNotFound:  # pragma: no cover - get_hold just found it
        raise ApplicationError(f"hold of order {req.order_id} vanished", type=ERR_INVALID_ORDER, non_retryable=True) from None
    if store:
        async with one_statement(sessionmaker) as conn:  # one UPDATE: the row was found above
            await conn.execute(sa.update(Order.__table__).where(Order.__table__.c.id == req.order_id).values(
                credits_captured=res.captured, credits_released=res.released, updated_at=datetime.now(UTC)))
    log.info("order.settled", order_id=req.order_id, outcome=req.outcome.value, held=res.held,
             captured=res.captured, released=res.released, replayed=res.replayed, actor=actor)
    return SettleResult(order_id=req.order_id, held=res.held, captured=res.captured, released=res.released,
                        requested_seconds=requested, accepted_seconds=accepted)
