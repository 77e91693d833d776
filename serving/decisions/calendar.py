"""The working-day calendar of the callback and complaint rules: the weekdays in
`policy.working_days` (Monday = 0) that are not `policy.holidays` (DESIGN.md section 1)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

if TYPE_CHECKING:
    from keepwell.config import Config

DAY = np.timedelta64(1, "D")


def utc(moment: dt.datetime) -> pd.Timestamp:
    ts = pd.Timestamp(moment)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


@dataclass(frozen=True)
class WorkingCalendar:
    """Working days: the weekdays in `working_days` (Monday = 0) that are not `holidays`."""

    working_days: tuple[int, ...]
    holidays: tuple[dt.date, ...] = ()
    _numpy: np.busdaycalendar = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        days = tuple(sorted(set(self.working_days)))
        bad = [d for d in days if not 0 <= d <= 6]
        if bad or not days:
            raise ValueError(f"working_days must be weekday numbers 0-6, got {self.working_days}")
        object.__setattr__(self, "working_days", days)
        object.__setattr__(self, "holidays", tuple(sorted(set(self.holidays))))
        weekmask = [1 if d in days else 0 for d in range(7)]
        object.__setattr__(
            self,
            "_numpy",
            np.busdaycalendar(weekmask=weekmask, holidays=np.array(self.holidays, "datetime64[D]")),
        )

    @classmethod
    def from_config(cls, config: Config) -> WorkingCalendar:
        return cls(tuple(config.policy.working_days), tuple(config.policy.holidays))

    def is_working_day(self, date: dt.date) -> bool:
        """Whether `date` (a datetime counts by its UTC date) is a working day."""
        day = utc(date).date() if isinstance(date, dt.datetime) else date
        return bool(np.is_busday(np.datetime64(day, "D"), busdaycal=self._numpy))

    def add_working_days(
        self, moment: dt.datetime, n: int, *, end_of_day: bool = False
    ) -> pd.Timestamp:
        """The same time of day on the n-th working day after the (UTC) day of `moment`.

        Working days are counted strictly after the day of `moment`, whether or not that day is
        itself a working day: Friday 16:00 + 7 -> Tuesday of the week after next, 16:00;
        Saturday 10:00 + 7 -> the same Tuesday, 10:00. With `end_of_day` the deadline is the
        midnight that ends the n-th working day instead (the resolution-breach feature's
        convention). Returns a UTC `pd.Timestamp` (a `datetime` subclass).
        """
        return self.add_working_days_array(pd.Series([utc(moment)]), n, end_of_day=end_of_day)[0]

    def add_working_days_array(
        self, moments: Any, n: int, *, end_of_day: bool = False
    ) -> pd.DatetimeIndex:
        """`add_working_days` for a column of moments (NaT stays NaT); a UTC datetime array."""
        if n < 1:
            raise ValueError(f"the number of working days must be at least 1, got {n}")
        ts = pd.to_datetime(pd.Series(moments, copy=False), utc=True)
        naive = ts.dt.tz_localize(None).to_numpy("datetime64[us]")
        valid = ~np.isnat(naive)
        day = naive.astype("datetime64[D]")
        out = np.full(naive.shape, np.datetime64("NaT"), "datetime64[us]")
        target = np.busday_offset(day[valid], n, roll="backward", busdaycal=self._numpy)
        if end_of_day:
            out[valid] = (target + DAY).astype("datetime64[us]")
        else:
            out[valid] = target.astype("datetime64[us]") + (naive[valid] - day[valid])
        return pd.DatetimeIndex(out).tz_localize("UTC")

    def offsets(self, first: dt.date, last: dt.date, n: int) -> pa.Table:
        """For every day in [first, last]: `days`, the calendar days from it to the n-th working
        day after it (a table for joining in SQL: deadline = moment + days)."""
        if n < 1:
            raise ValueError(f"the number of working days must be at least 1, got {n}")
        days = np.arange(np.datetime64(first, "D"), np.datetime64(last, "D") + DAY)
        target = np.busday_offset(days, n, roll="backward", busdaycal=self._numpy)
        return pa.table(
            {
                "day": pa.array(days, pa.date32()),
                "days": pa.array((target - days).astype(np.int32), pa.int32()),
            }
        )
