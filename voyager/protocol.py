"""Sans-IO Voyager Application Server protocol: framing, messages, MAC, session state (docs/voyager-protocol.md §1–§5).

No sockets, no clocks, no tasks here (the h11 / aiorpcX model): the I/O layer feeds received bytes
in and writes the bytes it is handed. :class:`ClientProtocol` is one client connection's state —
request ids, UID → pending result matching, MAC injection, the success rules — and
:class:`ServerProtocol` the simulator session's — the session key it issued, request
classification, MAC checks. Both read lines through the one framer, :class:`LineSplitter`, so the
two sides cannot drift apart. Session-level names are public [P]; the RoboTarget [S]/[C] mapping
lives in ``voyager/wire.py``.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import re
import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import orjson
from orjson import JSONDecodeError as _JSONDecodeError
from orjson import loads as _loads

from voyager import wire
from voyager.errors import VoyagerActionFailed, VoyagerAuthError, VoyagerProtocolError, VoyagerRejected
from voyager.types import ActionResult

#: Largest line either side accepts (§1: a whole Base64 JPG fits on one line).
MAX_LINE = 64 * 1024 * 1024
EOL = b"\r\n"
DEFAULT_PORT = 5950
#: §2.3: send Polling after this much sending silence; drop the link after this much receiving silence.
POLL_INTERVAL = 5.0
IDLE_TIMEOUT = 15.0
#: §2.2: the client must authenticate within this many seconds.
AUTH_WINDOW = 5.0

# Session-level methods [P].
M_AUTHENTICATE = "AuthenticateUserBase"
M_DISCONNECT = "disconnect"
M_DASHBOARD_MODE = "RemoteSetDashboardMode"
M_GET_STATUS = "RemoteGetStatus"
M_GET_FILTER_CONFIGURATION = "RemoteGetFilterConfiguration"
M_GET_PROFILES = "RemoteGetVoyagerProfiles"
M_ACTION_ABORT = "RemoteActionAbort"
M_ABORT = "Abort"
M_SET_LOG_EVENT = "RemoteSetLogEvent"
M_MOUNT_STATUS = "RemoteMountStatusGetInfo"
M_LIST_DRAGSCRIPTS = "RemoteGetListAvalaibleDragScript"  # sic: Voyager's spelling (§4a)
#: Methods answered by the immediate reply only, never by a RemoteActionResult (§3).
NO_RESULT_METHODS = frozenset({M_DISCONNECT, M_ABORT})

# Events [P] (§4).
E_VERSION = "Version"
E_POLLING = "Polling"
E_SIGNAL = "Signal"
E_ACTION_RESULT = "RemoteActionResult"
E_NEW_FIT = "NewFITReady"
E_NEW_JPG = "NewJPGReady"
E_SHOT_RUNNING = "ShotRunning"
E_CONTROL_DATA = "ControlData"
E_WEATHER = "WeatherAndSafetyMonitorData"
E_SHUTDOWN = "ShutDown"
E_LOG = "LogEvent"

AUTH_REJECTED_MESSAGE = "Authentication Rejected"


class ActionResultInt(IntEnum):
    """``RemoteActionResult.ActionResultInt`` (docs/voyager-protocol.md §3 table)."""

    NEED_INIT = 0
    READY = 1
    RUNNING = 2
    PAUSE = 3
    OK = 4
    FINISHED_ERROR = 5
    ABORTING = 6
    ABORTED = 7
    TIMEOUT = 8
    TIME_END = 9
    OK_PARTIAL = 10


_OK = int(ActionResultInt.OK)  # a plain int: compared once per command

# ---------------------------------------------------------------- encoding


#: The stdlib encoder, built once, for what orjson refuses (integers beyond 64 bits, non-str keys,
#: float subclasses): the same compact UTF-8 text, so the fallback never changes a message's shape.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode_json(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON (no spaces, non-ASCII kept as is); orjson, else the stdlib.

    Both sides write every message through here, so a float (e.g. the Version ``Timestamp``, whose
    text is the session key, §2.1) has one spelling. Raises TypeError for what neither can encode.
    """
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _ENCODER.encode(value).encode("utf-8")


def encode_message(msg: dict[str, Any]) -> bytes:
    """One JSON object on one line, UTF-8, CR LF terminated (§1); encoded as ``encode_json`` does."""
    try:
        return orjson.dumps(msg) + EOL
    except TypeError:
        return _ENCODER.encode(msg).encode("utf-8") + EOL


def encode_request(method: str, params: dict[str, Any] | None, id: int) -> bytes:  # noqa: A002 - wire name
    """A request line ``{"method", "params", "id"}`` without a ``jsonrpc`` field (§3).

    ``params`` None → the key is omitted (``disconnect``).
    """
    msg: dict[str, Any] = {"method": method}
    if params is not None:
        msg["params"] = params
    msg["id"] = id
    return encode_message(msg)


# ---------------------------------------------------------------- decoding


class LineSplitter:
    """The framer of both sides: splits a byte stream into lines on CR LF (a bare LF is accepted too).

    ``feed(data)`` returns the complete, non-blank lines (without terminator). Raises
    VoyagerProtocolError when an unfinished line grows beyond ``max_line`` bytes. Only the new
    bytes are searched for a newline, so a multi-megabyte line arriving in small chunks costs
    linear time.
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._buf = bytearray()
        self._max = max_line

    def feed(self, data: bytes) -> list[bytes]:
        parts = data.split(b"\n")
        buf = self._buf
        if len(parts) == 1:
            buf += data
            if len(buf) > self._max:
                raise VoyagerProtocolError(f"line longer than {self._max} bytes")
            return []
        if buf:
            buf += parts[0]
            parts[0] = bytes(buf)
            buf.clear()
        tail = parts.pop()
        if tail:
            buf += tail
            if len(buf) > self._max:
                raise VoyagerProtocolError(f"line longer than {self._max} bytes")
        return [line.rstrip(b"\r") for line in parts if line.strip()]


def decode_line(line: bytes) -> dict[str, Any]:
    """Parse one line (CR LF optional) into a dict, reading UTF-8 leniently (§1).

    Raises VoyagerProtocolError when the line is not a JSON object.
    """
    try:
        msg = orjson.loads(line)
    except orjson.JSONDecodeError:
        # orjson refuses invalid UTF-8 and NaN/Infinity: read those as the stdlib does, leniently.
        text = line.decode("utf-8", errors="replace").strip()
        try:
            msg = json.loads(text)
        except json.JSONDecodeError as exc:
            raise VoyagerProtocolError(f"not JSON: {text[:200]!r}") from exc
    if not isinstance(msg, dict):
        raise VoyagerProtocolError(f"not a JSON object: {line[:200].decode('utf-8', errors='replace')!r}")
    return msg


_TIMESTAMP_RE = re.compile(rb'"Timestamp"\s*:\s*"?(-?[0-9][0-9.eE+\-]*)')


def timestamp_text(raw_line: bytes) -> str | None:
    """The ``Timestamp`` value exactly as written on the raw line (§2.1: it is the SessionKey).

    Re-formatting the parsed float would change the decimals and break every MAC.
    """
    m = _TIMESTAMP_RE.search(raw_line)
    return m.group(1).decode("ascii") if m else None


def is_reply(msg: dict[str, Any]) -> bool:
    """An immediate JSON-RPC reply: carries ``jsonrpc`` and ``id`` (§3)."""
    return "jsonrpc" in msg and "id" in msg


def is_event(msg: dict[str, Any]) -> bool:
    """An event: carries ``Event`` (§4)."""
    return "Event" in msg


def is_request(msg: dict[str, Any]) -> bool:
    """A client request: carries ``method`` (what a server reads)."""
    return "method" in msg


# ---------------------------------------------------------------- identity and MAC


def new_uid() -> str:
    """A fresh action UID: a random (version 4) UUID, lower-case and dashed (§3).

    What ``str(uuid.uuid4())`` returns, from the same ``os.urandom`` bytes, without building a
    ``UUID`` object: one is made per command.
    """
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


#: RFC 4122 variant bits (10xx) on the first hex digit of the fourth group.
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


class UidSource:
    """The UIDs of one connection's commands (§3): version 4 UUIDs whose first four groups are drawn
    at random once per connection, and whose last group (48 bits) counts the connection's commands.

    Unique per connection by the counter, across connections and reconnects by the random part
    (74 random bits), like ``new_uid``'s; one string format per command, no ``os.urandom`` call.
    """

    __slots__ = ("_prefix", "_count")

    def __init__(self) -> None:
        h = os.urandom(10).hex()
        self._prefix = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-"
        self._count = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._count) & 0xFFFFFFFFFFFF:012x}"


def compute_mac(words: list[str], session_key: str, request_id: int, uid: str) -> str:
    """The RoboTarget MAC (docs/voyager-protocol.md §5: signs this request's own id and UID).

    ``base64(sha1(W1+W2+W3+W4 + "||:||" + SessionKey + "||:||" + str(id) + "||:||" + UID))``
    where ``session_key`` is the Version Timestamp text and ``request_id``/``uid`` are those of the
    very request that carries the MAC. The one place to change if a licence says otherwise.
    """
    text = "".join(words) + "||:||" + session_key + "||:||" + str(request_id) + "||:||" + uid
    return base64.b64encode(hashlib.sha1(text.encode("utf-8")).digest()).decode("ascii")


def auth_base(username: str, password: str) -> str:
    """``AuthenticateUserBase.Base``: standard Base64 of UTF-8 ``user:password`` (§5)."""
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


# ---------------------------------------------------------------- message builders (both sides)


def make_event(name: str, host: str, inst: int, *, timestamp: float | None = None, **fields: Any) -> dict[str, Any]:
    """An event dict ``{"Event", "Timestamp" (epoch s), "Host", "Inst", **fields}`` (§4)."""
    msg: dict[str, Any] = {
        "Event": name,
        "Timestamp": time.time() if timestamp is None else timestamp,
        "Host": host,
        "Inst": inst,
    }
    msg.update(fields)
    return msg


def make_polling(host: str = "client", inst: int = 1) -> dict[str, Any]:
    """The keep-alive event (§2.3)."""
    return make_event(E_POLLING, host, inst)


def make_action_result(
    uid: str,
    result: int,
    *,
    motivo: str = "",
    param_ret: dict[str, Any] | None = None,
    host: str = "VOYAGER",
    inst: int = 1,
    timestamp: float | None = None,
) -> dict[str, Any]:
    """A ``RemoteActionResult`` event matched by ``uid`` (§3): ``make_event``'s keys, then
    ``UID``, ``ActionResultInt``, ``Motivo``, ``ParamRet`` (built in one dict: one per command)."""
    return {
        "Event": E_ACTION_RESULT,
        "Timestamp": time.time() if timestamp is None else timestamp,
        "Host": host,
        "Inst": inst,
        "UID": uid,
        "ActionResultInt": int(result),
        "Motivo": motivo,
        "ParamRet": param_ret if param_ret is not None else {},
    }


def make_reply_result(id: int, result: Any = 0) -> dict[str, Any]:  # noqa: A002
    """Success reply ``{"jsonrpc":"2.0","result":0,"id":N}`` (§3)."""
    return {"jsonrpc": "2.0", "result": result, "id": id}


def encode_reply_ok(id: int) -> bytes:  # noqa: A002
    """The success reply line ``{"jsonrpc":"2.0","result":0,"id":N}`` CR LF: the bytes
    ``encode_message(make_reply_result(id))`` writes, without a dict or an encoder (one per command)."""
    return b'{"jsonrpc":"2.0","result":0,"id":%d}\r\n' % id


def make_reply_error(id: int, code: int, message: str) -> dict[str, Any]:  # noqa: A002
    """Error reply ``{"jsonrpc":"2.0","error":{"code","message"},"id":N}`` (§3)."""
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": id}


def make_authbase_reply(
    id: int,  # noqa: A002
    username: str,
    *,
    first_name: str = "",
    last_name: str = "",
    mail: str = "",
    permissions: int = 0,
    note: str = "",
) -> dict[str, Any]:
    """Successful ``AuthenticateUserBase`` reply with its ``authbase`` payload (§3)."""
    return {
        "jsonrpc": "2.0",
        "authbase": {
            "Username": username,
            "FirstName": first_name,
            "LastName": last_name,
            "Mail": mail,
            "Permissions": permissions,
            "Note": note,
        },
        "id": id,
    }


# ---------------------------------------------------------------- connection state (sans-IO)


class _SessionState:
    """What both ends of one connection share: the four MAC words and the session key (§2.1, §5)."""

    def __init__(self, mac_words: list[str] | None) -> None:
        self.mac_words = list(mac_words or ["", "", "", ""])
        #: The ``Version`` Timestamp text (§2.1); None until the Version event is seen or sent.
        self.session_key: str | None = None

    def mac(self, request_id: int, uid: str) -> str:
        """``compute_mac`` of this connection's words and session key for one request (§5)."""
        return compute_mac(self.mac_words, self.session_key or "", request_id, uid)


class PendingCall:
    """One command in flight (§3): waits for its reply by ``id`` and, when ``expect_result``, for
    its ``RemoteActionResult`` by ``uid``. ``waiter`` is the I/O layer's slot (e.g. a future); the
    protocol never touches it."""

    __slots__ = ("method", "id", "uid", "expect_result", "reply", "result", "waiter")

    def __init__(self, method: str, request_id: int, uid: str, expect_result: bool) -> None:
        self.method, self.id, self.uid, self.expect_result = method, request_id, uid, expect_result
        self.reply: dict[str, Any] | None = None
        self.result: dict[str, Any] | None = None
        self.waiter: Any = None

    @property
    def complete(self) -> bool:
        """The reply is in, and it is an error, or no result is expected, or the result is in too."""
        reply = self.reply
        return reply is not None and ("error" in reply or not self.expect_result or self.result is not None)

    def waiting_for(self) -> str:
        """What is still missing, for timeout messages: ``reply to M id=N`` or ``result of M uid=U``."""
        if self.reply is None:
            return f"reply to {self.method} id={self.id}"
        return f"result of {self.method} uid={self.uid}"

    def outcome(self) -> ActionResult:
        """The success rules (§3) applied to a complete call.

        Success: no error reply, and (when a result is expected) ActionResultInt 4 plus, for
        RoboTarget methods, ``ParamRet.ret == "DONE"`` (manager mode: ``ret`` absent or "DONE").
        Raises VoyagerAuthError (``AuthenticateUserBase`` refused), VoyagerRejected (any other
        error reply), VoyagerActionFailed (a result that is not a success).
        """
        reply = self.reply
        assert reply is not None, "outcome() of an incomplete call"
        if "error" in reply:
            err = reply["error"] or {}
            code, message = int(err.get("code", -1)), str(err.get("message", ""))
            raise (VoyagerAuthError if self.method == M_AUTHENTICATE else VoyagerRejected)(code, message)
        event = self.result
        if event is None:
            return ActionResult(uid=self.uid, reply=reply)
        param_ret = event.get("ParamRet") or {}
        if not isinstance(param_ret, dict):
            param_ret = {"value": param_ret}
        code = int(event.get("ActionResultInt", -1))
        motivo = str(event.get("Motivo", "") or "")
        ok = code == _OK
        if ok and self.method.startswith(wire.ROBOTARGET_PREFIX):  # wire.needs_mac
            ok = param_ret.get(wire.RET) == wire.RET_DONE  # RoboTarget success needs ret == "DONE" (§3)
        elif ok and self.method == wire.M_MANAGER_MODE:
            ok = param_ret.get(wire.RET, wire.RET_DONE) == wire.RET_DONE
        if not ok:
            raise VoyagerActionFailed(code, motivo, param_ret)
        return ActionResult(uid=self.uid, result_code=code, motivo=motivo, param_ret=param_ret, reply=reply)


@dataclass(slots=True)
class Version:
    """Received: the server's first ``Version`` event (§2.1); ``session_key`` is now set."""

    message: dict[str, Any]


@dataclass(slots=True)
class CallComplete:
    """Received: the last message ``call`` waited for; ``call.outcome()`` tells success or failure."""

    call: PendingCall


@dataclass(slots=True)
class Event:
    """Received: an event that is no reply, no matched result and no ``Polling`` (§4)."""

    message: dict[str, Any]


@dataclass(slots=True)
class BadLine:
    """Received: a line that is not a JSON object (skipped; it does not count as received)."""

    error: VoyagerProtocolError


Received = Version | CallComplete | Event | BadLine


class ClientProtocol(_SessionState):
    """The client side of one connection, without I/O (§2–§5).

    ``send_request`` numbers a command, adds its ``UID`` and ``MAC``/``Hash`` and registers it
    *before* the bytes are written (a result may overtake its reply, §3); ``receive_data`` frames
    and decodes bytes and matches replies by id and results by UID. ``mac_words``: the four
    licence words. Nothing here is ever re-sent; ``fail_all`` hands back every pending call when the
    link dies.
    """

    def __init__(self, mac_words: list[str] | None = None, max_line: int = MAX_LINE) -> None:
        super().__init__(mac_words)
        self.version: dict[str, Any] = {}
        #: Valid messages received so far (Polling included): the I/O layer's idle clock reads it.
        self.received = 0
        self._framer = LineSplitter(max_line)
        self._ids = itertools.count(1)
        self._new_uid = UidSource()
        self._by_id: dict[int, PendingCall] = {}
        self._by_uid: dict[str, PendingCall] = {}

    @property
    def pending(self) -> int:
        """Outstanding waits: one per reply and one per result of the calls in flight."""
        return len(self._by_id) + len(self._by_uid)

    def send_request(
        self, method: str, params: dict[str, Any] | None = None, *, expect_result: bool = True
    ) -> tuple[PendingCall, bytes]:
        """Register one command and return it with the line to write (§3, §5).

        Adds ``UID`` (unless given; never for ``disconnect``/``Abort``; a :class:`UidSource` UUID,
        unique per connection) and, for RoboTarget methods, the ``MAC`` of this very request
        (manager mode: ``Hash``). ``params`` is not modified.
        """
        request_id = next(self._ids)
        if method in NO_RESULT_METHODS:
            call = PendingCall(method, request_id, "", False)
            self._by_id[request_id] = call
            return call, encode_request(method, params, request_id)
        params = dict(params) if params else {}
        if wire.P_UID in params:
            uid = params[wire.P_UID]
        else:
            uid = params[wire.P_UID] = self._new_uid()
        if method == wire.M_MANAGER_MODE:
            params[wire.P_HASH] = self.mac(request_id, uid)
        elif method.startswith(wire.ROBOTARGET_PREFIX):  # wire.needs_mac, inlined
            params[wire.P_MAC] = self.mac(request_id, uid)
        call = PendingCall(method, request_id, uid, expect_result)
        self._by_id[request_id] = call
        if expect_result:
            self._by_uid[uid] = call
        return call, encode_message({"method": method, "params": params, "id": request_id})

    def forget(self, call: PendingCall) -> None:
        """Stop matching ``call`` (it completed, timed out or was cancelled)."""
        if self._by_id.get(call.id) is call:
            del self._by_id[call.id]
        if call.expect_result and self._by_uid.get(call.uid) is call:
            del self._by_uid[call.uid]

    def fail_all(self) -> list[PendingCall]:
        """Every call still pending, now forgotten (the link died: their outcome is unknown, §2.5)."""
        calls = list({id(c): c for c in (*self._by_id.values(), *self._by_uid.values())}.values())
        self._by_id.clear()
        self._by_uid.clear()
        return calls

    def receive_data(self, data: bytes) -> list[Received]:
        """Feed received bytes; return what they completed, in order.

        Before the ``Version`` event nothing else is reported. ``Polling`` and replies/results
        nobody waits for are consumed silently. Raises VoyagerProtocolError on a line over
        ``max_line`` bytes (the link is unusable after that).
        """
        out: list[Received] = []
        by_id, by_uid = self._by_id, self._by_uid
        for line in self._framer.feed(data):
            # Each line is decoded once, then told apart by its keys (§3, §4).
            try:
                msg = _loads(line)
            except _JSONDecodeError:
                msg = None
            if type(msg) is not dict:
                try:
                    msg = decode_line(line)  # the lenient reading, or the reason it is no object
                except VoyagerProtocolError as exc:
                    out.append(BadLine(exc))
                    continue
            self.received += 1
            if self.session_key is None:
                item = self._receive_first(msg, line)
                if item is not None:
                    out.append(item)
                continue
            if "jsonrpc" in msg and "id" in msg:  # a reply (§3)
                try:
                    call = by_id.get(msg["id"])
                except TypeError:  # an unhashable id matches nothing
                    continue
                if call is None or call.reply is not None:
                    continue
                call.reply = msg
                if call.expect_result and call.result is None and "error" not in msg:
                    continue  # the result is still to come
            else:
                event = msg.get("Event")
                if event != E_ACTION_RESULT:
                    if event != E_POLLING:
                        out.append(Event(msg))
                    continue
                uid = msg.get("UID", "")
                call = by_uid.get(uid if type(uid) is str else str(uid))
                if call is None or call.result is not None:
                    continue
                call.result = msg
                if call.reply is None:
                    continue  # the result overtook its reply (§3)
            # Complete: no longer matched (an error reply's result, if any, finds no waiter).
            if by_id.get(call.id) is call:
                del by_id[call.id]
            if call.expect_result and by_uid.get(call.uid) is call:
                del by_uid[call.uid]
            out.append(CallComplete(call))
        return out

    def _receive_first(self, msg: dict[str, Any], line: bytes) -> Received | None:
        if msg.get("Event") != E_VERSION:
            return None  # the server speaks first with Version (§2.1)
        self.version = msg
        # §2.1: the SessionKey is the Timestamp *text*; re-formatting the float breaks MACs.
        self.session_key = timestamp_text(line) or str(msg.get("Timestamp", ""))
        return Version(msg)


@dataclass(slots=True)
class Request:
    """A well-formed request the server read: ``method``, integer ``id``, ``params`` (an object)."""

    method: str
    id: int  # noqa: A003 - the wire name
    params: dict[str, Any]


class ServerProtocol(_SessionState):
    """The server side of one connection, without I/O (§2–§5), as the simulator's session uses it.

    ``version_event`` issues the session key; ``receive_line`` classifies one framed line;
    ``mac_ok`` checks the ``MAC``/``Hash`` a request carries against its own id and UID.
    ``mac_words``: the four licence words the server expects.
    """

    def version_event(self, timestamp: float, host: str, inst: int, **fields: Any) -> dict[str, Any]:
        """The ``Version`` event to send first; its Timestamp text becomes the session key (§2.1)."""
        self.session_key = encode_json(timestamp).decode("ascii")  # the exact text encode_message writes
        return {"Event": E_VERSION, "Timestamp": timestamp, "Host": host, "Inst": inst, **fields}

    @staticmethod
    def receive_line(line: bytes) -> Request | dict[str, Any] | None:
        """One framed line: a :class:`Request`; an error reply to send for a malformed request
        (−32600, §3); or None for what needs no answer (client events such as Polling, other
        objects). Raises VoyagerProtocolError when the line is not a JSON object (invalid lines do
        not count for the idle cutoff)."""
        try:
            msg = _loads(line)
        except _JSONDecodeError:
            msg = None
        if type(msg) is not dict:
            msg = decode_line(line)  # the lenient reading, or the reason it is no object
        if "Event" in msg or "method" not in msg:
            return None
        method, req_id = msg["method"], msg.get("id")
        # type(), not isinstance(): a bool id is refused too (JSON decoders make no other subclasses).
        if type(method) is not str or type(req_id) is not int:
            return make_reply_error(req_id if isinstance(req_id, int) else None, -32600, "Invalid Request")  # type: ignore[arg-type]
        params = msg.get("params")
        return Request(method, req_id, params if type(params) is dict else {})

    def mac_ok(self, params: dict[str, Any], request_id: int, key: str = wire.P_MAC) -> bool:
        """Whether ``params[key]`` is the MAC of the request ``request_id`` carrying ``params``
        (its own id and UID, §5); ``key``: ``MAC`` for RoboTarget commands, ``Hash`` for manager mode."""
        return params.get(key) == self.mac(request_id, str(params.get(wire.P_UID, "")))
