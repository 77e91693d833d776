"""How `build_features` groups as-of dates into passes (the values do not depend on it:
test_golden builds the same snapshots one per pass and all at once)."""

from __future__ import annotations

import datetime as dt

from features.loading import monthly_as_of_dates
from features.passes import MAX_AGGREGATES_PER_PASS, plan_passes

TWELVE = monthly_as_of_dates(dt.date(2025, 7, 1), 12)


def test_twelve_monthly_snapshots_with_180_day_windows_split_in_two_halves() -> None:
    # one pass: every aggregate on ~514 days of rows; two: each on ~332 days, one extra scan
    assert plan_passes(TWELVE, 8, None, 180) == [list(range(6)), list(range(6, 12))]


def test_without_old_rows_to_skip_one_pass_holds_as_many_snapshots_as_the_cap() -> None:
    assert plan_passes(TWELVE, 8, None, None) == [list(range(12))]


def test_a_short_lookback_makes_smaller_passes_worth_their_scan() -> None:
    long, short = plan_passes(TWELVE, 26, None, 180), plan_passes(TWELVE, 26, None, 30)
    assert len(short) > len(long)
    assert sorted(i for p in short for i in p) == list(range(12))


def test_the_cap_bounds_the_aggregates_of_a_pass() -> None:
    per_snapshot = 100
    for p in plan_passes(TWELVE, per_snapshot, None, 180):
        assert len(p) * per_snapshot <= MAX_AGGREGATES_PER_PASS


def test_an_explicit_pass_size_wins() -> None:
    assert plan_passes(TWELVE, 8, 5, 180) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]
    assert plan_passes(TWELVE[:1], 8, None, 180) == [[0]]
