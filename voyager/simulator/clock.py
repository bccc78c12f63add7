"""The simulator's clock: simulated epoch seconds running ``speed`` times faster than real time.

``speed`` 0 pauses it (tests then move it with ``set_time``/``VoyagerSimulator.run_until``).
Every change (jump, speed) wakes the tasks waiting in :meth:`SimClock.wait_change`, so a
fast-forward or a test's ``set_time`` takes effect at once.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime


def to_epoch(value: float | datetime) -> float:
    """Aware datetime (naive = UTC) or epoch seconds → epoch seconds."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    return float(value)


class SimClock:
    """Simulated time. ``now()``: epoch seconds (float); ``speed``: simulated s per real s (≥ 0)."""

    def __init__(self, start: float | datetime | None = None, speed: float = 1.0) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._sim0 = time.time() if start is None else to_epoch(start)
        self._real0 = time.monotonic()
        self._speed = float(speed)
        self._changed = asyncio.Event()

    # ------------------------------------------------------------ reading

    def now(self) -> float:
        """Simulated epoch seconds."""
        return self._sim0 + (time.monotonic() - self._real0) * self._speed

    def now_dt(self) -> datetime:
        """Simulated time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.now(), tz=UTC)

    @property
    def speed(self) -> float:
        return self._speed

    def real_seconds_until(self, sim_t: float) -> float:
        """Real seconds until the clock reaches ``sim_t`` (inf when paused and not yet there)."""
        delta = sim_t - self.now()
        if delta <= 0:
            return 0.0
        return delta / self._speed if self._speed > 0 else math.inf

    # ------------------------------------------------------------ changing

    def _rebase(self, sim_now: float) -> None:
        self._sim0 = sim_now
        self._real0 = time.monotonic()
        self._changed.set()
        self._changed = asyncio.Event()

    def set_time(self, value: float | datetime) -> None:
        """Jump to ``value`` (epoch s or datetime), forwards or backwards."""
        self._rebase(to_epoch(value))

    def advance(self, seconds: float) -> None:
        """Jump forwards by ``seconds`` of simulated time (the fast-forward)."""
        self._rebase(self.now() + max(0.0, seconds))

    def set_speed(self, speed: float) -> None:
        """Change the speed-up (0 pauses) keeping the current simulated time."""
        if speed < 0:
            raise ValueError("speed must be >= 0")
        now = self.now()
        self._speed = float(speed)
        self._rebase(now)

    async def wait_change(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` real seconds; returns True early when the clock was changed."""
        event = self._changed
        if timeout <= 0:
            return False
        try:
            async with asyncio.timeout(timeout if math.isfinite(timeout) else None):
                await event.wait()
            return True
        except TimeoutError:
            return False
