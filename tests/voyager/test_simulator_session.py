"""The simulator's session protocol over a real socket (docs/voyager-protocol.md §1–§5, §9)."""

from __future__ import annotations

import asyncio
import time

from voyager import protocol, wire

from tests.voyager.conftest import SIM_PASSWORD, SIM_USER, SIM_WORDS


async def test_version_event_comes_first_and_its_timestamp_text_is_the_session_key(voyager_sim, raw_client):
    c = await raw_client(voyager_sim)
    assert c.version["Event"] == "Version"
    assert c.version["Host"] and c.version["Inst"] == 1 and c.version["MsgVersion"] == 1
    assert c.version["VOYVersion"].startswith("Release")
    assert c.session_key and float(c.session_key) == c.version["Timestamp"]
    # Manager mode succeeds only with a MAC built on that exact text.
    await c.login()


async def test_timestamps_are_printed_with_a_varying_number_of_decimals(voyager_sim, raw_client):
    decimals = set()
    for _ in range(12):
        c = await raw_client(voyager_sim)
        decimals.add(len(c.session_key.partition(".")[2]))
    assert len(decimals) >= 2, decimals


async def test_authentication_returns_authbase(voyager_sim, raw_client):
    c = await raw_client(voyager_sim)
    req_id, _ = await c.request(protocol.M_AUTHENTICATE, {"Base": protocol.auth_base(SIM_USER, SIM_PASSWORD)})
    reply = await c.read()
    assert reply == {"jsonrpc": "2.0", "id": req_id, "authbase": reply["authbase"]}
    assert reply["authbase"]["Username"] == SIM_USER
    assert set(reply["authbase"]) == {"Username", "FirstName", "LastName", "Mail", "Permissions", "Note"}


async def test_wrong_password_is_rejected_then_the_link_is_closed(voyager_sim, raw_client):
    c = await raw_client(voyager_sim)
    req_id, _ = await c.request(protocol.M_AUTHENTICATE, {"Base": protocol.auth_base(SIM_USER, "nope")})
    reply = await c.read()
    assert reply == {"jsonrpc": "2.0", "error": {"code": 1, "message": "Authentication Rejected"}, "id": req_id}
    assert await c.closed(5)


async def test_a_command_before_authentication_is_rejected_and_closed(voyager_sim, raw_client):
    c = await raw_client(voyager_sim)
    await c.request(protocol.M_GET_STATUS)
    reply = await c.read()
    assert reply["error"]["message"] == "Authentication Rejected"
    assert await c.closed(5)


async def test_a_client_that_does_not_authenticate_within_5_s_is_dropped(voyager_sim, raw_client):
    c = await raw_client(voyager_sim)
    t0 = time.monotonic()
    assert await c.closed(10)
    assert 4.5 <= time.monotonic() - t0 <= 7.0


async def test_no_authentication_needed_when_no_username_is_configured(sim_factory, raw_client):
    sim = await sim_factory(username=None)
    c = await raw_client(sim)
    _, result = await c.command(protocol.M_GET_STATUS)
    assert result["ParamRet"] == {wire.STATUS_KEY: "IDLE"}


async def test_server_polls_after_5_s_and_drops_a_silent_client_after_15_s(voyager_sim, raw_client):
    c = await raw_client(voyager_sim)
    await c.login(manager=False)
    t0 = time.monotonic()
    polls: list[float] = []
    while True:
        raw = await asyncio.wait_for(c.reader.readline(), 20)
        if not raw:
            break
        msg = protocol.decode_line(raw)
        if msg.get("Event") == protocol.E_POLLING:
            polls.append(time.monotonic() - t0)
    closed_after = time.monotonic() - t0
    assert 14.0 <= closed_after <= 17.5, closed_after
    assert len(polls) >= 2 and 4.0 <= polls[0] <= 6.5, polls


async def test_a_client_that_polls_stays_connected_past_15_s(voyager_sim, raw_client):
    c = await raw_client(voyager_sim)
    await c.login(manager=False)
    for _ in range(9):  # 18 s
        await c.send(protocol.make_polling())
        await asyncio.sleep(2)
    _, result = await c.command(protocol.M_GET_STATUS)
    assert result["ActionResultInt"] == 4


async def test_disconnect_replies_result_0_without_action_result_then_closes(voyager_sim, raw_client):
    c = await raw_client(voyager_sim)
    await c.login(manager=False)
    c.writer.write(protocol.encode_request(protocol.M_DISCONNECT, None, 99))
    await c.writer.drain()
    assert await c.read() == {"jsonrpc": "2.0", "result": 0, "id": 99}
    assert await c.closed(5)
    assert c.backlog == []


async def test_manager_mode_with_a_wrong_hash_fails_with_mac_error(voyager_sim, raw_client):
    c = await raw_client(voyager_sim)
    await c.login(manager=False)
    reply, result = await c.command(wire.M_MANAGER_MODE, mac="bm90IHRoZSBoYXNo")
    assert reply["result"] == 0
    assert result["ActionResultInt"] == 5 and result["ParamRet"][wire.RET] == wire.RET_MAC_ERROR


async def test_every_robotarget_command_checks_its_mac(voyager_sim, raw_client):
    c = await raw_client(voyager_sim)
    await c.login()
    good = await c.robotarget(wire.M_GET_TARGET, {"RefGuidSet": ""})
    assert good[wire.LIST] == []
    # A MAC computed for another request id is refused (docs/voyager-protocol.md §5).
    uid = protocol.new_uid()
    wrong = protocol.compute_mac(SIM_WORDS, c.session_key, 12345, uid)
    _, result = await c.command(wire.M_GET_TARGET, {"UID": uid, "RefGuidSet": ""}, mac=wrong)
    assert result["ActionResultInt"] == 5
    assert result["ParamRet"] == {wire.RET: "ERROR : MAC Error"}
    for method in sorted(wire.ROBOTARGET_METHODS):
        _, result = await c.command(method, {}, mac="AAAA")
        assert result["ParamRet"][wire.RET] == wire.RET_MAC_ERROR, method


async def test_robotarget_commands_need_manager_mode(voyager_sim, raw_client):
    c = await raw_client(voyager_sim)
    await c.login(manager=False)
    _, result = await c.command(wire.M_GET_TARGET, {"RefGuidSet": ""})
    assert result["ActionResultInt"] == 5 and result["ParamRet"][wire.RET].startswith(wire.RET_ERROR_PREFIX)


async def test_action_results_go_only_to_the_requesting_client_matched_by_uid(voyager_sim, raw_client):
    a, b = await raw_client(voyager_sim), await raw_client(voyager_sim)
    await a.login()
    await b.login()
    req_id, uid = await a.request(protocol.M_GET_STATUS, {"UID": "my-own-uid-1"})
    reply = await a.wait_for(protocol.is_reply)
    result = await a.wait_for(lambda m: m.get("Event") == protocol.E_ACTION_RESULT)
    assert reply == {"jsonrpc": "2.0", "result": 0, "id": req_id}
    assert result["UID"] == uid == "my-own-uid-1" and result["ActionResultInt"] == 4
    assert set(result) >= {"Event", "Timestamp", "Host", "Inst", "UID", "ActionResultInt", "Motivo", "ParamRet"}
    _, own = await b.command(protocol.M_GET_STATUS)
    assert b.backlog == [] and own["UID"] != uid


async def test_public_commands_status_filters_profiles_dashboard(voyager_sim, raw_client):
    c = await raw_client(voyager_sim)
    await c.login()
    _, status = await c.command(protocol.M_GET_STATUS)
    assert status["ParamRet"][wire.STATUS_KEY] == "IDLE"
    _, filters = await c.command(protocol.M_GET_FILTER_CONFIGURATION)
    p = filters["ParamRet"]
    assert p[wire.FILTER_NUM] == 7
    assert [p[wire.filter_name_key(i)] for i in range(1, 8)] == ["L", "R", "G", "B", "Ha", "OIII", "SII"]
    _, profiles = await c.command(protocol.M_GET_PROFILES)
    assert profiles["ParamRet"][wire.LIST] == [{"guid": profiles["ParamRet"][wire.LIST][0]["guid"], "name": "Stellar.v2y", "isactive": True}]
    _, dash = await c.command(protocol.M_DASHBOARD_MODE, {wire.DASHBOARD_IS_ON: True})
    assert dash["ActionResultInt"] == 4


async def test_abort_gets_a_reply_and_no_action_result(voyager_sim, raw_client):
    c = await raw_client(voyager_sim)
    await c.login()
    c.writer.write(protocol.encode_request(protocol.M_ABORT, {"IsHalt": False}, 7))
    await c.writer.drain()
    assert await c.read() == {"jsonrpc": "2.0", "result": 0, "id": 7}
    _, status = await c.command(protocol.M_GET_STATUS)
    assert [m for m in c.backlog if m.get("Event") == protocol.E_ACTION_RESULT] == []
    assert status["ActionResultInt"] == 4


async def test_unknown_methods_get_an_error_reply(voyager_sim, raw_client):
    c = await raw_client(voyager_sim)
    await c.login()
    req_id, _ = await c.request("RemoteDoesNotExist")
    reply = await c.read()
    assert reply["id"] == req_id and reply["error"]["code"] == -32601


async def test_stop_sends_shutdown_to_every_client(sim_factory, raw_client):
    sim = await sim_factory()
    a, b = await raw_client(sim), await raw_client(sim)
    await a.login()
    await b.login()
    await sim.stop()
    for c in (a, b):
        assert await c.closed(5)
        assert [m["Event"] for m in c.backlog if "Event" in m][-1] == protocol.E_SHUTDOWN


async def test_a_multi_megabyte_jpg_line_is_sent_whole(night_sim, raw_client):
    from tests.voyager.test_simulator_night import add_target_with_shots, night_end

    sim = await night_sim(frame_width=2400, frame_height=1600, jpg_quality=100)
    c = await raw_client(sim)
    await c.login()
    target, _ = await add_target_with_shots(c, shots=[(0, 1, 300)])
    await sim.run_until(night_end())
    run = (await c.robotarget(wire.M_GET_RUN_LIST, {"ProfileName": "Stellar.v2y", "Days": 0}))[wire.LIST][0]
    session = (await c.robotarget(wire.M_GET_SESSIONS_BY_RUN, {"RefGuidRun": run["guid"]}))[wire.LIST][0]
    done = (await c.robotarget(wire.M_GET_SHOTS_DONE, {"RefGuidSession": session["guid"]}))[wire.LIST]["done"][0]
    req_id, uid = await c.request(wire.M_GET_SHOT_JPG, {"RefGuidShotDone": done["guid"], "FITFileName": ""})
    while True:
        raw = await asyncio.wait_for(c.reader.readline(), 10)
        if b'"RemoteActionResult"' in raw and uid.encode() in raw:
            break
    assert len(raw) > 2_000_000 and raw.endswith(b"\r\n")
    assert protocol.decode_line(raw)["ParamRet"][wire.RET] == wire.RET_DONE


async def test_requests_sent_at_once_on_connect_are_all_answered_in_order(voyager_sim):
    """What a client writes before Version, more than the framing sniff reads, reaches the session whole."""
    reader, writer = await asyncio.open_connection("127.0.0.1", voyager_sim.port, limit=protocol.MAX_LINE)
    n = 500
    auth = {"UID": "auth", "Base": protocol.auth_base(SIM_USER, SIM_PASSWORD)}
    data = protocol.encode_request(protocol.M_AUTHENTICATE, auth, 1) + b"".join(
        protocol.encode_request(protocol.M_GET_STATUS, {"UID": f"status-{i}"}, i + 2) for i in range(n))
    assert len(data) > 8 * 4096
    writer.write(data)
    messages = []
    try:
        while sum(m.get("Event") == protocol.E_ACTION_RESULT for m in messages) < n:
            messages.append(protocol.decode_line(await asyncio.wait_for(reader.readline(), 30)))
    finally:
        writer.close()
    assert messages[0]["Event"] == "Version"
    replies = [m["id"] for m in messages if "jsonrpc" in m]
    assert replies == list(range(1, n + 2))  # the authbase reply, then one per status, in order
    results = [m["UID"] for m in messages if m.get("Event") == protocol.E_ACTION_RESULT]
    assert results == [f"status-{i}" for i in range(n)]
