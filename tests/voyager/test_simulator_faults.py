"""Fault injection and persistence of the simulator (docs/voyager-protocol.md §9)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

from core.settings import load_settings
from tests.voyager.raw_client import SIM_START
from tests.voyager.test_simulator_night import add_target_with_shots, history, night_end
from voyager import protocol, wire
from voyager.simulator import SimulatorConfig, VoyagerSimulator
from voyager.simulator.faults import ERROR_RET

MID_SESSION = SIM_START + timedelta(hours=9)  # 21:00 UTC: M42 is being imaged


async def test_drop_connections_cuts_every_link_without_shutdown(voyager_sim, raw_client):
    a, b = await raw_client(voyager_sim), await raw_client(voyager_sim)
    await a.login()
    await b.login()
    await voyager_sim.drop_connections()
    for c in (a, b):
        assert await c.closed(5)
        assert protocol.E_SHUTDOWN not in [m.get("Event") for m in c.backlog]
    again = await raw_client(voyager_sim)
    await again.login()
    _, status = await again.command(protocol.M_GET_STATUS)
    assert status["ActionResultInt"] == 4


async def test_drop_interval_drops_links_periodically(voyager_sim, raw_client):
    c = await raw_client(voyager_sim)
    await c.login()
    voyager_sim.faults.drop_interval = 1.0
    t0 = time.monotonic()
    assert await c.closed(5)
    assert time.monotonic() - t0 < 2.5


async def test_reply_delay_delays_reply_and_result(voyager_sim, raw_client):
    c = await raw_client(voyager_sim)
    await c.login()
    voyager_sim.faults.reply_delay = 1.5
    t0 = time.monotonic()
    reply, result = await c.command(protocol.M_GET_STATUS)
    assert time.monotonic() - t0 >= 1.5
    assert reply["result"] == 0 and result["ActionResultInt"] == 4


async def test_swallowed_methods_get_neither_reply_nor_result(voyager_sim, raw_client):
    c = await raw_client(voyager_sim)
    await c.login()
    voyager_sim.faults.swallow_methods = {protocol.M_GET_STATUS}
    req_id, uid = await c.request(protocol.M_GET_STATUS)
    _, other = await c.command(protocol.M_GET_FILTER_CONFIGURATION, timeout=5)
    assert other["ActionResultInt"] == 4
    events = await c.drain_events(1.5)
    assert not [m for m in events if m.get("id") == req_id or m.get("UID") == uid]
    voyager_sim.faults.swallow_methods.clear()
    voyager_sim.faults.swallow_next = 1
    req_id, uid = await c.request(protocol.M_GET_FILTER_CONFIGURATION)
    assert not [m for m in await c.drain_events(1.0) if m.get("id") == req_id or m.get("UID") == uid]
    _, status = await c.command(protocol.M_GET_STATUS)  # only one was swallowed
    assert status["ActionResultInt"] == 4


async def test_error_methods_finish_with_an_error_result(voyager_sim, raw_client):
    c = await raw_client(voyager_sim)
    await c.login()
    voyager_sim.faults.error_methods = {wire.M_GET_TARGET}
    reply, result = await c.command(wire.M_GET_TARGET, {"RefGuidSet": ""})
    assert reply["result"] == 0
    assert result["ActionResultInt"] == 5 and result["ParamRet"] == {wire.RET: ERROR_RET} and result["Motivo"]
    voyager_sim.faults.error_methods.clear()
    _, ok = await c.command(wire.M_GET_TARGET, {"RefGuidSet": ""})
    assert ok["ActionResultInt"] == 4


async def test_remote_action_abort_cancels_a_command_in_flight(voyager_sim, raw_client):
    c = await raw_client(voyager_sim)
    await c.login()
    voyager_sim.faults.reply_delay = 3.0
    slow_id, slow_uid = await c.request(protocol.M_GET_STATUS)
    await asyncio.sleep(0.2)
    voyager_sim.faults.reply_delay = 0.0
    await c.request(protocol.M_ACTION_ABORT, {"UID": slow_uid})
    result = await c.wait_for(lambda m: m.get("Event") == protocol.E_ACTION_RESULT, timeout=2.5)
    assert result["UID"] == slow_uid and result["ActionResultInt"] == protocol.ActionResultInt.ABORTED
    assert not [m for m in await c.drain_events(3.5) if m.get("id") == slow_id]


async def test_cloud_out_aborts_the_running_session_and_the_rest_of_the_night(night_sim, raw_client):
    sim = await night_sim()
    c = await raw_client(sim)
    await c.login()
    dash = await raw_client(sim)
    await dash.login(manager=False)
    await dash.command(protocol.M_DASHBOARD_MODE, {wire.DASHBOARD_IS_ON: True})
    target, _ = await add_target_with_shots(c, [(0, 40, 600)])
    await sim.run_until(MID_SESSION)
    sim.cloud_out()
    await sim.run_until(night_end())
    [(_, session, done)] = await history(c)
    assert session["result"] == wire.SESSION_ABORTED and "clouds" in session["sessionexittext"]
    assert session["datetimeend"] == int(MID_SESSION.timestamp()) and 0 < session["progress"] < 100
    weather = [e for e in await dash.drain_events() if e.get("Event") == "WeatherAndSafetyMonitorData"]
    assert weather and weather[-1]["SMStatus"] == "UNSAFE" and weather[-1]["WSCloud"] != "CLEAR"
    await sim.run_until(night_end(2))  # the next night is clear again
    assert [s["result"] for _, s, _ in await history(c)] == [wire.SESSION_ABORTED, wire.SESSION_OK]


async def test_cloudy_nights_from_settings_get_no_session(night_sim, raw_client):
    settings = load_settings(voyager={"sim_fault_cloudy_nights": "2026-01-15", "sim_fault_reply_delay": 0.25,
                                      "sim_fault_error_methods": "RemoteGetStatus", "sim_seed": 5})
    cfg = SimulatorConfig.from_settings(settings)
    assert cfg.faults.cloudy_nights == {"2026-01-15"} and cfg.faults.reply_delay == 0.25
    assert cfg.faults.error_methods == {"RemoteGetStatus"} and cfg.seed == 5
    sim = await night_sim(faults=cfg.faults)
    sim.faults.reply_delay = 0.0
    c = await raw_client(sim)
    await c.login()
    await add_target_with_shots(c, [(0, 2, 300)])
    await sim.run_until(night_end())
    assert await history(c) == []
    await sim.run_until(night_end(2))
    [(run, session, _)] = await history(c)
    assert session["result"] == wire.SESSION_OK and run["datetimestart"] > night_end().timestamp()


async def test_random_clouds_abort_sessions_when_every_night_is_cloudy(night_sim, raw_client):
    sim = await night_sim(cloud_probability=1.0)
    c = await raw_client(sim)
    await c.login()
    await add_target_with_shots(c, [(0, 100, 600)], IsRepeat=True, Repeat=1)
    await sim.run_until(night_end(3))
    sessions = await history(c)
    assert sessions and all(s["result"] == wire.SESSION_ABORTED and "clouds" in s["sessionexittext"] for _, s, _ in sessions)


async def test_failing_sessions_end_with_result_error(night_sim, raw_client):
    sim = await night_sim()
    c = await raw_client(sim)
    await c.login()
    await add_target_with_shots(c, [(0, 5, 300)], IsRepeat=True, Repeat=1)
    sim.faults.fail_sessions = True
    await sim.run_until(night_end())
    sessions = await history(c)
    assert sessions and all(s["result"] == wire.SESSION_ERROR for _, s, _ in sessions)
    assert all(done == [] for _, _, done in sessions)


async def test_crash_and_restart_keep_the_state(night_sim, raw_client):
    sim = await night_sim()
    c = await raw_client(sim)
    await c.login()
    target, [shot] = await add_target_with_shots(c, [(0, 30, 600)], IsRepeat=True, Repeat=1)
    await sim.run_until(MID_SESSION)
    before = await history(c)
    assert before[0][1]["result"] == wire.SESSION_RUNNING and before[0][2]
    port = sim.port
    await sim.crash()
    assert await c.closed(5)
    assert protocol.E_SHUTDOWN not in [m.get("Event") for m in c.backlog]
    await sim.restart()
    assert sim.port == port
    c2 = await raw_client(sim)
    await c2.login()
    assert [t["guid"] for t in (await c2.robotarget(wire.M_GET_TARGET, {"RefGuidSet": ""}))[wire.LIST]] == [target]
    [(run, session, done)] = await history(c2)
    assert session["result"] == wire.SESSION_ERROR and "restarted" in session["sessionexittext"]
    assert [d["guid"] for d in done] == [d["guid"] for d in before[0][2]]
    await sim.run_until(night_end(3))
    shots = (await c2.robotarget(wire.M_GET_SHOT, {"RefGuidTarget": target}))[wire.LIST]
    assert shots[0]["done"] == 30


async def test_a_new_process_resumes_from_the_state_file_and_its_clock(night_sim, raw_client, tmp_path):
    sim = await night_sim()
    c = await raw_client(sim)
    await c.login()
    target, _ = await add_target_with_shots(c, [(0, 3, 300)])
    await sim.run_until(night_end())
    await sim.stop()
    state = json.loads((tmp_path / "voyager-sim.json").read_text())
    assert target in state["targets"] and len(state["shots_done"]) == 3
    assert state["clock"] == night_end().timestamp()
    other = VoyagerSimulator(sim.config)  # same config and state file, fresh object (a new process)
    await other.start()
    try:
        assert abs(other.clock.now() - night_end().timestamp()) < 1
        c2 = await raw_client(other)
        await c2.login()
        [(_, session, done)] = await history(c2)
        assert session["result"] == wire.SESSION_OK and len(done) == 3
    finally:
        await other.stop()


async def test_held_results_wait_for_their_release_and_others_are_answered_meanwhile(voyager_sim, raw_client):
    c = await raw_client(voyager_sim)
    await c.login()
    voyager_sim.faults.held_results = {protocol.M_GET_FILTER_CONFIGURATION}
    req_id, uid = await c.request(protocol.M_GET_FILTER_CONFIGURATION)
    ours = await c.wait_for(lambda m: m.get("id") == req_id or m.get("UID") == uid, 5)
    assert protocol.is_reply(ours)  # the reply came first: Voyager took the command
    _, status = await c.command(protocol.M_GET_STATUS, timeout=5)  # another command is not held
    assert status["ActionResultInt"] == 4
    assert not [m for m in await c.drain_events(1.0) if m.get("UID") == uid]  # its result did not come
    voyager_sim.faults.release_results()
    held = await c.wait_for(lambda m: m.get("Event") == protocol.E_ACTION_RESULT and m.get("UID") == uid, 5)
    assert held["ActionResultInt"] == 4
    _, again = await c.command(protocol.M_GET_FILTER_CONFIGURATION, timeout=5)  # no longer held
    assert again["ActionResultInt"] == 4
