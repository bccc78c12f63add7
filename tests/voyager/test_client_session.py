"""One VoyagerConnection against the real simulator (docs/voyager-protocol.md §2–§5)."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.voyager_clients import connection_from_settings
from tests.voyager.conftest import sim_settings
from voyager import protocol, wire
from voyager.client import VoyagerConnection
from voyager.errors import (
    VoyagerActionFailed,
    VoyagerAuthError,
    VoyagerConnectionError,
    VoyagerTimeout,
)


def _tasks_of(conn: VoyagerConnection) -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith(conn.name + "-")]


async def test_connects_authenticates_and_enters_manager_mode(voyager_sim):
    conn = connection_from_settings(sim_settings(voyager_sim))
    await conn.connect()
    try:
        assert conn.version["Event"] == "Version"
        assert conn.session_key and float(conn.session_key) == conn.version["Timestamp"]
        # RoboTarget commands only pass with a MAC over this very session key, id and UID.
        result = await conn.send_command(wire.M_GET_TARGET, {"RefGuidSet": ""})
        assert result.result_code == protocol.ActionResultInt.OK
        assert result.param_ret["ret"] == "DONE" and result.param_ret["list"] == []
        assert len(voyager_sim.sessions) == 1 and next(iter(voyager_sim.sessions)).manager_mode
    finally:
        await conn.close()


async def test_wrong_password_is_rejected_and_the_link_closed(voyager_sim):
    conn = connection_from_settings(sim_settings(voyager_sim, password="wrong"))
    with pytest.raises(VoyagerAuthError) as info:
        await conn.connect()
    assert info.value.message == "Authentication Rejected"
    assert not conn.is_usable and _tasks_of(conn) == []


async def test_wrong_mac_words_fail_manager_mode(voyager_sim):
    conn = connection_from_settings(sim_settings(voyager_sim, mac_words="a,b,c,d"))
    with pytest.raises(VoyagerActionFailed) as info:
        await conn.connect()
    assert info.value.param_ret["ret"] == "ERROR : MAC Error"
    assert not conn.is_usable


async def test_robotarget_command_with_a_wrong_mac_fails_with_mac_error(voyager_sim):
    # Authenticated but signing with the wrong words: the MAC check answers first (§5).
    conn = connection_from_settings(sim_settings(voyager_sim, mac_words="x,y,z,w"), manager_mode=False)
    await conn.connect()
    try:
        with pytest.raises(VoyagerActionFailed) as info:
            await conn.send_command(wire.M_GET_TARGET, {"RefGuidSet": ""})
        assert info.value.result_code == protocol.ActionResultInt.FINISHED_ERROR
        assert info.value.param_ret["ret"] == "ERROR : MAC Error"
        assert conn.is_usable  # a refused command does not break the link
        status = await conn.send_command(protocol.M_GET_STATUS)
        assert status.param_ret["VoyagerStatus"] in {"IDLE", "RUN"}
    finally:
        await conn.close()


async def test_connect_to_a_closed_port_fails_fast(voyager_sim):
    port = voyager_sim.port
    await voyager_sim.stop()
    conn = VoyagerConnection("127.0.0.1", port, connect_timeout=2.0)
    t0 = time.monotonic()
    with pytest.raises(VoyagerConnectionError):
        await conn.connect()
    assert time.monotonic() - t0 < 2.0


async def test_swallowed_reply_times_out_without_breaking_the_link(voyager_sim):
    conn = connection_from_settings(sim_settings(voyager_sim))
    await conn.connect()
    try:
        voyager_sim.faults.swallow_next = 1
        with pytest.raises(VoyagerTimeout):
            await conn.send_command(protocol.M_GET_STATUS, timeout=0.5)
        assert conn.pending == 0 and conn.is_usable
        assert (await conn.send_command(protocol.M_GET_STATUS)).result_code == 4
    finally:
        await conn.close()


async def test_error_result_raises_action_failed_with_motivo(voyager_sim):
    conn = connection_from_settings(sim_settings(voyager_sim))
    await conn.connect()
    try:
        voyager_sim.faults.error_next = 1
        with pytest.raises(VoyagerActionFailed) as info:
            await conn.send_command(wire.M_GET_TARGET, {"RefGuidSet": ""})
        assert info.value.motivo == "Simulated fault"
        assert info.value.param_ret["ret"].startswith("ERROR")
    finally:
        await conn.close()


async def test_command_in_flight_when_the_link_drops_fails_and_is_not_resent(voyager_sim):
    conn = connection_from_settings(sim_settings(voyager_sim))
    await conn.connect()
    voyager_sim.faults.reply_delay = 5.0
    pending = asyncio.create_task(conn.send_command(wire.M_GET_TARGET, {"RefGuidSet": ""}, timeout=30))
    await asyncio.sleep(0.3)
    assert conn.pending == 2  # its reply and its result
    t0 = time.monotonic()
    await voyager_sim.drop_connections()
    with pytest.raises(VoyagerConnectionError):
        await pending
    assert time.monotonic() - t0 < 2.0  # failed at once, not after the command timeout
    assert not conn.is_usable and conn.pending == 0
    with pytest.raises(VoyagerConnectionError):
        await conn.send_command(protocol.M_GET_STATUS)
    await conn.close()
    assert _tasks_of(conn) == []


async def test_shutdown_event_breaks_the_link(voyager_sim):
    conn = connection_from_settings(sim_settings(voyager_sim))
    await conn.connect()
    events = conn.subscribe()
    await voyager_sim.stop()
    first = await asyncio.wait_for(events.get(), 5)
    assert first is not None and first["Event"] == "ShutDown"
    assert await asyncio.wait_for(events.get(), 5) is None  # end-of-link marker
    assert not conn.is_usable
    await conn.close()


async def test_clean_close_sends_disconnect_and_leaves_no_tasks(voyager_sim):
    conn = connection_from_settings(sim_settings(voyager_sim))
    await conn.connect()
    # Only the keep-alive runs as a task: received bytes are handled by the socket's callback.
    assert len(_tasks_of(conn)) == 1 and len(voyager_sim.sessions) == 1
    await conn.close()
    assert _tasks_of(conn) == []
    # The server saw a disconnect (not an idle cutoff) and dropped the session promptly.
    for _ in range(50):
        if not voyager_sim.sessions:
            break
        await asyncio.sleep(0.05)
    assert not voyager_sim.sessions
    await conn.close()  # idempotent


async def test_silent_server_is_detected_as_a_dead_link():
    # A peer that sends Version and then nothing at all: 15 s (here 1 s) of silence = dead (§2.3).
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'{"Event":"Version","Timestamp":1700000000.5,"Host":"MUTE","Inst":1}\r\n')
        await writer.drain()
        await reader.read()  # ignore everything until the client goes
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conn = VoyagerConnection("127.0.0.1", port, manager_mode=False, poll_interval=0.3, idle_timeout=1.0)
    try:
        await conn.connect()
        assert conn.session_key == "1700000000.5"
        with pytest.raises(VoyagerConnectionError):
            await conn.send_command(protocol.M_GET_STATUS, timeout=10)
        assert "nothing received" in str(conn.broken)
    finally:
        await conn.close()
        server.close()
        await server.wait_closed()


@pytest.mark.timeout(120)
async def test_keepalive_holds_an_idle_link_for_more_than_20_seconds(voyager_sim):
    # Real time, real protocol timings: the server drops a client silent for 15 s.
    conn = connection_from_settings(sim_settings(voyager_sim))
    await conn.connect()
    try:
        events = conn.subscribe()
        await asyncio.sleep(21.0)
        assert conn.is_usable, conn.broken
        assert events.empty() or None not in [events.get_nowait() for _ in range(events.qsize())]
        result = await conn.send_command(wire.M_GET_TARGET, {"RefGuidSet": ""})
        assert result.param_ret["ret"] == "DONE"
    finally:
        await conn.close()



async def test_connect_times_out_when_no_version_arrives():
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conn = VoyagerConnection("127.0.0.1", port, connect_timeout=0.5)
    try:
        t0 = time.monotonic()
        with pytest.raises(VoyagerTimeout):
            await conn.connect()
        assert time.monotonic() - t0 < 2.0 and _tasks_of(conn) == []
    finally:
        server.close()
        await server.wait_closed()
