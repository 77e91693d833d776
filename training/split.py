"""Split labelled snapshots by time so that no label of an earlier part looks into a later part.

    split = time_split(data.as_of_dates, horizon_days=90, valid_snapshots=2, test_snapshots=2)
    train, valid, test = split.frames(data.frame)

The rule, newest first:

* test  = the newest `test_snapshots` as-of dates (every reported metric comes from here);
* valid = the newest `valid_snapshots` dates whose label horizon ends at or before the first
  test date (as_of + horizon <= first test as_of): early stopping, calibration, shape choice;
* train = every earlier date whose horizon ends at or before the first valid date.

Dates between the parts are dropped: their labels would overlap the next part's period. A
training label therefore uses only events before the first validation as_of, and a
validation label only events before the first test as_of.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd


class SplitError(ValueError):
    """The as-of dates cannot make non-empty, non-overlapping train/valid/test parts."""


@dataclass(frozen=True)
class TimeSplit:
    """As-of dates of each part (oldest first) and the label horizon that separates them."""

    train: tuple[dt.date, ...]
    valid: tuple[dt.date, ...]
    test: tuple[dt.date, ...]
    horizon_days: int
    dropped: tuple[dt.date, ...] = ()

    def frames(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """(train, valid, test) rows of `frame` by its `as_of` column (dates)."""
        if "as_of" not in frame.columns:
            raise KeyError(f"the frame has no as_of column; columns: {list(frame.columns)[:8]}")
        as_of = frame["as_of"].map(_as_date)
        parts = []
        for dates in (self.train, self.valid, self.test):
            parts.append(frame[as_of.isin(set(dates))])
        return parts[0], parts[1], parts[2]

    def describe(self) -> dict[str, Any]:
        """Flat, string-friendly parameters for MLflow (dates as ISO strings)."""

        def span(dates: Sequence[dt.date]) -> str:
            return f"{dates[0]}..{dates[-1]}" if dates else ""

        return {
            "split_horizon_days": self.horizon_days,
            "split_train_snapshots": len(self.train),
            "split_valid_snapshots": len(self.valid),
            "split_test_snapshots": len(self.test),
            "split_train": span(self.train),
            "split_valid": span(self.valid),
            "split_test": span(self.test),
            "split_dropped": ",".join(str(d) for d in self.dropped),
        }


def _as_date(value: Any) -> dt.date:
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()


def _ends_by(day: dt.date, horizon_days: int, limit: dt.date) -> bool:
    return day + dt.timedelta(days=horizon_days) <= limit


def time_split(
    as_of_dates: Sequence[dt.date],
    horizon_days: int,
    valid_snapshots: int,
    test_snapshots: int,
) -> TimeSplit:
    """Train/valid/test as-of dates by the gap rule in the module docstring."""
    if valid_snapshots < 1 or test_snapshots < 1:
        raise SplitError(
            f"valid_snapshots and test_snapshots must be at least 1, got {valid_snapshots} "
            f"and {test_snapshots}"
        )
    dates = sorted({_as_date(d) for d in as_of_dates})
    if len(dates) < test_snapshots:
        raise SplitError(f"{len(dates)} as-of date(s) for {test_snapshots} test snapshot(s)")
    test = dates[-test_snapshots:]
    before_test = [d for d in dates[:-test_snapshots] if _ends_by(d, horizon_days, test[0])]
    valid = before_test[-valid_snapshots:]
    train = (
        [d for d in before_test if d < valid[0] and _ends_by(d, horizon_days, valid[0])]
        if len(valid) == valid_snapshots
        else []
    )
    if len(valid) < valid_snapshots or not train:
        gap = _gap_months(horizon_days)
        needed = test_snapshots + gap + valid_snapshots + gap + 1
        raise SplitError(
            f"{len(dates)} monthly as-of date(s) {dates[0]} .. {dates[-1]} cannot make "
            f"{test_snapshots} test, {valid_snapshots} validation and at least 1 training "
            f"snapshot with a {horizon_days}-day label gap between the parts (got train "
            f"{len(train)}, valid {len(valid)}); monthly snapshots need up to {needed} dates"
        )
    kept = set(train) | set(valid) | set(test)
    return TimeSplit(
        train=tuple(train),
        valid=tuple(valid),
        test=tuple(test),
        horizon_days=horizon_days,
        dropped=tuple(d for d in dates if d not in kept),
    )


def _gap_months(horizon_days: int) -> int:
    """Monthly snapshots dropped between two parts for a horizon: ceil(horizon / 28) - 1 at
    most; 90 days drop 2 or 3 months depending on month lengths, so count the worst case."""
    return -(-horizon_days // 28) - 1
