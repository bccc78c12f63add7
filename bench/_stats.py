"""Percentiles for the benches' tables."""

from __future__ import annotations

import math
import statistics


def pct(values: list[float], q: int) -> float:
    """The ``q``-th percentile (1–99) of ``values`` (nearest-rank interpolation of statistics); nan if empty."""
    if not values:
        return math.nan
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]
