"""Customer Sets (docs/sets.md): a Quasar customer's named RoboTarget Sets, paused and resumed,
renamed, deleted when empty; the default Set every customer's orders go to without ``set_id``.

The ``customer_set`` row is the truth the API answers from; each change bumps its ``version`` and
starts ``CustomerSetWorkflow`` (core/set_control.py), whose activity carries it to Voyager —
the API has no Voyager link. A change Temporal could not take is answered anyway
(``voyager_synced`` false) and started again by the next read or change of the Set.

"Empty" (what may be deleted): no order in the Set has not yet reached a final status
(``models.orders.FINAL_STATUSES``); ended orders keep pointing at the deleted row.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import structlog
from sqlalchemy import func, or_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.service import RPCError

from activities._db import sql
from api.errors import SET_IS_DEFAULT, SET_NAME_TAKEN, SET_NOT_EMPTY, SETS_NOT_IN_PLAN, ApiError, domain_error
from api.resources import Resources
from api.schemas.sets import SetCreate, SetOut, SetPatch
from api.security import Principal
from api.services.customers import effective_plan
from billing.plans import PLANS, get_plan
from models.customer_sets import default_set_guid, default_set_name, set_tag
from models.db import CustomerSet, Order
from models.orders import FINAL_STATUSES
from models.temporal_contract import ERR_SET_NOT_FOUND
from core.set_control import start_set_sync

log = structlog.get_logger(__name__)

_FINAL = [s.value for s in FINAL_STATUSES]


def sets_plans() -> list[str]:
    """Names of the plans that include customer Sets (``["Quasar"]``)."""
    return [p.name for p in PLANS.values() if p.sets]


async def has_sets(session: AsyncSession, customer_id: int) -> bool:
    """The customer's effective plan (api/services/customers.py) includes Sets."""
    return get_plan((await effective_plan(session, customer_id)).plan).sets


async def require_sets(session: AsyncSession, principal: Principal) -> None:
    """Raises Forbidden (403 ``sets_not_in_plan``, naming the plans that include Sets) unless
    the caller's plan has them."""
    if not await has_sets(session, principal.customer_id):
        raise domain_error(SETS_NOT_IN_PLAN, f"customer Sets are included in the {' and '.join(sets_plans())} plan; "
                           "without it every order goes to your default Set")


def set_not_found(set_id: int) -> ApiError:
    return domain_error(ERR_SET_NOT_FOUND, f"no set {set_id}", fields={"set_id": f"no set {set_id}"})


async def ensure_default_set(session: AsyncSession, customer_id: int) -> tuple[CustomerSet, bool]:
    """The customer's default Set row, inserted if missing (GUID from the tag, as orders derive it).
    Returns (row, created now). Commits."""
    now = datetime.now(timezone.utc)
    inserted = (await sql(session, insert(CustomerSet).values(
        customer_id=customer_id, guid=default_set_guid(customer_id), name=default_set_name(customer_id),
        tag=set_tag(customer_id), is_default=True, paused=False, version=1, synced_version=0,
        created_at=now, updated_at=now,
    ).on_conflict_do_nothing().returning(CustomerSet.id))).first()
    await session.commit()
    row = (await session.exec(select(CustomerSet).where(
        CustomerSet.customer_id == customer_id, col(CustomerSet.is_default).is_(True)))).one()
    return row, inserted is not None


async def find_set(session: AsyncSession, customer_id: int, set_id: int, *, lock: str | None = None) -> CustomerSet:
    """The customer's live Set ``set_id``; ``lock``: ``"share"`` / ``"update"`` row lock. Raises
    NotFound (404 ``set_not_found``) for an unknown, deleted or another customer's Set: existence
    is not leaked."""
    query = select(CustomerSet).where(CustomerSet.id == set_id, CustomerSet.customer_id == customer_id,
                                      col(CustomerSet.deleted_at).is_(None))
    if lock:
        query = query.with_for_update(read=lock == "share")
    row = (await session.exec(query.execution_options(populate_existing=True))).first()
    if row is None:
        raise set_not_found(set_id)
    return row


async def open_orders(session: AsyncSession, row: CustomerSet) -> int:
    """Orders in ``row`` not yet in a final status (the default Set holds those without set_id)."""
    in_set = Order.set_id == row.id
    if row.is_default:
        in_set = or_(in_set, col(Order.set_id).is_(None))
    query = select(func.count()).select_from(Order).where(
        Order.customer_id == row.customer_id, in_set, col(Order.status).not_in(_FINAL))
    return int((await session.exec(query)).one())


async def set_out(session: AsyncSession, row: CustomerSet) -> SetOut:
    return SetOut(id=row.id, name=row.name, guid=row.guid, tag=row.tag, is_default=row.is_default,
                  paused=row.paused, open_orders=await open_orders(session, row),
                  voyager_synced=row.synced_version >= row.version, created_at=row.created_at,
                  updated_at=row.updated_at)


async def sync(res: Resources, row: CustomerSet) -> None:
    """Start ``CustomerSetWorkflow`` for the row's current version (idempotent); Temporal
    unreachable is logged, not raised: the row keeps ``voyager_synced`` false until a later read
    or change starts it again."""
    try:
        client = await res.temporal.get()
        await start_set_sync(client, row.id, row.version, task_queue=res.settings.temporal.task_queue)
    except (ApiError, RPCError, RuntimeError, OSError) as exc:
        log.warning("set.sync_not_started", set_id=row.id, version=row.version, error=str(exc))


async def list_sets(res: Resources, session: AsyncSession, principal: Principal) -> list[SetOut]:
    """The caller's live Sets, default first. Raises Forbidden (403 ``sets_not_in_plan``)."""
    await require_sets(session, principal)
    await ensure_default_set(session, principal.customer_id)
    rows = (await session.exec(select(CustomerSet).where(
        CustomerSet.customer_id == principal.customer_id, col(CustomerSet.deleted_at).is_(None),
    ).order_by(col(CustomerSet.is_default).desc(), CustomerSet.id))).all()
    for row in rows:
        if row.synced_version < row.version:
            await sync(res, row)
    return [await set_out(session, row) for row in rows]


async def read_set(res: Resources, session: AsyncSession, principal: Principal, set_id: int) -> SetOut:
    """One of the caller's Sets. Raises Forbidden (403), NotFound (404 ``set_not_found``)."""
    await require_sets(session, principal)
    row = await find_set(session, principal.customer_id, set_id)
    if row.synced_version < row.version:
        await sync(res, row)
    return await set_out(session, row)


async def create_set(res: Resources, session: AsyncSession, principal: Principal, body: SetCreate,
                     idempotency_key: str | None) -> tuple[SetOut, bool]:
    """A new Set (random GUID stored before Voyager hears of it, tag ``user_<id>``). Returns (set,
    created); the same ``Idempotency-Key`` returns the Set it created (created False). Raises
    Forbidden (403), Conflict (409 ``set_name_taken``)."""
    await require_sets(session, principal)
    await ensure_default_set(session, principal.customer_id)
    if idempotency_key:
        earlier = (await session.exec(select(CustomerSet).where(
            CustomerSet.customer_id == principal.customer_id, CustomerSet.idempotency_key == idempotency_key,
        ))).first()
        if earlier is not None:
            return await set_out(session, earlier), False
    row = CustomerSet(customer_id=principal.customer_id, guid=str(uuid.uuid4()), name=body.name,
                      tag=set_tag(principal.customer_id), paused=body.paused, idempotency_key=idempotency_key)
    session.add(row)
    await _commit_named(session, body.name)
    await session.refresh(row)
    log.info("set.created", set_id=row.id, customer_id=row.customer_id, guid=row.guid, paused=row.paused)
    await sync(res, row)
    return await set_out(session, row), True


async def update_set(res: Resources, session: AsyncSession, principal: Principal, set_id: int,
                     patch: SetPatch) -> SetOut:
    """Rename, pause or resume. A change that changes nothing keeps the version (and starts the
    sync again if Voyager is behind). Raises Forbidden (403), NotFound (404), Conflict (409
    ``set_name_taken``)."""
    await require_sets(session, principal)
    row = await find_set(session, principal.customer_id, set_id, lock="update")
    changed = False
    if patch.name is not None and patch.name != row.name:
        row.name, changed = patch.name, True
    if patch.paused is not None and patch.paused != row.paused:
        row.paused, changed = patch.paused, True
    if changed:
        row.version += 1
        row.updated_at = datetime.now(timezone.utc)
        session.add(row)
        await _commit_named(session, row.name)
        await session.refresh(row)
        log.info("set.updated", set_id=row.id, name=row.name, paused=row.paused, version=row.version)
    else:
        await session.commit()
    if row.synced_version < row.version:
        await sync(res, row)
    return await set_out(session, row)


async def delete_set(res: Resources, session: AsyncSession, principal: Principal, set_id: int) -> None:
    """Delete an empty Set (no order in it before a final status); Voyager removes the Set and its
    ended targets. Raises Forbidden (403), NotFound (404), Conflict (409 ``set_is_default``,
    ``set_not_empty`` with the count)."""
    await require_sets(session, principal)
    # FOR UPDATE waits for an order being placed in the Set (it holds FOR SHARE until it commits).
    row = await find_set(session, principal.customer_id, set_id, lock="update")
    if row.is_default:
        raise domain_error(SET_IS_DEFAULT, "the default set cannot be deleted; orders without set_id go there",
                           fields={"set_id": "default set"})
    waiting = await open_orders(session, row)
    if waiting:
        raise domain_error(SET_NOT_EMPTY, f"set {set_id} still holds {waiting} order(s) that have not ended; "
                           "abort them or wait for them to end", fields={"set_id": f"{waiting} open order(s)"})
    row.deleted_at = row.updated_at = datetime.now(timezone.utc)
    row.version += 1
    session.add(row)
    await session.commit()
    await session.refresh(row)
    log.info("set.deleted", set_id=row.id, guid=row.guid, version=row.version)
    await sync(res, row)


async def _commit_named(session: AsyncSession, name: str) -> None:
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise domain_error(SET_NAME_TAKEN, f"you already have a set named {name!r}",
                           fields={"name": "already used by another of your sets"}) from None

