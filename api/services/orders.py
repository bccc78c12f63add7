"""Order creation and abort: validation, plan gate, observability, idempotency, workflow start.

``POST /api/orders`` checks, in this order, so nothing is held for a request that cannot run:
the named telescope exists (404 ``unknown_telescope``) → field coherence (422; filters among the
candidate telescopes'; a mosaic's shot quantities must divide by its panel count, docs/mosaics.md)
→ catalogue lookup (422 ``unknown_target``) → ``set_id`` (403 ``sets_not_in_plan`` without Quasar,
404 ``set_not_found``; docs/sets.md) → plan gate (403 ``plan_violation``, mosaics too) → telescope
assignment (api/services/assignment.py: 409 ``telescope_unavailable``, 422 for a filter it lacks,
``target_never_observable`` per telescope, ``no_telescope_fits``) → available credits (402
``credit_debt`` while the account owes credits, else 402 ``insufficient_credits``) → panel centres
of a mosaic (``core.mosaic``, from the chosen telescope's field of view) → insert Order +
OrderShots (+ OrderPanels) with the telescope, its price multiplier and the reason → start
``OrderWorkflow`` (which prices again and holds the credits).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import structlog
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from api.catalog import UnknownTarget, resolve
from api.errors import (
    IDEMPOTENCY_KEY_MISMATCH,
    TEMPORAL_UNAVAILABLE,
    UNKNOWN_TARGET,
    WORKFLOW_UNRESPONSIVE,
    ApiError,
    Unprocessable,
    domain_error,
)
from api.resources import Resources
from api.schemas.orders import AbortOut, OrderCreate
from api.schemas.pricing import EstimateTarget
from api.security import Principal
from api.services import order_context, telescopes
from api.services.assignment import Need, assign
from api.services.order_context import OrderContext
from api.services.order_insert import insert_order
from api.services.sets import find_set, require_sets, set_not_found
from api.services.telescopes import unknown_telescope
from billing.errors import CreditDebt, InsufficientCredits
from billing.ledger import Ledger
from billing.manual_plans import expire_manual_plans
from billing.plans import gate, get_plan, pricing_input
from billing.pricing import price, requested_integration_seconds
from core.database import RequestConnection, autocommit_on, autocommit_session
from core.mosaic import MosaicSpec, Panel, plan_panels, split_refusal
from core.order_control import AbortRefused, OrderWorkflowNotFound, abort_order, start_order_workflow
from models.billing import PricedShot, VoyagerTargetConstraints
from models.db import Order, OrderShot, Telescope
from models.orders import NO_ABORT_STATUSES, AbortRole, OrderStatus
from models.telescopes import ANY, TelescopeStatus, optics_of
from models.temporal_contract import ERR_ABORT_REFUSED

log = structlog.get_logger(__name__)

MAX_IDEMPOTENCY_KEY = 255
#: How far ahead an order's window may reach: beyond it nothing can be scheduled sensibly, and
#: dates near year 9999 would overflow the visibility check's date arithmetic.
ORDER_HORIZON = timedelta(days=2 * 366)


def request_hash(req: OrderCreate) -> str:
    """SHA-256 of the validated body, defaults filled in, keys sorted: equal bodies, equal hash."""
    # Omitted ``set_id`` and ``mosaic`` hash as before they existed: earlier keys keep replaying.
    body = req.model_dump(mode="json")
    for optional in ("set_id", "mosaic"):
        if body.get(optional) is None:
            body.pop(optional, None)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def valid_idempotency_key(key: str) -> bool:
    """``key`` is 1–255 printable ASCII characters without spaces."""
    return 0 < len(key) <= MAX_IDEMPOTENCY_KEY and all(32 < ord(c) < 127 for c in key)


def check_idempotency_key(key: str | None) -> str | None:
    """Raises Unprocessable unless ``key`` is 1–255 printable ASCII characters."""
    if key is None:
        return None
    if not valid_idempotency_key(key):
        raise Unprocessable("invalid Idempotency-Key", fields={
            "Idempotency-Key": f"1–{MAX_IDEMPOTENCY_KEY} printable ASCII characters without spaces"})
    return key


def _field_errors(req: OrderCreate, filters: list[str], now: datetime,
                  owner: str = "the telescope has") -> tuple[dict[str, str], list[str]]:
    """Cross-field checks the schema cannot make; returns (errors, canonical filter names).
    ``owner``: who has ``filters``, with its verb, for the message ("telescope ohp has")."""
    errors: dict[str, str] = {}
    by_lower = {f.lower(): f for f in filters}
    canonical: list[str] = []
    for i, shot in enumerate(req.shots):
        name = by_lower.get(shot.filter.lower())
        if name is None:
            errors[f"shots.{i}.filter"] = f"unknown filter {shot.filter!r}; {owner} {', '.join(filters)}"
        canonical.append(name or shot.filter)
    if (req.ra_j2000 is None) != (req.dec_j2000 is None):
        missing = "dec_j2000" if req.dec_j2000 is None else "ra_j2000"
        errors[missing] = "give both ra_j2000 and dec_j2000, or neither to resolve target_name"
    if req.date_start and req.date_end and req.date_end <= req.date_start:
        errors["date_end"] = "date window is inverted: date_end must be after date_start"
    elif req.date_end and req.date_end <= now:
        errors["date_end"] = "date window is in the past"
    for name in ("date_start", "date_end"):
        value = getattr(req, name)
        if value is not None and value > now + ORDER_HORIZON and name not in errors:
            errors[name] = f"must be within {ORDER_HORIZON.days} days from now"
    if (req.c_ha_start is None) != (req.c_ha_end is None):
        errors["c_ha_end" if req.c_ha_end is None else "c_ha_start"] = "give both c_ha_start and c_ha_end, or neither"
    if req.mosaic is not None:
        panels = req.mosaic.columns * req.mosaic.rows
        for i, shot in enumerate(req.shots):
            if refusal := split_refusal(shot.quantity, panels):
                errors[f"shots.{i}.quantity"] = refusal
    return errors, canonical


def gate_order(plan_id: str | None, req: OrderCreate | EstimateTarget) -> VoyagerTargetConstraints:
    """``req`` (an order, or the estimate of one) checked against the plan ``plan_id`` (a mosaic
    counts its panels), as :func:`billing.plans.gate` maps it: the constraints the order runs with
    (moon-down forced on Quasar). Raises PlanViolation (docs/pricing.md §4)."""
    asked = req.gate_request()
    if req.mosaic is not None:
        asked.mosaic_panels = req.mosaic.columns * req.mosaic.rows
    return gate(plan_id, asked)


def order_need(req: OrderCreate | EstimateTarget, *, ra_j2000: float, dec_j2000: float, filters: list[str],
               moon_down: bool, now: datetime, lifetime_days: int) -> Need:
    """What the order ``req`` (or the estimate of one) asks of a telescope
    (api/services/assignment.py): ``ra_j2000`` hours, ``dec_j2000`` degrees (resolved from the
    catalogue when ``req`` has none); ``filters``: its shot lines' filter names; ``moon_down``: as
    the plan gate forces it (:func:`gate_order`); the window from ``now`` (aware UTC) or
    ``date_start`` to ``date_end``, else ``lifetime_days`` from now (an inverted one is the
    caller's to refuse). An estimate without a name is named by its coordinates. ``POST
    /api/orders``, ``POST /api/pricing/estimate`` and the web app's new-order preview all judge an
    order with it."""
    start = max(req.date_start or now, now)
    end = req.date_end or now + timedelta(days=lifetime_days)
    name = req.target_name or f"RA {ra_j2000:.2f} h Dec {dec_j2000:+.1f}°"
    return Need(target_name=name, ra_j2000=ra_j2000, dec_j2000=dec_j2000, filters=filters,
                c_alt_min=req.c_alt_min, c_moon_down=moon_down, c_ha_start=req.c_ha_start, c_ha_end=req.c_ha_end,
                start=start, end=end, date_start=req.date_start, date_end=req.date_end,
                min_field_arcmin=req.min_field_arcmin)


async def _find_by_key(session, customer_id: int, key: str) -> Order | None:
    return (
        await session.exec(select(Order).where(Order.customer_id == customer_id, Order.idempotency_key == key))
    ).first()


@dataclass(frozen=True)
class CreatedOrder:
    """What :func:`create_order` returns. ``created`` False: a replay of an earlier request with the
    same ``Idempotency-Key`` and body (that order, unchanged; ``shots``/``telescope`` None). For a
    new order, ``order`` and ``shots`` are the rows as written (snapshots to read, attached to no
    session; shots in position order); ``telescope``: its slug."""

    order: Order
    created: bool
    shots: list[OrderShot] | None = None
    telescope: str | None = None


async def create_order(
    res: Resources, principal: Principal, req: OrderCreate, idempotency_key: str | None,
    held: RequestConnection | None = None, context: OrderContext | None = None,
) -> CreatedOrder:
    """Create and start an order (:class:`CreatedOrder`).

    ``held``: the request's own connection (``POST /api/orders`` authenticated on it, api/deps.py),
    idle; None: a pooled one. Every statement runs there in autocommit — the reads, then the order
    in one statement (api/services/order_insert.py) — and it is given back before the workflow's
    start (a Temporal round trip holds no database connection). ``context``: what the caller's key
    lookup read of its rows (api/services/order_context.py), else read here (one statement).

    Raises Unprocessable (validation, ``unknown_target``, ``target_never_observable``,
    ``idempotency_key_mismatch``), PlanViolation, InsufficientCredits, ServiceUnavailable.
    """
    key = check_idempotency_key(idempotency_key)
    digest = request_hash(req)
    settings = res.settings
    now = datetime.now(timezone.utc)
    held = held if held is not None else RequestConnection(res.engine, autocommit=True)
    async with contextlib.AsyncExitStack() as done:
        done.push_async_callback(held.close)  # last: nothing is left to ask the database
        conn = await done.enter_async_context(autocommit_on(await held.get()))
        # Reads off the hot path (a replay, a named telescope not online, a Set) go through it.
        session = await done.enter_async_context(AsyncSession(bind=conn, expire_on_commit=False))
        ctx = (context if context is not None and context.idempotency_key == key
               else await order_context.fetch(conn, principal.customer_id, key))
        if key and ctx.replay_id is not None:
            existing = await _find_by_key(session, principal.customer_id, key)
            if existing is not None:
                await done.aclose()
                return CreatedOrder(await _replay(res, existing, digest), False)

        # The filters any candidate telescope has: a name none of them knows is a field error here;
        # one the chosen telescope lacks is the assignment's (api/services/assignment.py).
        rows = await order_context.TELESCOPES.get(conn, ctx.telescopes)
        online = [t for t in rows if t.status == TelescopeStatus.ONLINE.value]
        if req.telescope == ANY:
            offered = list(dict.fromkeys(f for t in online for f in telescopes.filter_names(t)))
            owner = "the online telescopes have"
        else:
            named = next((t for t in rows if t.slug == req.telescope), None)
            if named is None:
                raise unknown_telescope(req.telescope)
            offered = telescopes.filter_names(named)
            owner = f"telescope {req.telescope} has"
        errors, filters = _field_errors(req, offered or settings.api.filter_list(), now, owner)
        if errors:
            raise Unprocessable("invalid order", fields=errors)
        ra, dec = req.ra_j2000, req.dec_j2000
        if ra is None or dec is None:
            try:
                entry = resolve(req.target_name)
            except UnknownTarget as exc:
                raise domain_error(UNKNOWN_TARGET, str(exc), fields={"target_name": str(exc)}) from None
            ra, dec = entry.ra_j2000, entry.dec_j2000

        plan = ctx.plan(now)
        if req.set_id is not None:  # 403 without Quasar, 404 for a Set that is not the caller's
            if not get_plan(plan.plan).sets:
                await require_sets(session, principal)
            await find_set(session, principal.customer_id, req.set_id)
        mosaic = req.mosaic
        constraints = gate_order(plan.plan, req)
        # Which telescope, and whether its site can see the target (404/409/422 before anything is
        # written or held).
        chosen = await assign(session, req.telescope, order_need(
            req, ra_j2000=ra, dec_j2000=dec, filters=filters, moon_down=constraints.moon_down, now=now,
            lifetime_days=settings.billing.order_default_lifetime_days), now, online=online, queues=ctx.queues)
        telescope_id, slug, multiplier = chosen.telescope.id, chosen.telescope.slug, chosen.telescope.price_multiplier
        optics = optics_of(chosen.telescope)
        lines = [PricedShot(filter=f, exposure=s.exposure, quantity=s.quantity) for f, s in zip(filters, req.shots)]
        charged = pricing_input(constraints, lines)
        cost = price(charged, multiplier)

        balances = ctx.balances
        if plan.manual_lapsed:  # its subscription credits expire before anything is spent
            await expire_manual_plans(res.engine, principal.customer_id)  # takes the account lock itself
            balances = await Ledger.bound(conn).balances(principal.customer_id)
        if balances.debt > 0:  # a refund or dispute took back spent credits: 402 that says so
            raise CreditDebt(principal.customer_id, cost, balances.available, balances.debt)
        if balances.available < cost:
            raise InsufficientCredits(principal.customer_id, cost, balances.available)

        panels: list[Panel] = []
        layout = None
        if mosaic is not None:
            fov = optics.field_of_view
            spec = MosaicSpec(mosaic.columns, mosaic.rows, mosaic.overlap_percent, mosaic.rotation_deg)
            panels = await asyncio.to_thread(plan_panels, req.target_name, ra, dec, spec, fov)
            layout = {**mosaic.model_dump(mode="json"),
                      "field_of_view": {"width_deg": fov.width_deg, "height_deg": fov.height_deg}}

        values = dict(
            customer_id=principal.customer_id, idempotency_key=key, request_hash=digest, plan=plan.plan,
            status=OrderStatus.PENDING.value, target_name=req.target_name, ra_j2000=ra, dec_j2000=dec,
            pa=req.pa, priority=req.priority, c_moon_down=constraints.moon_down,
            c_hfd_mean_limit=constraints.hfd_mean_limit, c_alt_min=req.c_alt_min, c_ha_start=req.c_ha_start,
            c_ha_end=req.c_ha_end, date_start=req.date_start, date_end=req.date_end, repeat=req.repeat, cost=cost,
            shots_total=sum(s.quantity for s in req.shots) * req.repeat,
            requested_integration_seconds=float(requested_integration_seconds(charged)),
            telescope_id=telescope_id, price_multiplier=multiplier,
            assignment_reason=chosen.reason, mosaic=layout, set_id=req.set_id,
        )
        # A mosaic's shot list is split evenly: each panel gets quantity / panels of every line.
        lines: list[dict] = []
        for panel in ([p.index for p in panels] or [None]):
            share = len(panels) or 1
            for position, (name, shot) in enumerate(zip(filters, req.shots)):
                lines.append(dict(position=position, filter=name, exposure=shot.exposure,
                                  quantity=shot.quantity // share, bin=shot.bin, gain=shot.gain,
                                  offset=shot.offset, panel_index=panel))
        panel_rows = [dict(panel_index=p.index, column=p.column, row=p.row, name=p.name,
                           ra_j2000=p.ra_j2000, dec_j2000=p.dec_j2000) for p in panels]
        try:
            # One statement: the order, its panels and shot lines, and its workflow id — the
            # order's business key, recorded with it rather than by an UPDATE after the start; a
            # failed start clears it (_start). The Set is share-locked until it commits.
            order = await insert_order(conn, values, lines, panel_rows)
        except IntegrityError:
            # A concurrent request with the same key won the insert: answer as its replay.
            existing = await _find_by_key(session, principal.customer_id, key) if key else None
            if existing is None:
                raise
            await done.aclose()
            return CreatedOrder(await _replay(res, existing, digest), False)
        if order is None:
            raise set_not_found(req.set_id or 0)  # deleted since find_set: nothing was written
        written = [OrderShot.model_construct(order_id=order.id, **line) for line in lines]
        log.info("order.created", order_id=order.id, customer_id=principal.customer_id, cost=cost, plan=plan.plan,
                 telescope=slug)
    started = await _start(res, order, keep_pending=key is not None, telescope=slug, recorded=True)
    return CreatedOrder(started, True, sorted(written, key=lambda s: s.position), slug)


async def _replay(res: Resources, order: Order, digest: str) -> Order:
    if order.request_hash != digest:
        raise domain_error(
            IDEMPOTENCY_KEY_MISMATCH,
            "this Idempotency-Key was already used with a different request body",
            fields={"Idempotency-Key": f"already used for order {order.id} with another body"},
        )
    if order.status == OrderStatus.PENDING.value:
        # Never started, or its workflow closed before holding anything (e.g. the database was
        # down when it loaded the order): start it again. A running one is just found.
        return await _start(res, order, keep_pending=True, restart_failed=True)
    return order


async def _start(res: Resources, order: Order, *, keep_pending: bool, restart_failed: bool = False,
                 telescope: str | None = None, recorded: bool = False) -> Order:
    """Start the order's workflow and record its id (``recorded``: already written with the
    order). On failure: 503, the id cleared; the order stays pending when an Idempotency-Key lets
    the client retry, else it is marked failed. ``restart_failed``: see
    :func:`core.order_control.start_order_workflow`."""
    try:
        client = await res.temporal.get()
        workflow_id = await start_order_workflow(
            client, order.id, customer_id=order.customer_id, plan=order.plan, target_name=order.target_name,
            task_queue=res.settings.temporal.task_queue, restart_failed=restart_failed,
            telescope=telescope or await _slug_of(res, order),
        )
    except (ApiError, RPCError, RuntimeError, OSError) as exc:
        log.warning("order.start_failed", order_id=order.id, error=str(exc))
        failed = {} if keep_pending else {
            "status": OrderStatus.FAILED.value,
            "status_reason": "could not start the order workflow: Temporal unreachable"}
        if failed or order.workflow_id is not None:
            await _set_fields(res, order, workflow_id=None, **failed)
        raise domain_error(
            TEMPORAL_UNAVAILABLE,
            f"order {order.id} was recorded but its workflow could not be started"
            + ("; retry with the same Idempotency-Key" if keep_pending else ""),
        ) from None
    if recorded and order.workflow_id == workflow_id:
        return order
    return await _set_fields(res, order, workflow_id=workflow_id)


async def _slug_of(res: Resources, order: Order) -> str:
    """The slug of ``order``'s telescope ("" for an order from before telescopes)."""
    if order.telescope_id is None:
        return ""
    async with res.sessionmaker() as session:
        row = await session.get(Telescope, order.telescope_id)
        return row.slug if row else ""


async def _set_fields(res: Resources, order: Order, **values) -> Order:
    """Set ``values`` on the order and return the row as stored: one ``UPDATE … RETURNING``, its
    own transaction."""
    async with autocommit_session(res.engine) as session:
        row = (await session.exec(
            update(Order).where(Order.id == order.id).values(**values, updated_at=datetime.now(timezone.utc))
            .returning(Order))).scalars().one()
        await session.commit()
        return row


async def request_abort(res: Resources, order: Order, reason: str, by: Principal) -> AbortOut:
    """Ask the order's workflow to abort (the ``abort`` update) on behalf of ``by``: its audit name
    is the ``requested_by``, its role (support/admin or customer) the abort's role. Raises Conflict
    (``order_not_abortable``) once settling or finished, ServiceUnavailable without Temporal or when
    no worker answers within ``api.abort_timeout_seconds``."""
    if order.status in {s.value for s in NO_ABORT_STATUSES}:
        raise domain_error(ERR_ABORT_REFUSED, f"order {order.id} is {order.status} and can no longer be aborted")
    if order.workflow_id is None:
        raise domain_error(ERR_ABORT_REFUSED, f"order {order.id} has no running workflow")
    client = await res.temporal.get()
    try:
        role = AbortRole.SUPPORT if by.has_role("support") else AbortRole.CUSTOMER
        async with asyncio.timeout(res.settings.api.abort_timeout_seconds):
            result = await abort_order(client, order.id, reason, by.actor, role=role)
    except asyncio.TimeoutError:
        # No worker took the update in time; it stays queued and may still take effect.
        raise domain_error(WORKFLOW_UNRESPONSIVE,
                           f"order {order.id}'s workflow did not answer; the abort may still take effect") from None
    except (AbortRefused, OrderWorkflowNotFound) as exc:
        # A workflow that is gone cannot abort either: both answer the abort's refusal code.
        raise domain_error(ERR_ABORT_REFUSED, f"order {order.id} cannot be aborted: {exc}") from None
    except WorkflowUpdateFailedError as exc:
        cause = getattr(exc.cause, "message", None) or str(exc.cause or exc)
        raise domain_error(ERR_ABORT_REFUSED, f"order {order.id} cannot be aborted: {cause}") from None
    except RPCError as exc:
        raise domain_error(TEMPORAL_UNAVAILABLE, f"Temporal refused the abort: {exc.message}") from None
    log.info("order.abort_requested", order_id=order.id, requested_by=by.actor, role=role.value, accepted=result.accepted)
    return AbortOut(order_id=order.id, accepted=result.accepted, first=result.first, status=str(result.status),
                    requested_by=result.requested_by, reason=result.reason)
