"""VoyagerPool against the real simulator: borrowing, concurrency, replacement of dropped links."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from core.voyager_clients import pool_from_settings
from tests.voyager.conftest import sim_settings
from voyager import protocol
from voyager.errors import VoyagerAuthError, VoyagerConnectionError, VoyagerTimeout
from voyager.pool import VoyagerPool, backoff_delay
from voyager.robotarget import RoboTarget
from voyager.types import SetSpec, TargetSpec


async def _until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def _pool(sim, size: int = 2, **settings) -> VoyagerPool:
    return pool_from_settings(sim_settings(sim, **settings), size, backoff_base=0.05, backoff_max=0.5)


async def test_pool_opens_size_connections_in_manager_mode(voyager_sim):
    async with _pool(voyager_sim, 3) as pool:
        assert pool.live == 3 and pool.idle == 3
        assert len(voyager_sim.sessions) == 3
        assert all(s.manager_mode for s in voyager_sim.sessions)
    await _until(lambda: not voyager_sim.sessions)  # every connection said disconnect


async def test_concurrent_commands_share_the_pool(voyager_sim):
    async with _pool(voyager_sim, 4) as pool:
        rt = RoboTarget(pool)
        statuses = await asyncio.gather(*(rt.get_status() for _ in range(64)))
        assert statuses == ["IDLE"] * 64
        targets = await asyncio.gather(*(rt.get_targets() for _ in range(32)))
        assert all(t == [] for t in targets)
        assert pool.live == 4 and len(voyager_sim.sessions) == 4  # no extra connections were opened


async def test_borrowing_waits_with_a_bound(voyager_sim):
    async with _pool(voyager_sim, 1) as pool:
        async with pool.connection():
            t0 = time.monotonic()
            with pytest.raises(VoyagerTimeout):
                async with pool.connection(timeout=0.3):
                    pass
            assert 0.25 < time.monotonic() - t0 < 2.0
        async with pool.connection(timeout=0.3) as conn:  # freed again
            assert conn.is_usable


async def test_dropped_links_are_replaced_in_the_background(voyager_sim):
    async with _pool(voyager_sim, 2) as pool:
        before = {id(s) for s in voyager_sim.sessions}
        await voyager_sim.drop_connections()
        await _until(lambda: pool.replacements >= 2 and pool.live == 2)
        assert not before & {id(s) for s in voyager_sim.sessions}
        assert await RoboTarget(pool).get_status() == "IDLE"


async def test_command_in_flight_on_a_dropped_link_fails_and_is_not_resent(voyager_sim):
    async with _pool(voyager_sim, 2) as pool:
        rt = RoboTarget(pool)
        set_guid, target_guid = str(uuid.uuid4()), str(uuid.uuid4())
        await rt.add_set(SetSpec(guid=set_guid, name="drop", profile_name=voyager_sim.config.profile_name))
        spec = TargetSpec(guid=target_guid, set_guid=set_guid, name="M42", ra_j2000=5.588, dec_j2000=-5.39)
        voyager_sim.faults.reply_delay = 2.0
        add = asyncio.create_task(rt.add_target(spec))
        await asyncio.sleep(0.3)
        await voyager_sim.drop_connections()
        with pytest.raises(VoyagerConnectionError):
            await add
        voyager_sim.faults.reply_delay = 0.0
        await _until(lambda: pool.replacements >= 2)
        await asyncio.sleep(0.5)
        # Nothing re-sent the add on the new links: the caller decides, by looking the GUID up.
        assert await rt.get_target(target_guid, set_guid) is None
        assert await rt.ensure_target(spec) is True
        assert await rt.ensure_target(spec) is False
        assert [t.guid for t in await rt.get_targets(set_guid)] == [target_guid]


async def test_pool_start_with_a_wrong_password_raises_and_leaves_nothing_running(voyager_sim):
    pool = _pool(voyager_sim, 2, password="nope")
    with pytest.raises(VoyagerAuthError):
        await pool.start()
    assert pool.live == 0
    with pytest.raises(VoyagerConnectionError):
        async with pool.connection(timeout=0.1):
            pass


async def test_pool_recovers_after_a_simulator_restart(voyager_sim):
    async with _pool(voyager_sim, 2) as pool:
        await voyager_sim.crash()
        await asyncio.sleep(0.3)
        with pytest.raises(VoyagerTimeout):
            async with pool.connection(timeout=0.3):
                pass
        assert pool.last_error is not None  # reconnects were refused meanwhile
        await voyager_sim.restart()
        await _until(lambda: pool.live == 2, timeout=15)
        async with pool.connection() as conn:
            assert (await conn.send_command(protocol.M_GET_STATUS)).result_code == 4


def test_backoff_is_jittered_exponential_and_capped():
    delays = [backoff_delay(a, 0.5, 8.0) for a in range(8) for _ in range(20)]
    assert all(0 < d <= 8.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 100  # jittered
    assert max(backoff_delay(0, 0.5, 8.0) for _ in range(50)) <= 0.5
    assert min(backoff_delay(10, 0.5, 8.0) for _ in range(50)) >= 4.0


async def test_closing_the_pool_wakes_waiting_borrowers(voyager_sim):
    pool = await _pool(voyager_sim, 1).start()
    async with pool.connection():
        waiter = asyncio.create_task(pool.connection(timeout=30).__aenter__())
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        await pool.close()
        with pytest.raises(VoyagerConnectionError):
            await waiter
        assert time.monotonic() - t0 < 3.0


async def test_borrowers_are_served_first_come_first_served(voyager_sim):
    # A borrower that gives a connection back and asks again at once queues behind earlier ones.
    async with _pool(voyager_sim, 1) as pool:
        order: list[str] = []

        async def worker(name: str) -> None:
            for _ in range(4):
                async with pool.connection():
                    order.append(name)
                    await asyncio.sleep(0.01)

        await asyncio.gather(*(worker(n) for n in "ABC"))
        assert "".join(order) == "ABC" * 4


async def test_health_check_replaces_a_wedged_connection(voyager_sim):
    # The link is up (Polling flows) but commands go unanswered: the health ping notices.
    pool = pool_from_settings(sim_settings(voyager_sim, command_timeout=0.3), 1, health_interval=0.2, backoff_base=0.05)
    async with pool:
        voyager_sim.faults.swallow_methods = {protocol.M_GET_STATUS}
        await _until(lambda: pool.replacements >= 1)
        voyager_sim.faults.swallow_methods = set()
        await _until(lambda: pool.live == 1 and pool.idle == 1)
        async with pool.connection() as conn:
            assert (await conn.send_command(protocol.M_GET_STATUS)).result_code == 4
