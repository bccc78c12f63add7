"""How long tests wait for work that a loaded machine slows down (a child process importing the whole
app, a connection's first event), scaled by one setting: ``STELLAR_TEST_PATIENCE``, a factor
(default 1; e.g. 2 on a machine shared with other work). Only waits for something that is expected
to happen scale: a wait asserting that nothing happens keeps its time, or it would test less."""

from __future__ import annotations

import os

ENV = "STELLAR_TEST_PATIENCE"


def _factor() -> float:
    raw = os.environ.get(ENV, "").strip()
    try:
        factor = float(raw) if raw else 1.0
    except ValueError:
        raise ValueError(f"{ENV}={raw!r}: give a factor, e.g. 2") from None
    if factor < 1.0:
        raise ValueError(f"{ENV}={raw!r}: the factor is at least 1 (it only lengthens waits)")
    return factor


FACTOR = _factor()


def patience(seconds: float) -> float:
    """``seconds`` (what a quiet machine needs, with margin) × ``STELLAR_TEST_PATIENCE``."""
    return seconds * FACTOR
