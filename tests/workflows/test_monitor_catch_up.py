"""The catch-up pass's look-back (``activities.monitor.catch_up_days``): the whole life of every
waiting order, from its creation to the later of now and its deadline, never less than the poll's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from activities.monitor import catch_up_days

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_look_back_covers_the_default_lifetime_of_a_young_order():
    assert catch_up_days([(NOW - timedelta(hours=1), None)], now=NOW, run_days=2, lifetime_days=30) == 31


def test_look_back_covers_an_order_older_than_its_deadline_and_a_long_date_window():
    overdue = (NOW - timedelta(days=45, hours=1), None)  # still waiting 45 days after creation
    window = (NOW - timedelta(days=1), NOW + timedelta(days=60))  # date window ends in 60 days
    assert catch_up_days([overdue], now=NOW, run_days=2, lifetime_days=30) == 47
    assert catch_up_days([window], now=NOW, run_days=2, lifetime_days=30) == 62
    assert catch_up_days([overdue, window], now=NOW, run_days=2, lifetime_days=30) == 62


def test_look_back_is_never_shorter_than_the_poll_window():
    assert catch_up_days([], now=NOW, run_days=2, lifetime_days=30) == 2
    assert catch_up_days([(NOW, NOW + timedelta(hours=6))], now=NOW, run_days=3, lifetime_days=30) == 3
