"""The kept sky answers of the assignment (api/services/sky_verdicts.py) are the fresh ones: over
random targets, constraints, sites in both hemispheres and nights across a year, a kept answer read
at another instant of the same time cell equals ``check_visibility`` / ``next_window`` computed
fresh at that instant; the memo stays within its size and computes a missing answer once when
several threads ask for it together."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from api.services import sky_verdicts
from api.services.sky_verdicts import BoundedMemo
from core.ephemeris import Constraints, Sky, check_visibility, next_window, visibility_grid

#: (latitude, longitude, elevation): Haute-Provence, Almería, New Mexico, Rio Hurtado.
SITES = [(43.9308, 5.7133, 650.0), (37.22, -2.55, 2168.0), (32.9, -105.53, 2225.0), (-30.53, -70.85, 1710.0)]
#: Evenings spread over a year (UTC), each the start of a few draws.
NIGHTS = [datetime(2026, m, d, 15, tzinfo=UTC) for m, d in ((1, 10), (4, 2), (7, 21), (10, 14))]
#: Sky grid step of the next-window comparison (s): coarser than the API's 3 min, so the test's
#: astropy work stays small; the keys do not depend on the step.
TEST_STEP = 900.0


def _constraints(rng: random.Random) -> Constraints:
    ha = rng.random() < 0.3
    ha_start = rng.uniform(-6, 2) if ha else None
    return Constraints(
        ra_hours=round(rng.uniform(0, 24), 3), dec_deg=round(rng.uniform(-80, 85), 2),
        alt_min=rng.choice([0.0, 20.0, 30.0, 45.0]), horizon_alt=rng.choice([0.0, 10.0]),
        ha_start=ha_start, ha_end=(ha_start + rng.uniform(1, 8)) if ha else None,
        moon_down=rng.random() < 0.3)


def _cell_instants(sky: Sky, at: float, rng: random.Random) -> tuple[float, float]:
    """Two different instants of the grid cell holding ``at``."""
    night = sky.night_start(at)
    cell = night + ((at - night) // sky.step) * sky.step
    return cell + rng.uniform(0, sky.step), cell + rng.uniform(0, sky.step)


def test_kept_next_windows_equal_fresh_ones_over_targets_sites_and_nights():
    rng = random.Random(16)
    memo: BoundedMemo = BoundedMemo()
    skies = [Sky(*site, step=TEST_STEP, keep_nights=60) for site in SITES]
    cases = []
    for evening in NIGHTS[::2]:
        for _ in range(4):
            c = _constraints(rng)
            if rng.random() < 0.25:  # an order's own date window, sometimes already under way
                opens = evening.timestamp() + rng.uniform(-2, 3) * 86400
                c = Constraints(**{**c.__dict__, "date_start": opens, "date_end": opens + rng.uniform(0.2, 6) * 86400})
            at = evening.timestamp() + rng.uniform(0, 86400)
            cases += [(sky, c, at) for sky in skies]
    rng.shuffle(cases)  # sites and nights interleaved: a key missing a part would mix their answers
    compared = found = 0
    for sky, c, at in cases:
        first, second = _cell_instants(sky, at, rng)
        kept_first = sky_verdicts.window(sky, c, first, memo=memo)
        kept_second = sky_verdicts.window(sky, c, second, memo=memo)
        assert kept_first == next_window(sky, c, first), (sky.latitude, c, first)
        assert kept_second == next_window(sky, c, second), (sky.latitude, c, second)
        compared += 2
        found += kept_second is not None
    assert memo.hits >= len(cases)  # every second read was kept
    assert found > len(cases) // 3  # most draws have a window: the comparison is not of Nones only
    assert compared == 2 * len(cases)


def test_kept_feasibility_checks_equal_fresh_ones_for_every_start_between_two_samples():
    rng = random.Random(61)
    memo: BoundedMemo = BoundedMemo()
    observable = 0
    for _ in range(300):
        lat, lon, _elevation = rng.choice(SITES)
        c = _constraints(rng)
        opens = rng.choice(NIGHTS) + timedelta(hours=rng.uniform(0, 48))
        closes = opens + timedelta(days=rng.choice([0.3, 1, 7, 30, 120]))
        t0, step, _count = visibility_grid(opens, closes)
        # Another start in the same step (between the previous sample and this grid's first one).
        other = datetime.fromtimestamp(t0 - rng.uniform(1e-3, step - 1e-3), UTC)
        args = dict(alt_min=max(c.alt_min, c.horizon_alt), end=closes, latitude=lat, longitude=lon,
                    ha_start=c.ha_start, ha_end=c.ha_end)
        if visibility_grid(other, closes)[:2] != (t0, step):
            continue  # the other start changed the step (its span crossed a minute): another grid
        kept = sky_verdicts.visibility(c.ra_hours, c.dec_deg, start=opens, memo=memo, **args)
        kept_other = sky_verdicts.visibility(c.ra_hours, c.dec_deg, start=other, memo=memo, **args)
        assert kept == check_visibility(c.ra_hours, c.dec_deg, start=opens, **args)
        assert kept_other == check_visibility(c.ra_hours, c.dec_deg, start=other, **args)
        observable += kept.observable
    assert memo.hits > 200
    assert 30 < observable < 290  # both answers were compared


def test_the_memo_keeps_at_most_its_size_and_drops_the_least_recently_used():
    memo: BoundedMemo[int] = BoundedMemo(size=8)
    for k in range(20):
        memo.get(k, lambda k=k: k * k)
    assert len(memo) == 8
    memo.get(12, lambda: -1)  # kept: read, not recomputed, and now the most recent
    memo.get(20, lambda: 400)
    assert memo.get(12, lambda: -1) == 144
    assert memo.get(13, lambda: -1) == -1  # 13 was the least recently used: dropped for 20


def test_threads_asking_for_the_same_missing_answer_compute_it_once():
    memo: BoundedMemo[str] = BoundedMemo()
    calls = []

    def slow() -> str:
        calls.append(threading.get_ident())
        time.sleep(0.2)
        return "answer"

    answers: list[str] = []
    threads = [threading.Thread(target=lambda: answers.append(memo.get("k", slow))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == ["answer"] * 8 and len(calls) == 1


def test_a_failed_computation_is_not_kept_and_every_waiter_sees_its_error():
    memo: BoundedMemo[int] = BoundedMemo()

    def boom() -> int:
        raise ValueError("no ephemeris")

    with pytest.raises(ValueError):
        memo.get("k", boom)
    assert memo.get("k", lambda: 7) == 7


def test_kept_only_answers_are_the_kept_ones_and_a_missing_one_is_not_computed():
    """``POST /api/orders`` judges from kept answers on the event loop and goes to a worker thread
    only for a missing one (api/services/assignment.py): ``kept_only`` never computes."""
    rng = random.Random(7)
    sky = Sky(*SITES[1], step=TEST_STEP, keep_nights=4)
    visibilities: BoundedMemo = BoundedMemo()
    windows: BoundedMemo = BoundedMemo()
    for evening in NIGHTS[:2]:
        c = _constraints(rng)
        at = evening.timestamp() + rng.uniform(0, 86400)
        opens = datetime.fromtimestamp(at, UTC)
        args = dict(alt_min=max(c.alt_min, c.horizon_alt), start=opens, end=opens + timedelta(days=7),
                    latitude=sky.latitude, longitude=sky.longitude, ha_start=c.ha_start, ha_end=c.ha_end)
        before = (len(visibilities), len(windows), visibilities.misses, windows.misses)
        with pytest.raises(sky_verdicts.NotKept):
            sky_verdicts.visibility(c.ra_hours, c.dec_deg, memo=visibilities, kept_only=True, **args)
        with pytest.raises(sky_verdicts.NotKept):
            sky_verdicts.window(sky, c, at, memo=windows, kept_only=True)
        assert (len(visibilities), len(windows), visibilities.misses, windows.misses) == before  # nothing computed

        computed = sky_verdicts.visibility(c.ra_hours, c.dec_deg, memo=visibilities, **args)
        assert sky_verdicts.visibility(c.ra_hours, c.dec_deg, memo=visibilities, kept_only=True, **args) == computed
        found = sky_verdicts.window(sky, c, at, memo=windows)
        later = _cell_instants(sky, at, rng)[0]  # another instant of the same cell: still kept
        assert sky_verdicts.window(sky, c, at, memo=windows, kept_only=True) == found
        assert sky_verdicts.window(sky, c, later, memo=windows, kept_only=True) == next_window(sky, c, later)
