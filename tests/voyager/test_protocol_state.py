"""The sans-IO connection state (docs/voyager-protocol.md §1–§5): ``ClientProtocol`` and
``ServerProtocol`` driven with bytes only — ids, UID matching, MAC injection, success rules, framing."""

from __future__ import annotations

import json
import random

import pytest

from voyager import protocol, wire
from voyager.errors import VoyagerActionFailed, VoyagerAuthError, VoyagerProtocolError, VoyagerRejected

WORDS = ["Orion", "Nebula", "Horse", "Head"]
VERSION = b'{"Event":"Version","Timestamp":1652231344.88430,"Host":"OBS","Inst":1,"VOYVersion":"x"}\r\n'


def _line(msg: dict) -> bytes:
    return protocol.encode_message(msg)


def _connected() -> protocol.ClientProtocol:
    proto = protocol.ClientProtocol(WORDS)
    [item] = proto.receive_data(VERSION)
    assert isinstance(item, protocol.Version)
    return proto


def _result(uid: str, code: int = 4, **param_ret) -> bytes:
    return _line(protocol.make_action_result(uid, code, param_ret=param_ret, timestamp=1.5))


def _completed(items: list) -> list[protocol.PendingCall]:
    return [i.call for i in items if isinstance(i, protocol.CallComplete)]


# ---------------------------------------------------------------- requests: ids, UID, MAC


def test_requests_are_numbered_from_one_and_get_a_fresh_uid_without_touching_params():
    proto = _connected()
    params = {"RefGuidSet": ""}
    first, line1 = proto.send_request(protocol.M_GET_STATUS)
    second, line2 = proto.send_request(wire.M_GET_TARGET, params)
    assert (first.id, second.id) == (1, 2)
    msg1, msg2 = json.loads(line1), json.loads(line2)
    assert msg1 == {"method": "RemoteGetStatus", "params": {"UID": first.uid}, "id": 1}
    assert msg2["params"]["UID"] == second.uid and first.uid != second.uid
    assert params == {"RefGuidSet": ""}  # the caller's dict is not modified
    assert line1.endswith(b"\r\n") and line1.count(b"\n") == 1


def test_a_given_uid_is_kept_and_disconnect_and_abort_carry_none():
    proto = _connected()
    call, line = proto.send_request(protocol.M_GET_STATUS, {"UID": "mine"})
    assert call.uid == "mine" and json.loads(line)["params"] == {"UID": "mine"}
    bye, line = proto.send_request(protocol.M_DISCONNECT, None, expect_result=False)
    assert json.loads(line) == {"method": "disconnect", "id": 2} and bye.uid == "" and not bye.expect_result
    abort, line = proto.send_request(protocol.M_ABORT, {"IsHalt": False})
    assert json.loads(line)["params"] == {"IsHalt": False} and not abort.expect_result  # reply only (§3)


def test_robotarget_commands_carry_the_mac_of_their_own_id_and_uid():
    proto = _connected()
    assert proto.session_key == "1652231344.88430"  # the text as sent, trailing zero kept
    proto.send_request(protocol.M_GET_STATUS)  # id 1: ids are per connection, shared by all methods
    call, line = proto.send_request(wire.M_GET_TARGET, {"RefGuidSet": ""})
    params = json.loads(line)["params"]
    assert params[wire.P_MAC] == protocol.compute_mac(WORDS, "1652231344.88430", 2, call.uid)
    manager, line = proto.send_request(wire.M_MANAGER_MODE, {wire.P_MAC_KEY: "K"})
    params = json.loads(line)["params"]
    assert params[wire.P_HASH] == protocol.compute_mac(WORDS, "1652231344.88430", 3, manager.uid)
    assert wire.P_MAC not in params
    _, line = proto.send_request(protocol.M_GET_STATUS)
    assert wire.P_MAC not in json.loads(line)["params"]  # public commands are not signed


def test_the_server_accepts_the_clients_mac_and_refuses_a_tampered_one():
    client, server = _connected(), protocol.ServerProtocol(WORDS)
    server.session_key = client.session_key
    _, line = client.send_request(wire.M_GET_TARGET, {"RefGuidSet": ""})
    [framed] = protocol.LineSplitter().feed(line)
    request = server.receive_line(framed)
    assert isinstance(request, protocol.Request) and request.method == wire.M_GET_TARGET
    assert server.mac_ok(request.params, request.id)
    assert not server.mac_ok(request.params, request.id + 1)  # another id: another MAC
    assert not server.mac_ok(request.params | {"UID": "other"}, request.id)
    assert not protocol.ServerProtocol(["a", "b", "c", "d"]).mac_ok(request.params, request.id)


# ---------------------------------------------------------------- receiving: Version, matching


def test_nothing_is_reported_before_version_and_version_sets_the_session_key():
    proto = protocol.ClientProtocol(WORDS)
    assert proto.receive_data(_line({"Event": "Signal", "Code": 501})) == []
    assert proto.session_key is None
    [item] = proto.receive_data(VERSION)
    assert isinstance(item, protocol.Version) and item.message["VOYVersion"] == "x"
    assert proto.version["Host"] == "OBS"
    [again] = proto.receive_data(VERSION)  # a later Version is an ordinary event
    assert isinstance(again, protocol.Event) and proto.session_key == "1652231344.88430"


def test_results_overtaking_replies_out_of_order_complete_each_call_once_both_are_in():
    proto = _connected()
    a, _ = proto.send_request(protocol.M_GET_STATUS)
    b, _ = proto.send_request(protocol.M_GET_STATUS)
    assert proto.pending == 4  # two replies and two results awaited
    assert _completed(proto.receive_data(_result(b.uid, VoyagerStatus="IDLE") + _result(a.uid))) == []
    assert _completed(proto.receive_data(_line(protocol.make_reply_result(b.id)))) == [b]
    assert proto.pending == 2
    assert _completed(proto.receive_data(_line(protocol.make_reply_result(a.id)))) == [a]
    assert proto.pending == 0
    assert b.outcome().param_ret == {"VoyagerStatus": "IDLE"} and b.outcome().result_code == 4
    assert a.outcome().uid == a.uid


def test_unknown_ids_and_uids_duplicates_and_polling_are_consumed_silently():
    proto = _connected()
    call, _ = proto.send_request(protocol.M_GET_STATUS)
    seen = proto.received
    data = (_line(protocol.make_reply_result(99)) + _result("someone-else") + _line(protocol.make_polling())
            + _line(protocol.make_reply_result(call.id)) + _line(protocol.make_reply_result(call.id)))
    assert proto.receive_data(data) == []
    assert proto.received == seen + 5  # every valid line counts for the idle clock
    assert call.reply is not None and call.result is None and proto.pending == 2


def test_events_are_handed_out_in_order():
    proto = _connected()
    data = _line({"Event": "Signal", "Code": 501}) + _line({"Event": "ShutDown"})
    assert [i.message["Event"] for i in proto.receive_data(data)] == ["Signal", "ShutDown"]


def test_forget_and_fail_all_stop_matching():
    proto = _connected()
    a, _ = proto.send_request(protocol.M_GET_STATUS)
    b, _ = proto.send_request(protocol.M_GET_STATUS)
    c, _ = proto.send_request(protocol.M_DISCONNECT, expect_result=False)
    proto.forget(a)
    assert proto.receive_data(_line(protocol.make_reply_result(a.id)) + _result(a.uid)) == []
    assert set(proto.fail_all()) == {b, c} and proto.pending == 0
    assert proto.receive_data(_line(protocol.make_reply_result(b.id)) + _result(b.uid)) == []


# ---------------------------------------------------------------- success rules (§3)


def _finish(proto: protocol.ClientProtocol, call: protocol.PendingCall, *lines: bytes) -> protocol.PendingCall:
    [done] = _completed(proto.receive_data(b"".join(lines)))
    assert done is call
    return done


def test_an_error_reply_fails_the_call_at_once_without_waiting_for_a_result():
    proto = _connected()
    call, _ = proto.send_request(protocol.M_GET_STATUS)
    _finish(proto, call, _line(protocol.make_reply_error(call.id, -32601, "Method not found")))
    with pytest.raises(VoyagerRejected) as info:
        call.outcome()
    assert (info.value.code, info.value.message) == (-32601, "Method not found")
    assert proto.pending == 0  # the result is no longer awaited
    auth, _ = proto.send_request(protocol.M_AUTHENTICATE, {"Base": "x"}, expect_result=False)
    _finish(proto, auth, _line(protocol.make_reply_error(auth.id, 1, protocol.AUTH_REJECTED_MESSAGE)))
    with pytest.raises(VoyagerAuthError):
        auth.outcome()


def test_a_reply_only_call_completes_on_its_reply():
    proto = _connected()
    call, _ = proto.send_request(protocol.M_AUTHENTICATE, {"Base": "x"}, expect_result=False)
    _finish(proto, call, _line(protocol.make_authbase_reply(call.id, "admin")))
    result = call.outcome()
    assert result.result_code is None and result.reply["authbase"]["Username"] == "admin"
    assert proto.receive_data(_result(call.uid)) == []  # a late result finds no waiter


@pytest.mark.parametrize(
    ("method", "code", "param_ret", "ok"),
    [
        (protocol.M_GET_STATUS, 4, {}, True),
        (protocol.M_GET_STATUS, 5, {}, False),
        (protocol.M_GET_STATUS, 10, {}, False),  # OK_PARTIAL is not a success
        (wire.M_GET_TARGET, 4, {"ret": "DONE"}, True),
        (wire.M_GET_TARGET, 4, {}, False),  # RoboTarget: 4 is not enough, ret must be DONE
        (wire.M_GET_TARGET, 4, {"ret": "ERROR : MAC Error"}, False),
        (wire.M_MANAGER_MODE, 4, {}, True),  # manager mode: ret absent is fine
        (wire.M_MANAGER_MODE, 4, {"ret": "ERROR : MAC Error"}, False),
    ],
)
def test_success_rules(method, code, param_ret, ok):
    proto = _connected()
    params = {wire.P_MAC_KEY: "K"} if method == wire.M_MANAGER_MODE else {}
    call, _ = proto.send_request(method, params)
    _finish(proto, call, _result(call.uid, code, **param_ret), _line(protocol.make_reply_result(call.id)))
    if ok:
        result = call.outcome()
        assert (result.uid, result.result_code, result.param_ret) == (call.uid, code, param_ret)
    else:
        with pytest.raises(VoyagerActionFailed) as info:
            call.outcome()
        assert info.value.result_code == code and info.value.param_ret == param_ret


def test_a_non_object_param_ret_is_wrapped_and_motivo_is_kept():
    proto = _connected()
    call, _ = proto.send_request(protocol.M_GET_STATUS)
    event = protocol.make_action_result(call.uid, 5, motivo="Camera busy", timestamp=1.0) | {"ParamRet": "text"}
    _finish(proto, call, _line(event), _line(protocol.make_reply_result(call.id)))
    with pytest.raises(VoyagerActionFailed) as info:
        call.outcome()
    assert info.value.motivo == "Camera busy" and info.value.param_ret == {"value": "text"}


# ---------------------------------------------------------------- framing of partial and multiple lines


def test_partial_lines_are_held_until_their_end_arrives():
    proto = _connected()
    call, _ = proto.send_request(protocol.M_GET_STATUS)
    data = _line(protocol.make_reply_result(call.id)) + _result(call.uid)
    for i in range(len(data) - 1):
        assert proto.receive_data(data[i : i + 1]) == []
    assert _completed(proto.receive_data(data[-1:])) == [call]


def test_many_lines_in_one_chunk_with_crlf_bare_lf_blank_and_broken_lines():
    proto = _connected()
    calls = [proto.send_request(protocol.M_GET_STATUS)[0] for _ in range(3)]
    chunk = b"".join(_line(protocol.make_reply_result(c.id)) + _result(c.uid) for c in calls)
    chunk = chunk.replace(b"\r\n", b"\n", 2) + b"\r\n\n{not json\r\n" + _line({"Event": "Signal"})[:13]
    seen = proto.received
    items = proto.receive_data(chunk)
    assert _completed(items) == calls
    [bad] = [i for i in items if isinstance(i, protocol.BadLine)]
    assert isinstance(bad.error, VoyagerProtocolError)
    assert proto.received == seen + 6  # the broken line does not count
    [event] = proto.receive_data(b'nal"}\r\n')  # the unfinished line completes later
    assert event.message == {"Event": "Signal"}


def test_an_unfinished_line_over_the_limit_is_a_protocol_error():
    proto = protocol.ClientProtocol(WORDS, max_line=64)
    with pytest.raises(VoyagerProtocolError):
        proto.receive_data(b"x" * 65)


# ---------------------------------------------------------------- the server side


def test_server_version_event_issues_the_session_key_as_the_written_text():
    server = protocol.ServerProtocol(WORDS)
    assert server.session_key is None
    event = server.version_event(1700000000.1, "OBS", 1, VOYVersion="v")
    raw = protocol.encode_message(event)
    assert server.session_key == protocol.timestamp_text(raw) == "1700000000.1"
    assert list(event) == ["Event", "Timestamp", "Host", "Inst", "VOYVersion"]


def test_server_reads_requests_and_answers_malformed_ones():
    read = protocol.ServerProtocol.receive_line
    request = read(b'{"method":"RemoteGetStatus","params":{"UID":"u"},"id":7}')
    assert isinstance(request, protocol.Request) and (request.method, request.id, request.params) == (
        "RemoteGetStatus", 7, {"UID": "u"})
    assert read(b'{"method":"disconnect","id":3}').params == {}
    assert read(b'{"Event":"Polling","Timestamp":1}') is None
    assert read(b'{"jsonrpc":"2.0","result":0,"id":1}') is None
    assert read(b'{"method":"x","id":"7"}') == protocol.make_reply_error(None, -32600, "Invalid Request")
    assert read(b'{"method":5,"id":4}') == protocol.make_reply_error(4, -32600, "Invalid Request")
    with pytest.raises(VoyagerProtocolError):
        read(b"{not json")


def test_many_calls_in_flight_complete_once_each_in_any_order_of_replies_results_and_chunks():
    proto = _connected()
    calls = [proto.send_request(protocol.M_GET_STATUS)[0] for _ in range(200)]
    lines = [_line(protocol.make_reply_result(c.id)) for c in calls]
    lines += [_result(c.uid, Index=i) for i, c in enumerate(calls)]
    lines += [_line({"jsonrpc": "2.0", "result": 0, "id": [calls[0].id]})]  # an unhashable id matches nothing
    rng = random.Random(16)
    rng.shuffle(lines)
    data = b"".join(lines)
    done: list[protocol.PendingCall] = []
    at = 0
    while at < len(data):  # lines split anywhere across reads
        step = rng.randint(1, 400)
        done += _completed(proto.receive_data(data[at : at + step]))
        at += step
    assert sorted(c.id for c in done) == [c.id for c in calls] and proto.pending == 0
    assert all(c.outcome().param_ret == {"Index": i} for i, c in enumerate(calls))
