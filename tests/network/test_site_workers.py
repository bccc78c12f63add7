"""A network of three telescopes (docs/network.md): three simulators at their sites, three
``stellar site-worker`` subprocesses, a central worker in network mode holding no Voyager link.

Orders named and ``any`` run on the three sites at once; the southern target (NGC 5139, Dec −47°)
is assigned to, and runs only in, Chile; the New Mexico site worker is killed (``kill -9``) for
``OUTAGE_SECONDS`` (longer than ``SITE_PICKUP``): only its orders wait, saying ``waiting for site …``,
and complete after its restart; every connection each simulator saw came from its own site worker.

The outage lasts 3 minutes (about 250 s for the whole test on a quiet machine);
``STELLAR_TEST_SITE_OUTAGE_SECONDS`` changes it, e.g. 45 for a quicker run while developing
(docs/network.md §5; the test's timeout grows with it).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlmodel import select

from api.services.assignment import Need, assign
from core.database import make_sessionmaker
from core.order_control import start_order_workflow
from core.settings import load_settings
from models.db import Order, Telescope
from models.orders import OrderStatus, OrderWorkflowResult
from models.telescopes import site_task_queue
from models.temporal_contract import order_workflow_id
from tests.workflows.support import create_customer, create_order, start_sim, terminate_quietly
from voyager.simulator import VoyagerSimulator
from worker import ensure_monitor, open_worker
from workflows import _options as opt

ROOT = Path(__file__).resolve().parents[2]
OMEGA_CEN = {"target_name": "NGC 5139", "ra_j2000": 13.4467, "dec_j2000": -47.479}
M42 = {"target_name": "M42", "ra_j2000": 5.588, "dec_j2000": -5.39}
#: (key, site name, latitude, longitude, time zone, simulated clock start: shortly before dusk there)
SITES = [
    ("spain", "Southern Spain", 37.2, -2.5, "Europe/Madrid", datetime(2026, 1, 15, 17, 30, tzinfo=UTC)),
    ("new-mexico", "New Mexico", 32.9, -105.5, "America/Denver", datetime(2026, 1, 16, 1, 0, tzinfo=UTC)),
    ("chile", "Chile", -30.2, -70.8, "America/Santiago", datetime(2026, 1, 16, 0, 30, tzinfo=UTC)),
]
#: Orders named on each site (M42), and southern orders placed with ``any`` (NGC 5139): 30 in all.
M42_PER_SITE = 9
SOUTHERN_ANY = 3
#: How long the New Mexico site worker stays dead (seconds): past SITE_PICKUP, so its orders say they
#: wait. ``STELLAR_TEST_SITE_OUTAGE_SECONDS`` overrides it (e.g. 45 while developing).
DEFAULT_OUTAGE_SECONDS = 180.0
OUTAGE_ENV = "STELLAR_TEST_SITE_OUTAGE_SECONDS"


def _outage_seconds() -> float:
    raw = os.environ.get(OUTAGE_ENV, "").strip()
    if not raw:
        return DEFAULT_OUTAGE_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"{OUTAGE_ENV}={raw!r}: give a number of seconds") from None
    if seconds <= opt.SITE_PICKUP.total_seconds():
        raise ValueError(f"{OUTAGE_ENV}={raw!r}: the outage must last longer than the site pickup timeout "
                         f"({opt.SITE_PICKUP.total_seconds():g} s), or no order ever says it waits")
    return seconds


OUTAGE_SECONDS = _outage_seconds()
#: ~250 s alone on a quiet machine with the default outage; the suite's 300 s default is too close
#: under load. A longer outage adds its length.
TEST_TIMEOUT = 900.0 + max(0.0, OUTAGE_SECONDS - DEFAULT_OUTAGE_SECONDS)


class SeenSessions(set):
    """The simulator's session set, recording the process that owns each client connection.

    The owner is the process holding the socket from the client's port *to the simulator's port*:
    Linux reuses an ephemeral port for other destinations, so the client port alone can also match
    an unrelated connection (this process's own, to PostgreSQL or Temporal).
    """

    def __init__(self, sim_port: int) -> None:
        super().__init__()
        self.sim_port = sim_port
        self.pids: list[int | None] = []

    def add(self, session: Any) -> None:
        port = session.peer[1] if session.peer else None
        owner = next((c.pid for c in psutil.net_connections(kind="tcp")
                      if c.laddr and c.laddr.port == port and c.raddr and c.raddr.port == self.sim_port), None)
        self.pids.append(owner)
        super().add(session)


def _site_env(sim: VoyagerSimulator, database_url: str, temporal: str, tmp: Path) -> dict[str, str]:
    cfg = sim.config
    env = {k: v for k, v in os.environ.items() if not k.startswith("STELLAR_")}
    env.update({
        "STELLAR_ENV": "test", "STELLAR_LOG_JSON": "true", "STELLAR_DATABASE__URL": database_url,
        "STELLAR_TEMPORAL__ADDRESS": temporal,
        "STELLAR_VOYAGER__HOST": "127.0.0.1", "STELLAR_VOYAGER__PORT": str(sim.port),
        "STELLAR_VOYAGER__USERNAME": cfg.username or "", "STELLAR_VOYAGER__PASSWORD": cfg.password or "",
        "STELLAR_VOYAGER__MAC_KEY": cfg.mac_key, "STELLAR_VOYAGER__MAC_WORDS": ",".join(cfg.mac_words),
        "STELLAR_VOYAGER__POOL_SIZE": "2",
        "STELLAR_IMAGES__JPG_DIR": str(tmp / "jpg"),
        "STELLAR_ORDERS__MONITOR_POLL_INTERVAL": "0.5", "STELLAR_ORDERS__WATCH_POLL_INTERVAL": "0.3",
        "STELLAR_ORDERS__SWEEP_WAIT_FOR_END": "20", "STELLAR_ORDERS__MONITOR_RUN_FOR": "600",
        "STELLAR_REPAIR__EVERY_MINUTES": "0",
    })
    return env


def _spawn_site_worker(slug: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "stellar_cli", "site-worker", "--telescope", slug], cwd=ROOT,
                            env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def _connected(sim: VoyagerSimulator, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    """Until the site worker's pool holds a connection to its simulator."""
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout
    while not sim.sessions:
        assert proc.poll() is None, f"site worker exited with {proc.returncode}"
        assert loop.time() < until, "site worker never connected to its Voyager"
        await asyncio.sleep(0.3)


async def _stop_site_workers(procs: list[subprocess.Popen], grace: float = 20.0) -> None:
    """SIGTERM every site worker at once and wait for them off the event loop, killing any still
    running after ``grace`` seconds or when the wait is cut short. The simulators run on this
    loop: a blocking wait would starve the workers still running of their Voyager's answers (links
    declared lost after 15 s, reconnections counted as connections with no owner)."""
    running = [p for p in procs if p.poll() is None]
    for proc in running:
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.gather(*(asyncio.to_thread(p.wait) for p in running)), grace)
    except TimeoutError:
        pass
    finally:
        for proc in running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


async def _add_telescope(engine, slug: str, site: str, lat: float, lon: float, tz: str, profile: str) -> int:
    async with make_sessionmaker(engine)() as s:
        row = Telescope(slug=slug, name=f"{site} 106", site_name=site, latitude=lat, longitude=lon, elevation=1000.0,
                        time_zone=tz, horizon_alt=10.0, aperture_mm=106.0, focal_length_mm=530.0, sensor_width_px=6248,
                        sensor_height_px=4176, pixel_size_um=3.76,
                        filters=[{"name": n, "index": i} for i, n in enumerate(["L", "R", "G", "B", "Ha"])],
                        voyager_profile=profile)
        s.add(row)
        await s.commit()
        await s.refresh(row)
        return row.id


async def _reason(engine, order_id: int) -> str:
    async with make_sessionmaker(engine)() as s:
        return (await s.get(Order, order_id, populate_existing=True)).status_reason


@pytest.mark.timeout(TEST_TIMEOUT)
@pytest.mark.asyncio
async def test_three_sites_run_their_own_orders_and_a_dead_site_delays_only_its_own(
        temporal_env, engine, database_url, task_queue, tmp_path):
    run = uuid.uuid4().hex[:6]
    temporal = temporal_env.client.service_client.config.target_host
    sims: dict[str, VoyagerSimulator] = {}
    seen: dict[str, SeenSessions] = {}
    procs: dict[str, subprocess.Popen] = {}
    pids: dict[str, list[int]] = {}
    envs: dict[str, dict[str, str]] = {}
    slugs: dict[str, str] = {}
    ids: dict[str, int] = {}
    workflow_ids: list[str] = []
    try:
        for key, site, lat, lon, tz, start in SITES:
            sim = await start_sim(tmp_path / key, latitude=lat, longitude=lon, start_time=start, speed=600.0)
            sims[key], seen[key] = sim, SeenSessions(sim.port)
            sim.sessions = seen[key]
            slugs[key] = f"{key}-{run}"
            ids[key] = await _add_telescope(engine, slugs[key], site, lat, lon, tz, sim.config.profile_name)
            envs[key] = _site_env(sim, database_url, temporal, tmp_path / key)
            procs[key] = _spawn_site_worker(slugs[key], envs[key], tmp_path / f"{key}.log")
            pids[key] = [procs[key].pid]

        # The central worker: network mode, no Voyager setting at all.
        central = load_settings(env="test", database={"url": database_url}, temporal={"address": temporal},
                                orders={"site_workers": True, "telescope": f"central-{run}"},
                                images={"jpg_dir": tmp_path / "jpg"})
        v = central.voyager
        assert not (v.host or v.username or v.password.get_secret_value() or v.mac_key.get_secret_value()
                    or v.mac_words.get_secret_value())
        async with open_worker(central, client=temporal_env.client, engine=engine, task_queue=task_queue,
                               start_monitor=False, start_reconciliation=False, start_repair=False):
            for key in slugs:
                workflow_ids.append(await ensure_monitor(temporal_env.client, slugs[key], task_queue,
                                                         site_task_queue(slugs[key])))
            for key in slugs:
                await _connected(sims[key], procs[key])

            customer = await create_customer(engine, 100_000)
            orders: dict[int, str] = {}  # order id → site key

            async def place(key: str, target: dict[str, Any]) -> int:
                order_id = await create_order(engine, customer, [{"filter": "L", "exposure": 60.0, "quantity": 2}],
                                              telescope_id=ids[key], **target)
                await start_order_workflow(temporal_env.client, order_id, customer_id=customer, plan="nebula",
                                           target_name=target["target_name"], task_queue=task_queue,
                                           telescope=slugs[key])
                workflow_ids.append(order_workflow_id(order_id))
                orders[order_id] = key
                return order_id

            # ``any`` for the southern target: only Chile can see it.
            chile_now = sims["chile"].clock.now_dt()
            need = Need(target_name="NGC 5139", ra_j2000=OMEGA_CEN["ra_j2000"], dec_j2000=OMEGA_CEN["dec_j2000"],
                        filters=["L"], c_alt_min=30.0, c_moon_down=False, c_ha_start=None, c_ha_end=None,
                        start=chile_now, end=chile_now + timedelta(days=2))
            async with make_sessionmaker(engine)() as s:
                ours = (await s.exec(select(Telescope).where(Telescope.slug.in_(list(slugs.values()))))).all()  # type: ignore[attr-defined]
                others = (await s.exec(select(Telescope).where(Telescope.slug.notin_(list(slugs.values())),  # type: ignore[attr-defined]
                                                             Telescope.status == "online"))).all()
                for t in others:  # other tests' telescopes: out of this choice, back afterwards
                    t.status = "maintenance"
                    s.add(t)
                await s.commit()
                try:
                    chosen = await assign(s, "any", need, now=chile_now)
                finally:
                    for t in others:
                        t.status = "online"
                        s.add(t)
                    await s.commit()
            assert len(ours) == 3
            assert chosen.telescope.slug == slugs["chile"], chosen.reason
            southern = [await place("chile", OMEGA_CEN) for _ in range(SOUTHERN_ANY)]

            # Kill New Mexico's site worker for real, then place everything else.
            procs["new-mexico"].send_signal(signal.SIGKILL)
            procs["new-mexico"].wait(10)
            restart_at = asyncio.get_running_loop().time() + OUTAGE_SECONDS  # dead that long, placing included
            for key in slugs:
                for _ in range(M42_PER_SITE):
                    await place(key, M42)
            new_mexico = [o for o, k in orders.items() if k == "new-mexico"]

            async def result(order_id: int) -> OrderWorkflowResult:
                handle = temporal_env.client.get_workflow_handle(order_workflow_id(order_id),
                                                                 result_type=OrderWorkflowResult)
                return await handle.result()

            others_done = asyncio.gather(*(result(o) for o, k in orders.items() if k != "new-mexico"))
            # The last orders placed must still outwait the pickup timeout, however long placing took.
            now = asyncio.get_running_loop().time()
            await asyncio.sleep(max(restart_at - now, opt.SITE_PICKUP.total_seconds() + 15.0))
            reasons = [await _reason(engine, o) for o in new_mexico]
            assert all(r.startswith(f"waiting for site {slugs['new-mexico']} since ") for r in reasons), reasons
            elsewhere = [await _reason(engine, o) for o, k in orders.items() if k != "new-mexico"]
            assert not [r for r in elsewhere if r.startswith("waiting for site")], elsewhere

            procs["new-mexico"] = _spawn_site_worker(slugs["new-mexico"], envs["new-mexico"],
                                                     tmp_path / "new-mexico.log")
            pids["new-mexico"].append(procs["new-mexico"].pid)
            done = await asyncio.wait_for(others_done, timeout=240)
            nm_done = await asyncio.wait_for(asyncio.gather(*(result(o) for o in new_mexico)), timeout=240)
            for res in [*done, *nm_done]:
                assert res.status == OrderStatus.COMPLETED, res
                assert res.frames_accepted == 2
            assert not [r for o in new_mexico if (r := await _reason(engine, o)).startswith("waiting for site")]

            # The southern target ran only in Chile: its frames are in Chile's simulator alone.
            assert len(orders) == 3 * M42_PER_SITE + SOUTHERN_ANY == 30
            async with make_sessionmaker(engine)() as s:
                guids = [(await s.get(Order, o)).target_guid.lower() for o in southern]
            for key, sim in sims.items():
                assert [g in sim.store.targets for g in guids] == [key == "chile"] * SOUTHERN_ANY, key
    finally:
        # The site-worker processes first: a cleanup cut short (a timeout under load) must not leave
        # them running after the test.
        await _stop_site_workers(list(procs.values()))
        for wid in workflow_ids:
            await terminate_quietly(temporal_env.client, wid)
        for sim in sims.values():
            if sim.running:
                await sim.stop()
        # Retired, not deleted (their orders keep them): an online telescope left in the shared
        # database would take other tests' ``any`` orders (Chile sees what Haute-Provence never does).
        async with make_sessionmaker(engine)() as s:
            for t in (await s.exec(select(Telescope).where(Telescope.slug.in_(list(slugs.values()))))).all():  # type: ignore[attr-defined]
                t.status = "retired"
                s.add(t)
            await s.commit()
    # Every connection each simulator saw came from its own site worker, never from this process
    # (the central worker).
    # A connection closed before its owner was looked up (a site worker killed or reconnecting)
    # shows no owner; every owner found is the site's own worker, never this process.
    for key, s in seen.items():
        known = [p for p in s.pids if p is not None]
        assert known and set(known) <= set(pids[key]) and s.pids.count(None) <= 2, (key, s.pids, pids[key], os.getpid())
