"""Typed errors of the Voyager client (docs/voyager-protocol.md §2–§5).

Every failure the client reports is a :class:`VoyagerError`, so callers (activities) can catch the
base class and decide retry vs. permanent failure from the subclass.
"""

from __future__ import annotations

from typing import Any


class VoyagerError(Exception):
    """Base class of every Voyager client error."""


class VoyagerConnectionError(VoyagerError):
    """The link is down, could not be opened, or dropped while a command was in flight.

    A command that fails with this error has an unknown outcome and is never re-sent by the client
    (docs/voyager-protocol.md §2.5): look the object up by the GUID you chose before trying again.
    """


class VoyagerTimeout(VoyagerError):
    """A wait (connect, reply, result, free pool connection) exceeded its timeout."""


class VoyagerProtocolError(VoyagerError):
    """The peer sent something that breaks the wire contract (bad JSON, line over 64 MiB, …)."""


class VoyagerRejected(VoyagerError):
    """The immediate JSON-RPC reply was an error: ``{"error": {"code", "message"}}`` (§3)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"Voyager rejected the command: {code} {message}")
        self.code = code
        self.message = message


class VoyagerAuthError(VoyagerRejected):
    """``AuthenticateUserBase`` was refused (``Authentication Rejected``, §5)."""


class VoyagerActionFailed(VoyagerError):
    """The ``RemoteActionResult`` was not a success (§3).

    ``result_code``: ActionResultInt; ``motivo``: Voyager's reason text; ``param_ret``: the
    ``ParamRet`` object (for RoboTarget commands ``param_ret["ret"]`` holds e.g.
    ``"ERROR : MAC Error"``).
    """

    def __init__(self, result_code: int, motivo: str, param_ret: dict[str, Any] | None = None) -> None:
        param_ret = param_ret or {}
        ret = param_ret.get("ret")
        detail = f" ret={ret!r}" if ret is not None else ""
        super().__init__(f"Voyager action failed: result={result_code} motivo={motivo!r}{detail}")
        self.result_code = result_code
        self.motivo = motivo
        self.param_ret = param_ret
