"""Dashboard event fields as real Voyager sends them (Voyager protocol §4, §4a): formats and a reader.

Writing (the simulator): :func:`hms` (``"05:35:17"``, RA hours or a duration), :func:`dms`
(``"-05° 23' 28\\""``, Dec/alt/az degrees), :func:`clock` (``"HH:MM:SS"`` of a UTC time).

Reading (Stellar's own client): :func:`read_control_data` and :func:`read_weather` turn a
``ControlData`` / ``WeatherAndSafetyMonitorData`` event into typed snapshots. They accept numbers or
the text forms above, map Voyager's special numbers (−123456789 off, 123456789 error) to None, and
never fail on a field that is missing, unknown or malformed: that field is simply None.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: Voyager's special numbers in ControlData (§4): no value / device off, and an error reading.
OFF = -123456789
ERROR = 123456789
_SPECIAL = {OFF, ERROR}
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d*)?")

# ---------------------------------------------------------------- writing


def hms(value: float) -> str:
    """Hours (RA, or a duration in hours) → ``"HH:MM:SS"`` (rounded to the second, wraps at 24 h)."""
    total = int(round(value * 3600.0)) % 86400
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def duration(seconds: float) -> str:
    """Seconds → ``"HH:MM:SS"`` (negative → ``"00:00:00"``)."""
    return hms(max(seconds, 0.0) / 3600.0)


def clock(epoch: float) -> str:
    """Epoch seconds → ``"HH:MM:SS"`` UTC time of day."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%H:%M:%S")


def dms(value: float, signed: bool = True) -> str:
    """Degrees → ``"-05° 23' 28\\""`` (``signed``: always print the sign, as for Dec and altitude)."""
    total = int(round(abs(value) * 3600.0))
    d, m, s = total // 3600, total % 3600 // 60, total % 60
    sign = "-" if value < 0 and total else ("+" if signed else "")
    return f"{sign}{d:02d}° {m:02d}' {s:02d}\""


# ---------------------------------------------------------------- reading


def number(value: Any) -> float | None:
    """A number, numeric text or sexagesimal text (``"05:35:17"``, ``"-05° 23' 28\\""``,
    ``"-5 23 28"``) → float in the unit of its first part; special numbers and junk → None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        v = float(value)
        return None if not math.isfinite(v) or int(v) in _SPECIAL and v == int(v) else v
    if not isinstance(value, str):
        return None
    text = value.strip()
    parts = _NUMBER.findall(text)
    if not parts:
        return None
    negative = text.startswith("-")
    try:
        nums = [abs(float(p)) for p in parts[:3]]
    except ValueError:
        return None
    v = sum(n / 60.0**i for i, n in enumerate(nums))
    if len(nums) == 1 and int(float(parts[0])) in _SPECIAL:
        return None
    return -v if negative else v


def flag(value: Any) -> bool | None:
    """A bool, 0/1 or ``"true"``/``"false"`` → bool; anything else → None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    return None


def integer(value: Any) -> int | None:
    """A number or numeric text → int (truncated); special numbers, clock texts and junk → None."""
    v = number(value) if not isinstance(value, str) or ":" not in value else None
    return None if v is None else int(v)


def text(value: Any) -> str | None:
    """The value when it is text, else None."""
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class ControlSnapshot:
    """What Stellar reads from ``ControlData``. Every field may be None (missing, off, error).

    ``voyager_status``: ``VOYSTAT`` (0 stopped, 1 idle, 2 run, 3 error, 4 undefined, 5 warning);
    ``ra_j2000``: hours; ``dec_j2000``/``alt``/``az``: degrees; ``ccd_temp``/``ccd_set_point``: °C;
    ``cooler_state``: ``CCDSTAT`` (§4a); ``sequence_remaining``: seconds.
    """

    voyager_status: int | None
    setup_connected: bool | None
    sequence: str | None
    sequence_remaining: float | None
    ccd_temp: float | None
    ccd_set_point: float | None
    cooler_state: int | None
    mount_parked: bool | None
    mount_tracking: bool | None
    ra_j2000: float | None
    dec_j2000: float | None
    alt: float | None
    az: float | None
    pier: str | None
    guide_status: int | None

    @property
    def running(self) -> bool:
        return self.voyager_status == 2


def read_control_data(event: dict[str, Any]) -> ControlSnapshot:
    """Typed view of a ``ControlData`` event (§4a); tolerant of numbers, text, gaps and extras."""
    g = event.get
    remain = number(g("SEQREMAIN"))
    return ControlSnapshot(
        voyager_status=integer(g("VOYSTAT")),
        setup_connected=flag(g("SETUPCONN")),
        sequence=text(g("SEQNAME")) or text(g("RUNSEQ")) or None,
        sequence_remaining=None if remain is None else remain * 3600.0,
        ccd_temp=number(g("CCDTEMP")),
        ccd_set_point=number(g("CCDSETP")),
        cooler_state=integer(g("CCDSTAT")),
        mount_parked=flag(g("MNTPARK")),
        mount_tracking=flag(g("MNTTRACK")),
        ra_j2000=number(g("MNTRAJ2000")),
        dec_j2000=number(g("MNTDECJ2000")),
        alt=number(g("MNTALT")),
        az=number(g("MNTAZ")),
        pier=text(g("MNTPIER")),
        guide_status=integer(g("GUIDESTAT")),
    )


@dataclass(frozen=True)
class WeatherSnapshot:
    """What Stellar reads from ``WeatherAndSafetyMonitorData``; None where missing or unreadable.

    ``safe``: ``SMStatus`` is ``SAFE`` (False for ``UNSAFE``); ``cloud``: ``WSCloud`` text.
    """

    safe: bool | None
    cloud: str | None
    rain: str | None
    weather_connected: bool | None
    safety_connected: bool | None


def read_weather(event: dict[str, Any]) -> WeatherSnapshot:
    """Typed view of a ``WeatherAndSafetyMonitorData`` event (§4, §4a)."""
    status = text(event.get("SMStatus"))
    safe = None if status is None else {"SAFE": True, "UNSAFE": False}.get(status.strip().upper())
    return WeatherSnapshot(
        safe=safe,
        cloud=text(event.get("WSCloud")),
        rain=text(event.get("WSRain")),
        weather_connected=flag(event.get("WSConnected")),
        safety_connected=flag(event.get("SMConnected")),
    )
