"""A site worker: the one process beside a telescope's Voyager (network mode, docs/network.md).

    stellar site-worker --telescope chile        # or: python site_worker.py chile

Polls the task queue ``site-<slug>`` (``models.telescopes.site_task_queue``) and runs only the
Voyager-facing activities (``worker.site_activities``: submit, stop/disable, Set sync, watch a
session, sweep, wait for the run's end, the observatory monitor's watch). It holds the only Voyager
pool of that telescope, built from its own environment (``STELLAR_VOYAGER__HOST``/``PORT``, user,
password, MAC key and words); the telescope row gives the slug and the Voyager profile, never a
secret. It dials out only: to Temporal (mTLS settings ``STELLAR_TEMPORAL__TLS_*``), to PostgreSQL
(ingest writes the frame rows, the monitor its session marks and ``last_seen_at``: a known limit,
docs/network.md §4) and to its Voyager on the observatory LAN.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from temporalio.client import Client
from temporalio.worker import Worker

from core.database import make_engine, make_sessionmaker
from core.settings import Settings, SettingsError, get_settings, voyager_problems
from core.temporal import connect_temporal
from core.voyager_clients import pool_from_settings
from models.db import Telescope
from models.telescopes import TelescopeStatus, site_task_queue
from voyager.robotarget import RoboTarget
from worker import HEARTBEAT_THROTTLE, site_activities, stop_on_signals

log = structlog.get_logger(__name__)


class SiteWorkerError(RuntimeError):
    """The site worker cannot start for this telescope (unknown or retired slug, unsafe settings)."""


async def site_settings(settings: Settings, engine: AsyncEngine, slug: str) -> Settings:
    """``settings`` for the site worker of ``slug``: its telescope (``orders.telescope``) and the
    row's Voyager profile. Raises SiteWorkerError for an unknown or retired telescope."""
    async with make_sessionmaker(engine)() as session:
        row = (await session.exec(select(Telescope).where(Telescope.slug == slug))).first()
        known = (await session.exec(select(Telescope.slug).where(Telescope.status != TelescopeStatus.RETIRED.value)
                                    .order_by(Telescope.slug))).all()
    if row is None:
        raise SiteWorkerError(f"no telescope {slug!r}; telescopes: {', '.join(known) or 'none'} "
                              "(`stellar telescope list`, `stellar telescope add`)")
    if row.status == TelescopeStatus.RETIRED.value:
        raise SiteWorkerError(f"telescope {slug!r} is retired; telescopes: {', '.join(known) or 'none'}")
    return settings.model_copy(update={
        "orders": settings.orders.model_copy(update={"telescope": slug}),
        "voyager": settings.voyager.model_copy(update={"profile_name": row.voyager_profile}),
    })


@contextlib.asynccontextmanager
async def open_site_worker(
    settings: Settings | None,
    telescope: str,
    *,
    client: Client | None = None,
    engine: AsyncEngine | None = None,
    monitor_events: bool = True,
) -> AsyncIterator[Worker]:
    """Start the site worker of ``telescope`` (a slug), yield the running ``Worker``, shut down.

    ``client``/``engine``: reuse the caller's (not closed here). The Voyager pool comes from
    ``settings.voyager`` and reconnects in the background (the worker starts while Voyager is down).
    Raises SiteWorkerError (unknown or retired telescope; production without Voyager credentials)."""
    settings = settings or get_settings()
    problems = voyager_problems(settings)
    if problems:
        raise SiteWorkerError("unsafe production configuration:\n  " + "\n  ".join(problems))
    owned: list[Callable[[], Any]] = []
    try:
        if engine is None:
            engine = make_engine(settings.database.effective_url(), settings.database.pool_size)
            owned.append(engine.dispose)
        site = await site_settings(settings, engine, telescope)
        if client is None:
            client = await connect_temporal(site)
        pool = pool_from_settings(site.voyager)
        await pool.start(strict=False)
        owned.append(pool.close)
        queue = site_task_queue(telescope)
        worker = Worker(
            client,
            task_queue=queue,
            activities=site_activities(RoboTarget(pool), make_sessionmaker(engine), client, site, owned,
                                       monitor_events=monitor_events),
            max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
            default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        )
        async with worker:
            log.info("site_worker.started", telescope=telescope, task_queue=queue,
                     voyager=f"{site.voyager.effective_host()}:{site.voyager.port}")
            yield worker
    finally:
        for close in reversed(owned):
            with contextlib.suppress(Exception):
                await close()
        log.info("site_worker.stopped", telescope=telescope)


async def main(telescope: str) -> int:
    """Entry point of ``stellar site-worker --telescope SLUG``: runs until SIGINT/SIGTERM; 2 on a
    refusal (the message on stderr)."""
    from core.logging import configure_logging

    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"stellar site-worker: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_json)
    stop = stop_on_signals()
    try:
        async with open_site_worker(settings, telescope):
            await stop.wait()
    except SiteWorkerError as exc:
        print(f"stellar site-worker: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python site_worker.py SLUG", file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(main(sys.argv[1])))
