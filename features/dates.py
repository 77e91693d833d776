"""As-of dates: one parser for every entry point (CLI strings, dates, midnight datetimes)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any


def parse_day(value: Any, error: type[Exception] = ValueError, what: str = "as_of") -> dt.date:
    """A `datetime.date` from a date, a datetime or an ISO string; `error` names the bad value."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise error(f"{what} must be a date (YYYY-MM-DD), got {value!r}") from None


def normalize_dates(as_of_dates: Iterable[Any]) -> list[dt.date]:
    """Sorted unique `datetime.date`s; ISO strings and midnight datetimes are accepted."""
    out: set[dt.date] = set()
    for raw in as_of_dates:
        if isinstance(raw, dt.datetime):
            if raw.time() != dt.time():
                raise ValueError(f"as_of must be a date (midnight UTC), got {raw!r}")
            out.add(raw.date())
        elif isinstance(raw, dt.date):
            out.add(raw)
        elif isinstance(raw, str):
            try:
                out.add(dt.date.fromisoformat(raw))
            except ValueError:
                raise ValueError(f"as_of must be a date YYYY-MM-DD, got {raw!r}") from None
        else:
            raise ValueError(f"as_of must be a date, got {raw!r} ({type(raw).__name__})")
    if not out:
        raise ValueError("no as_of dates given")
    return sorted(out)
