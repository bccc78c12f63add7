"""Which site workers a customer Set's change must reach (network mode, docs/network.md §2).

A Set reaches a telescope's RoboTarget lazily: the first order of the Set on that telescope creates
it there (``voyager.submit_target`` ensures the Set, named and paused as its row says). A later
change (rename, pause, resume, delete) goes to every telescope the Set has orders on; a telescope
it never reached needs nothing. Central: reads PostgreSQL only.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities._db import sql
from core.settings import Settings
from models.customer_sets import SetSites, SetSyncInput
from models.db import CustomerSet, Order, Telescope
from models.telescopes import site_task_queue
from models.temporal_contract import ERR_SET_NOT_FOUND


class SetSiteActivities:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings

    @activity.defn(name="set_sites.sites_of_set")
    async def sites_of_set(self, req: SetSyncInput) -> SetSites:
        """The site queues of the telescopes with orders of Set ``req.set_id``, by slug; None in
        the single-telescope shape. Raises non-retryable ``SetNotFound``."""
        if not self.settings.orders.site_workers:
            return SetSites()
        async with self.sessionmaker() as session:
            row = await session.get(CustomerSet, req.set_id)
            if row is None:
                raise ApplicationError(f"no customer set {req.set_id}", type=ERR_SET_NOT_FOUND, non_retryable=True)
            slugs = (await sql(session, sa.select(Telescope.slug).distinct()
                               .join(Order, Order.telescope_id == Telescope.id)  # type: ignore[arg-type]
                               .where(Order.set_guid == row.guid).order_by(Telescope.slug))).scalars().all()
        return SetSites(site_queues=[site_task_queue(s) for s in slugs])
