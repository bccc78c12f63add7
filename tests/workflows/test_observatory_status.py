"""The observatory monitor records how it last saw Voyager (``observatory_status``), which is what
``GET /health/ready`` reports: up while the simulator answers, down once it stops."""

from __future__ import annotations

import sqlalchemy as sa
from temporalio.testing import ActivityEnvironment

from activities.monitor import MonitorActivities
from core.database import make_sessionmaker
from core.voyager_clients import pool_from_settings
from models.db import ObservatoryStatus
from models.orders import MonitorWatchRequest
from tests.workflows.support import order_settings, start_sim
from voyager.robotarget import RoboTarget


async def _row(engine, telescope: str):
    table = ObservatoryStatus.__table__
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(table).where(table.c.telescope == telescope))).first()


async def test_the_monitor_records_voyager_up_then_down(tmp_path, database_url, engine, temporal_env):
    sim = await start_sim(tmp_path)
    cfg = order_settings(sim, database_url, tmp_path, command_timeout=2.0, monitor_run_for=1.0,
                         monitor_poll_interval=0.2)
    cfg.voyager.pool_acquire_timeout = 2.0  # a stopped simulator fails the poll in seconds, not 15
    telescope = cfg.orders.telescope
    pool = pool_from_settings(cfg.voyager)
    await pool.start(strict=False)
    try:
        monitor = MonitorActivities(RoboTarget(pool), make_sessionmaker(engine), temporal_env.client, cfg,
                                    events=False)
        result = await ActivityEnvironment().run(monitor.watch_observatory, MonitorWatchRequest(telescope=telescope))
        assert result.polls >= 1
        up = await _row(engine, telescope)
        assert up is not None and up.ok is True and up.last_ok_at is not None
        await sim.stop()
        await ActivityEnvironment().run(monitor.watch_observatory, MonitorWatchRequest(telescope=telescope))
        down = await _row(engine, telescope)
        assert down.ok is False and down.detail and down.last_ok_at == up.last_ok_at
        assert down.checked_at >= up.checked_at
    finally:
        await pool.close()
        if sim.running:
            await sim.stop()
