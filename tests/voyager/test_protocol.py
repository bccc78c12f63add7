"""Sans-IO protocol layer (docs/voyager-protocol.md §1–§5): framing, classification, MAC, builders."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid

import pytest

from voyager import protocol, wire
from voyager.errors import VoyagerProtocolError


def test_mac_matches_independent_sha1_base64_of_the_documented_text():
    words = ["alpha", "beta", "gamma", "delta"]
    session_key = "1652231344.88438"
    uid = "0b5c1f7e-3d7a-4a8e-9d1b-2f6f0c9a7e11"
    text = "alphabetagammadelta||:||1652231344.88438||:||17||:||0b5c1f7e-3d7a-4a8e-9d1b-2f6f0c9a7e11"
    expected = base64.b64encode(hashlib.sha1(text.encode("utf-8")).digest()).decode()
    assert protocol.compute_mac(words, session_key, 17, uid) == expected


def test_mac_changes_with_each_input():
    base = protocol.compute_mac(["a", "b", "c", "d"], "1.5", 1, "u")
    assert protocol.compute_mac(["a", "b", "c", "x"], "1.5", 1, "u") != base
    assert protocol.compute_mac(["a", "b", "c", "d"], "1.50", 1, "u") != base
    assert protocol.compute_mac(["a", "b", "c", "d"], "1.5", 2, "u") != base
    assert protocol.compute_mac(["a", "b", "c", "d"], "1.5", 1, "v") != base


def test_auth_base_is_standard_base64_of_user_colon_password():
    assert protocol.auth_base("admin", "pässword") == base64.b64encode("admin:pässword".encode()).decode()


def test_request_is_one_crlf_line_without_jsonrpc():
    raw = protocol.encode_request("RemoteGetStatus", {"UID": "x"}, 12)
    assert raw.endswith(b"\r\n") and raw.count(b"\n") == 1
    msg = json.loads(raw)
    assert msg == {"method": "RemoteGetStatus", "params": {"UID": "x"}, "id": 12}
    assert json.loads(protocol.encode_request("disconnect", None, 3)) == {"method": "disconnect", "id": 3}


def test_replies_and_events_are_told_apart():
    assert protocol.is_reply(protocol.make_reply_result(4))
    assert protocol.is_reply(protocol.make_reply_error(4, 1, "Authentication Rejected"))
    assert protocol.is_reply(protocol.make_authbase_reply(1, "admin"))
    assert not protocol.is_event(protocol.make_reply_result(4))
    ev = protocol.make_action_result("u", protocol.ActionResultInt.OK, param_ret={"ret": "DONE"})
    assert protocol.is_event(ev) and not protocol.is_reply(ev)
    assert ev["ParamRet"] == {"ret": "DONE"} and ev["ActionResultInt"] == 4
    assert protocol.is_request(json.loads(protocol.encode_request("x", {}, 1)))


def test_splitter_handles_partial_chunks_crlf_and_bare_lf():
    sp = protocol.LineSplitter()
    assert sp.feed(b'{"a":1}\r\n{"b"') == [b'{"a":1}']
    assert sp.feed(b':2}\r') == []
    assert sp.feed(b'\n{"c":3}\n\r\n') == [b'{"b":2}', b'{"c":3}']


def test_splitter_refuses_a_line_over_the_limit():
    sp = protocol.LineSplitter(max_line=100)
    sp.feed(b"x" * 100)
    with pytest.raises(VoyagerProtocolError):
        sp.feed(b"x")


def test_multi_megabyte_line_round_trips_through_the_splitter():
    payload = base64.b64encode(bytes(range(256)) * 20_000).decode()  # ~6.8 MB of Base64
    raw = protocol.encode_message({"Event": "NewJPGReady", "Base64Data": payload})
    assert len(raw) > 6_000_000 and len(raw) < protocol.MAX_LINE
    sp = protocol.LineSplitter()
    lines = []
    for i in range(0, len(raw), 65536):
        lines += sp.feed(raw[i : i + 65536])
    assert len(lines) == 1
    assert protocol.decode_line(lines[0])["Base64Data"] == payload


def test_decode_is_lenient_on_bad_utf8_and_strict_on_bad_json():
    msg = protocol.decode_line(b'{"Event":"Signal","Host":"OBS-\xff"}\r\n')
    assert msg["Host"] == "OBS-\ufffd"
    with pytest.raises(VoyagerProtocolError):
        protocol.decode_line(b"{not json")
    with pytest.raises(VoyagerProtocolError):
        protocol.decode_line(b"[1,2]")


def test_timestamp_text_is_kept_verbatim():
    raw = b'{"Event":"Version","Timestamp":1652231344.88430,"Host":"OBS-PC","Inst":1}\r\n'
    assert protocol.timestamp_text(raw) == "1652231344.88430"  # trailing zero kept, unlike float repr
    assert protocol.timestamp_text(b'{"Event":"Version","Timestamp": 17}') == "17"
    assert protocol.timestamp_text(b'{"Event":"Version"}') is None


def test_wire_target_defaults_cover_every_mapped_field():
    assert set(wire.TARGET_FIELDS.values()) <= set(wire.TARGET_DEFAULTS)
    assert wire.needs_mac(wire.M_GET_SHOT_JPG) and not wire.needs_mac("RemoteGetStatus")
    assert wire.ROBOTARGET_METHODS == {m for m in wire.ROBOTARGET_METHODS if wire.needs_mac(m)}


def test_encoding_is_compact_utf8_and_falls_back_to_the_stdlib_for_what_orjson_refuses():
    assert protocol.encode_message({"Host": "OBS-é", "a": [1, 2.5]}) == '{"Host":"OBS-é","a":[1,2.5]}\r\n'.encode()
    huge = 2**70  # beyond orjson's 64-bit integers: the stdlib writes it, unchanged
    assert protocol.decode_line(protocol.encode_message({"n": huge})) == {"n": huge}
    assert protocol.decode_line(b'{"x":NaN}')["x"] != protocol.decode_line(b'{"x":NaN}')["x"]  # read, as before


def test_the_session_key_is_the_timestamp_text_as_written():
    server = protocol.ServerProtocol(["a", "b", "c", "d"])
    line = protocol.encode_message(server.version_event(1768478400.12345, "HOST", 1))
    assert protocol.timestamp_text(line) == server.session_key == "1768478400.12345"


def test_new_uids_are_random_version_4_uuids():
    uids = {protocol.new_uid() for _ in range(1000)}
    assert len(uids) == 1000
    assert all(str(uuid.UUID(u)) == u and uuid.UUID(u).version == 4 for u in uids)


def test_a_connections_uids_are_version_4_uuids_counting_after_a_random_prefix():
    first, second = protocol.UidSource(), protocol.UidSource()
    uids = [first() for _ in range(1000)]
    assert len(set(uids)) == 1000
    for u in uids:
        parsed = uuid.UUID(u)
        assert str(parsed) == u and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert [int(u.rsplit("-", 1)[1], 16) for u in uids[:3]] == [1, 2, 3]  # unique per connection by the count
    assert second().rsplit("-", 1)[0] != uids[0].rsplit("-", 1)[0]  # and across connections by the prefix


def test_the_pre_encoded_success_reply_is_what_the_encoder_writes():
    for req_id in (0, 1, 42, 2**40):
        assert protocol.encode_reply_ok(req_id) == protocol.encode_message(protocol.make_reply_result(req_id, 0))
