"""Sans-IO Voyager Application Server protocol: framing, messages, MAC (docs/voyager-protocol.md §1–§5).

No sockets here. Both the client (``voyager/client.py``) and the simulator build and read messages
with these functions, so the two sides cannot drift apart. Session-level names are public [P];
the RoboTarget [S]/[C] mapping lives in ``voyager/wire.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from enum import IntEnum
from typing import Any

from voyager.errors import VoyagerProtocolError

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


# ---------------------------------------------------------------- encoding


def encode_message(msg: dict[str, Any]) -> bytes:
    """One JSON object on one line, UTF-8, CR LF terminated (§1)."""
    return json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + EOL


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
    """Splits a byte stream into lines on CR LF (a bare LF is accepted too).

    ``feed(data)`` returns the complete lines (without terminator). Raises VoyagerProtocolError
    when a line grows beyond ``max_line`` bytes.
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._buf = bytearray()
        self._max = max_line

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        lines: list[bytes] = []
        start = 0
        while True:
            nl = self._buf.find(b"\n", start)
            if nl < 0:
                break
            lines.append(bytes(self._buf[start:nl]).rstrip(b"\r"))
            start = nl + 1
        del self._buf[:start]
        if len(self._buf) > self._max:
            raise VoyagerProtocolError(f"line longer than {self._max} bytes")
        return [ln for ln in lines if ln.strip()]


def decode_line(line: bytes) -> dict[str, Any]:
    """Parse one line (CR LF optional) into a dict, reading UTF-8 leniently (§1).

    Raises VoyagerProtocolError when the line is not a JSON object.
    """
    text = line.decode("utf-8", errors="replace").strip()
    try:
        msg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VoyagerProtocolError(f"not JSON: {text[:200]!r}") from exc
    if not isinstance(msg, dict):
        raise VoyagerProtocolError(f"not a JSON object: {text[:200]!r}")
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
    """A fresh action UID (lower-case dashed UUID, §3)."""
    return str(uuid.uuid4())


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
    """A ``RemoteActionResult`` event matched by ``uid`` (§3)."""
    return make_event(
        E_ACTION_RESULT,
        host,
        inst,
        timestamp=timestamp,
        UID=uid,
        ActionResultInt=int(result),
        Motivo=motivo,
        ParamRet=param_ret if param_ret is not None else {},
    )


def make_reply_result(id: int, result: Any = 0) -> dict[str, Any]:  # noqa: A002
    """Success reply ``{"jsonrpc":"2.0","result":0,"id":N}`` (§3)."""
    return {"jsonrpc": "2.0", "result": result, "id": id}


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
