"""The data's range of days (first and newest event), and the as-of dates it can describe."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import ibis

# Columns whose values are events; their range is the data's range (same as features.store).
EVENT_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "customers": ("opened_at", "closed_at"),
    "holdings": ("opened_at", "closed_at"),
    "balances": ("month",),
    "transactions": ("ts",),
    "sessions": ("ts",),
    "complaints": ("opened_at", "first_response_at", "resolved_at"),
    "callbacks": ("done_at",),
}


class AsOfOutOfRange(ValueError):
    """An as-of date the data cannot describe; the message gives the data's range."""


def _as_day(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.date()
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        return _as_day(value.to_pydatetime())
    return value


def data_range(tables: Mapping[str, ibis.Table]) -> tuple[dt.date, dt.date]:
    """The UTC days of the first and of the newest event in `tables` (runs one query per table)."""
    firsts: list[dt.date] = []
    lasts: list[dt.date] = []
    for name, columns in EVENT_COLUMNS.items():
        table = tables.get(name)
        if table is None:
            continue
        present = [c for c in columns if c in table.columns]
        if not present:
            continue
        aggs = {f"lo_{c}": table[c].min() for c in present}
        aggs |= {f"hi_{c}": table[c].max() for c in present}
        row = table.aggregate(**aggs).to_pyarrow().to_pylist()[0]
        for key, value in row.items():
            if value is None:
                continue
            (firsts if key.startswith("lo_") else lasts).append(_as_day(value))
    if not lasts:
        looked = ", ".join(f"{t}.{c}" for t, cs in EVENT_COLUMNS.items() for c in cs)
        raise ValueError(f"no events in the tables (looked at {looked}): the data has no range")
    return min(firsts), max(lasts)


def check_as_of_range(dates: Sequence[dt.date], first: dt.date, last: dt.date) -> None:
    """Every as_of must be after the first event day and at most the day after the newest one."""
    end = last + dt.timedelta(days=1)
    bad = [d for d in dates if not first < d <= end]
    if bad:
        shown = ", ".join(d.isoformat() for d in bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise AsOfOutOfRange(
            f"as_of {shown} outside the data's range: events run from {first} to {last}, so "
            f"as_of must be after {first} and at most {end}"
        )
