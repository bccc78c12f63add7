"""Fixtures for the Voyager client and simulator tests: a real simulator on a free loopback port.

``sim_factory(**config_overrides)`` starts a ``VoyagerSimulator`` (authentication on, MAC words
below, state and FITS under ``tmp_path``, clock at real speed from a fixed midsummer noon so nothing
is observable unless a test moves the clock, e.g. ``speed=0`` + ``sim.run_until(...)``) and stops
every one it started at teardown.
``sim_settings(sim, **overrides)`` gives the matching ``VoyagerSettings`` for the client side.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest_asyncio

from core.settings import VoyagerSettings
from voyager.simulator import SimulatorConfig, VoyagerSimulator

SIM_USER = "stellar"
SIM_PASSWORD = "s3cret-pässword"
SIM_MAC_KEY = "MACKEY-TEST"
SIM_WORDS = ["Orion", "Nebula", "Horse", "Head"]
#: Broad daylight at the default site (OHP): the scheduler has nothing to do.
MIDSUMMER_NOON = datetime(2025, 6, 21, 12, 0, tzinfo=UTC)

SimFactory = Callable[..., Awaitable[VoyagerSimulator]]


def sim_config(tmp_path: Path, **overrides: Any) -> SimulatorConfig:
    """A test simulator configuration: free port, daylight clock, seeded, auth on."""
    values: dict[str, Any] = dict(
        port=0,
        username=SIM_USER,
        password=SIM_PASSWORD,
        mac_key=SIM_MAC_KEY,
        mac_words=list(SIM_WORDS),
        speed=1.0,
        start_time=MIDSUMMER_NOON,
        state_file=tmp_path / "voyager-sim.json",
        fit_dir=tmp_path / "fits",
        seed=7,
    )
    values.update(overrides)
    return SimulatorConfig(**values)


def sim_settings(sim: VoyagerSimulator, **overrides: Any) -> VoyagerSettings:
    """Client settings that authenticate against ``sim`` (overrides win)."""
    cfg = sim.config
    values: dict[str, Any] = dict(
        host="127.0.0.1",
        port=sim.port,
        username=cfg.username,
        password=cfg.password,
        mac_key=cfg.mac_key,
        mac_words=",".join(cfg.mac_words),
        profile_name=cfg.profile_name,
        connect_timeout=5.0,
        command_timeout=10.0,
        pool_acquire_timeout=10.0,
    )
    values.update(overrides)
    return VoyagerSettings(**values)


#: Whether this process has run the mount's astropy transform once (see ``sim_factory``).
_mount_warm = False


@pytest_asyncio.fixture
async def sim_factory(tmp_path: Path) -> AsyncIterator[SimFactory]:
    started: list[VoyagerSimulator] = []

    async def make(**overrides: Any) -> VoyagerSimulator:
        global _mount_warm
        sim = VoyagerSimulator(sim_config(tmp_path, **overrides))
        await sim.start()
        started.append(sim)
        if not _mount_warm:
            # A process's first mount position (astropy's IERS tables and frames) takes seconds, more
            # under load, and holds back the first ControlData: done here, outside the tests' timed waits.
            await asyncio.to_thread(sim.mount.state, sim.clock.now(), sim.telemetry.tracked())
            _mount_warm = True
        return sim

    yield make
    for sim in started:
        await sim.stop()


@pytest_asyncio.fixture
async def voyager_sim(sim_factory: SimFactory) -> VoyagerSimulator:
    """One started simulator with the default test configuration."""
    return await sim_factory()


# Raw JSON-lines client and paused-night simulator fixtures of the simulator tests.
from tests.voyager.raw_client import night_sim, raw_client  # noqa: E402,F401
