"""``next_window`` latency (core/ephemeris.py): cold (nights not computed yet in this process) and
warm (nights kept, as in a running API), for the kinds of target an order has.

    .venv/bin/python -m bench.next_window [--repeats 20]

Cold runs use a fresh :class:`Sky` each time, so every night is computed; warm runs reuse one. The
times are wall-clock on this machine (shared: read them with its load). No ceiling is asserted in
the tests; this is where the number is kept.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

from core.ephemeris import Constraints, Sky, next_window

OHP = (43.9308, 5.7133, 650.0)
START = datetime(2026, 1, 24, 16, tzinfo=UTC).timestamp()
CASES = {
    "M42, altitude ≥ 30°": Constraints(5.588, -5.39, alt_min=30.0, horizon_alt=10.0),
    "M42, moon-down (moonset ~23:00)": Constraints(5.588, -5.39, alt_min=20.0, horizon_alt=10.0, moon_down=True),
    "M42, moon-down from Jan 27 (a week ahead)": Constraints(5.588, -5.39, alt_min=20.0, horizon_alt=10.0,
                                                              moon_down=True, date_start=START + 3 * 86400),
    "circumpolar, Dec +85°": Constraints(2.53, 85.0, alt_min=30.0, horizon_alt=10.0),
    "never rises, Dec −60°": Constraints(6.0, -60.0, alt_min=0.0, horizon_alt=10.0),
}


def _ms(fn, n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000.0)
    return statistics.median(times), max(times)


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20, help="warm calls per case (cold: a quarter of it, at least 1)")
    args = ap.parse_args(argv)
    next_window(Sky(*OHP), CASES["M42, altitude ≥ 30°"], START)  # imports and IERS tables, once
    lines = ["| case | cold median / max (ms) | warm median / max (ms) |", "|---|---|---|"]
    for name, c in CASES.items():
        cold = _ms(lambda: next_window(Sky(*OHP, keep_nights=60), c, START), max(1, args.repeats // 4))
        warm_sky = Sky(*OHP, keep_nights=60)
        next_window(warm_sky, c, START)
        warm = _ms(lambda: next_window(warm_sky, c, START), args.repeats)
        lines.append(f"| {name} | {cold[0]:.0f} / {cold[1]:.0f} | {warm[0]:.2f} / {warm[1]:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
