"""The sky half of a telescope's verdict on an order, kept: :func:`core.ephemeris.check_visibility`
and :func:`core.ephemeris.next_window` answers, per site, target, constraints and time cell.

``POST /api/orders`` with ``telescope: any`` judges every online telescope (api/services/assignment.py);
a burst of orders for the same targets asks the same questions again and again. Each answer is
kept under a key that holds everything it depends on, so a kept answer is exactly the fresh one
(tests/api/test_sky_verdicts.py compares them over many targets, sites and nights):

* the feasibility check: site, target, altitude floor, hour-angle window and the sample grid of
  the date window (:func:`core.ephemeris.visibility_grid`: the same for every start between two
  samples, 10 minutes or more apart);
* the next window: site (latitude, longitude, elevation, grid step), the order's
  :class:`core.ephemeris.Constraints`, the night and the grid cell (3 min) the search starts in,
  and whether that start is past ``date_end``. Within a cell the answer only differs by its start
  being ``after`` itself when ``after`` lies in an observable cell, so the cell's answer is kept with
  its start at the cell's beginning and ``max(after, start)`` is returned.

Both memos are bounded (least recently used dropped first) and thread-safe (the assignment runs
them in a worker thread); concurrent askers of a missing answer wait for the one computing it
instead of computing it again (a dusk burst would otherwise run the same astropy work N times).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from core.ephemeris import Constraints, Sky, Visibility, check_visibility, next_window, visibility_grid

T = TypeVar("T")
#: Answers kept per memo: a few thousand (site, target, constraints, cell) tuples, a few hundred KiB.
MAX_ENTRIES = 4096


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    value: object = None
    error: BaseException | None = None


class BoundedMemo(Generic[T]):
    """A thread-safe LRU of at most ``size`` answers; :meth:`get` computes a missing one once, even
    when several threads ask for it at the same time. ``hits``/``misses``: counted since creation."""

    def __init__(self, size: int = MAX_ENTRIES) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[Hashable, T] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def get(self, key: Hashable, compute: Callable[[], T] | None) -> T:
        """The answer kept under ``key``, else ``compute()``'s (kept; an exception is not).
        ``compute`` None: raises :class:`NotKept` instead of computing (nothing is counted)."""
        if compute is None:
            with self._lock:
                if key not in self._data:
                    raise NotKept(key)
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = _Flight()
                self.misses += 1
            else:
                self.hits += 1
        assert flight is not None
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value  # type: ignore[return-value]
        try:
            flight.value = compute()
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                self._flights.pop(key, None)
                if flight.error is None:
                    self._data[key] = flight.value  # type: ignore[assignment]
                    while len(self._data) > self.size:
                        self._data.popitem(last=False)
            flight.done.set()
        return flight.value  # type: ignore[return-value]


class NotKept(LookupError):
    """The answer asked with ``kept_only`` is not kept yet: computing it is astropy work, for a
    worker thread (api/services/assignment.py)."""


VISIBILITY: BoundedMemo[Visibility] = BoundedMemo()
WINDOWS: BoundedMemo[tuple[float, float] | None] = BoundedMemo()


def visibility(ra_hours: float, dec_deg: float, *, alt_min: float, start: datetime, end: datetime,
               latitude: float, longitude: float, ha_start: float | None = None,
               ha_end: float | None = None, memo: BoundedMemo[Visibility] = VISIBILITY,
               kept_only: bool = False) -> Visibility:
    """:func:`core.ephemeris.check_visibility` with the same arguments (same units), kept per sample
    grid in ``memo``. ``kept_only``: raises :class:`NotKept` rather than compute an answer."""
    grid = visibility_grid(start, end)

    def compute() -> Visibility:
        return check_visibility(ra_hours, dec_deg, alt_min=alt_min, start=start, end=end, latitude=latitude,
                                longitude=longitude, ha_start=ha_start, ha_end=ha_end)

    if grid is None:
        if kept_only:
            raise NotKept(None)
        return compute()
    key = (ra_hours, dec_deg, alt_min, latitude, longitude, ha_start, ha_end, grid)
    return memo.get(key, None if kept_only else compute)


def window(sky: Sky, c: Constraints, after: float,
           memo: BoundedMemo[tuple[float, float] | None] = WINDOWS,
           kept_only: bool = False) -> tuple[float, float] | None:
    """:func:`core.ephemeris.next_window` ``(sky, c, after)`` (epoch s), kept per grid cell of
    ``after`` in ``memo``. ``kept_only``: raises :class:`NotKept` rather than compute an answer."""
    start = max(after, c.date_start) if c.date_start else after
    night = sky.night_start(start)
    cell = int((start - night) // sky.step)
    cell_start = night + cell * sky.step

    def compute() -> tuple[float, float] | None:
        found = next_window(sky, c, start)
        if found is None:
            return None
        # next_window starts at ``start`` itself only inside an observable cell: keep that cell's start.
        return (cell_start if found[0] == start else found[0]), found[1]

    key = (sky.latitude, sky.longitude, sky.elevation, sky.step, c, night, cell,
           bool(c.date_end and start > c.date_end))
    kept = memo.get(key, None if kept_only else compute)
    return None if kept is None else (max(start, kept[0]), kept[1])
