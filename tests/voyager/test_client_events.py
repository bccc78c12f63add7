"""EventStream against the real simulator: dashboard events, surviving drops and restarts."""

from __future__ import annotations

import asyncio

import pytest

from core.voyager_clients import event_stream_from_settings
from tests.patience import patience
from tests.voyager.conftest import sim_settings
from voyager.events import EventStream


#: Seconds for the link to come up, or for an event the simulator sends every fraction of a second.
WAIT = patience(10.0)


async def _next_named(stream: EventStream, name: str, timeout: float = WAIT):
    async def find():
        async for event in stream:
            if event.name == name:
                return event
        raise AssertionError("stream ended")

    return await asyncio.wait_for(find(), timeout)


async def test_dashboard_events_flow_and_survive_a_dropped_link(sim_factory):
    sim = await sim_factory(control_interval=0.2)
    async with event_stream_from_settings(sim_settings(sim), names={"ControlData"}, backoff_base=0.05) as stream:
        await stream.wait_connected(WAIT)
        assert next(iter(sim.sessions)).dashboard  # RemoteSetDashboardMode IsOn was sent
        first = await _next_named(stream, "ControlData")
        assert "VOYSTAT" in first.data and first.host == sim.config.host_name

        await sim.drop_connections()
        await asyncio.wait_for(_reconnected(stream, 1), WAIT)
        after = await _next_named(stream, "ControlData")
        assert after.timestamp >= first.timestamp
        assert all(s.dashboard for s in sim.sessions)  # dashboard mode re-enabled on the new link
    assert [e async for e in stream] == []  # closed: the iterator ends
    await _until_no_sessions(sim)


async def test_stream_waits_out_a_simulator_restart(sim_factory):
    sim = await sim_factory(control_interval=0.2)
    async with event_stream_from_settings(sim_settings(sim), backoff_base=0.05, backoff_max=0.3) as stream:
        await stream.wait_connected(WAIT)
        await sim.stop()  # ShutDown to every client
        shutdown = await _next_named(stream, "ShutDown")
        assert shutdown.name == "ShutDown"
        await asyncio.sleep(0.5)  # reconnects are refused meanwhile
        assert not stream.connected
        await sim.restart()
        await asyncio.wait_for(_reconnected(stream, 1), WAIT)
        assert (await _next_named(stream, "ControlData")).name == "ControlData"


async def test_stream_filters_by_event_name(sim_factory):
    sim = await sim_factory(control_interval=0.1, weather_interval=0.1)
    async with event_stream_from_settings(sim_settings(sim), names={"WeatherAndSafetyMonitorData"}) as stream:
        # Connected first: the first event's wait must not also pay for the connection (MAC login).
        await stream.wait_connected(WAIT)
        events = [await stream.next(timeout=WAIT) for _ in range(3)]
    assert {e.name for e in events} == {"WeatherAndSafetyMonitorData"}
    assert events[0].data["SMStatus"] in {"SAFE", "UNSAFE"}


async def test_next_times_out_when_nothing_comes(sim_factory):
    sim = await sim_factory()
    async with event_stream_from_settings(sim_settings(sim), names={"NewJPGReady"}) as stream:
        await stream.wait_connected(WAIT)
        with pytest.raises(TimeoutError):
            await stream.next(timeout=0.3)


async def _reconnected(stream: EventStream, count: int) -> None:
    while not (stream.reconnects >= count and stream.connected):
        await asyncio.sleep(0.05)


async def _until_no_sessions(sim) -> None:
    for _ in range(int(patience(100))):  # 5 s
        if not sim.sessions:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the stream's connection did not disconnect")
