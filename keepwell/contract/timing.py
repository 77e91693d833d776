"""When a row of a bank table becomes known: the one point-in-time rule of Keepwell.

A snapshot at as_of T (a date: midnight UTC starting that day) may use a fact only when it was
known before T. Every table declares here how its rows become known, and every feature, label,
online-store snapshot and planner run applies the same declaration:

* an **event** column is known at its own timestamp: a row with `ts` = x counts when x < T;
* a **period** column names the period a row describes by its first day (`balances.month`): the
  row holds the period's closing value, known once the period is over, so a row counts from the
  first day of the next period on (x < T becomes month < first day of T's month);
* a **scheduled** column (a callback's `due_at`) is a plan: the task exists, and is known,
  `policy.callback_notice_days` before it is due (features still count it only once due);
* a row **arrives** at the earliest known time of its arrival columns; columns that are filled
  in later (a closing date, a response, a reached call) are each known at their own timestamp,
  and the columns that come with them (`with_later`) are unknown until then;
* **attributes** (segment, risk tolerance, a product's type...) carry no time: the value in the
  export is taken for every as_of;
* **at export** columns (`holdings.balance`) hold a value at the end of the data: no feature may
  read them, and `features.build` refuses one that does.

`cutoff(table, column, day)` turns the rule into a comparison any engine can run on the raw
column (`column < cutoff`); `known_frames(frames, as_of)` applies it to pandas tables (every row
and value not yet known at as_of removed), which is what the point-in-time checks compare with.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd
import pyarrow as pa

Period = Literal["month"]
MAX_PERIOD_LAG_DAYS: Mapping[str, int] = {"month": 31}  # first day to the end of the period


@dataclass(frozen=True)
class Timing:
    """How the rows of one table become known (see the module docstring)."""

    arrives: tuple[str, ...] = ()
    later: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    period: Period | None = None
    at_export: tuple[str, ...] = ()
    scheduled: tuple[str, ...] = ()  # arrival columns known `notice_days` ahead of their value

    def describe(self) -> str:
        """One sentence for docs/data-contract.md."""
        if self.period:
            first = self.arrives[0]
            text = (
                f"a row is a {self.period}'s closing value, known from the first day of the next "
                f"{self.period} (counts when `{first}` is before the first day of as_of's "
                f"{self.period})"
            )
        elif self.arrives:
            cols = " / ".join(f"`{c}`" for c in self.arrives)
            text = f"a row is known from {cols}" + (
                " (the earlier of them)" if len(self.arrives) > 1 else ""
            )
        else:
            text = "no time: the rows are taken as they are for every as_of"
        for column in self.scheduled:
            text += (
                f"; `{column}` is a plan, known `policy.callback_notice_days` before it (the "
                "task exists from then; features count it once it is due)"
            )
        for column, comes_with in self.later.items():
            text += f"; `{column}` is known at its own time"
            if comes_with:
                text += " (and " + ", ".join(f"`{c}`" for c in comes_with) + " with it)"
        if self.at_export:
            cols = ", ".join(f"`{c}`" for c in self.at_export)
            text += f"; {cols} is the value at the end of the data, never read by a feature"
        return text + "."


TIMINGS: Mapping[str, Timing] = {
    "customers": Timing(arrives=("opened_at",), later={"closed_at": ()}),
    "holdings": Timing(arrives=("opened_at",), later={"closed_at": ()}, at_export=("balance",)),
    "balances": Timing(arrives=("month",), period="month"),
    "transactions": Timing(arrives=("ts",)),
    "sessions": Timing(arrives=("ts",)),
    "complaints": Timing(
        arrives=("opened_at",), later={"first_response_at": (), "resolved_at": ()}
    ),
    # a call can be made before its due date: the task is known from the earlier of the two
    "callbacks": Timing(
        arrives=("due_at", "done_at"),
        later={"done_at": ("outcome", "satisfaction")},
        scheduled=("due_at",),
    ),
    "rms": Timing(),
    "oracle": Timing(arrives=("as_of",)),
}


def timing(table: str) -> Timing:
    """The declared timing of `table`; a table the contract does not know has event columns."""
    return TIMINGS.get(table, Timing())


def period_start(day: dt.date, period: Period) -> dt.date:
    if period == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown period {period!r}")  # pragma: no cover


def period_of(table: str, column: str) -> Period | None:
    """The period `column` of `table` names (None for an event column)."""
    t = timing(table)
    return t.period if t.period and column in t.arrives else None


def cutoff(table: str, column: str, day: dt.date) -> dt.date:
    """A row of `table` is known before `day` exactly when its raw `column` < this date.

    `day` itself for an event column (midnight UTC of that day); the first day of the period
    containing `day` for a period column (that period's row is known only when it ends).
    """
    period = period_of(table, column)
    return period_start(day, period) if period else day


def knowledge_lag_days(table: str, column: str) -> int:
    """At most how many days after its `column` value a row becomes known."""
    period = period_of(table, column)
    return MAX_PERIOD_LAG_DAYS[period] if period else 0


def at_export_columns(table: str) -> tuple[str, ...]:
    return timing(table).at_export


# -- the rule on pandas tables (the reference the point-in-time checks compare with) ----------


def _before(values: pd.Series, limit: dt.date) -> pd.Series:
    """values < midnight UTC of `limit`, null as false, for date or timestamp columns."""
    dtype = values.dtype
    bound: object = limit  # python dates (object or Arrow date columns)
    if isinstance(dtype, pd.ArrowDtype) and pa.types.is_timestamp(dtype.pyarrow_dtype):
        bound = pd.Timestamp(limit, tz=dtype.pyarrow_dtype.tz)
    elif isinstance(dtype, pd.DatetimeTZDtype):
        bound = pd.Timestamp(limit, tz="UTC")
    elif not isinstance(dtype, pd.ArrowDtype) and pd.api.types.is_datetime64_any_dtype(dtype):
        bound = pd.Timestamp(limit)
    return (values < bound).fillna(False).astype(bool)


def known_frame(
    table: str, frame: pd.DataFrame, as_of: dt.date, *, notice_days: int = 0
) -> pd.DataFrame:
    """The rows and values of `table` that were known before `as_of`, by `TIMINGS`
    (`notice_days`: how long before its value a scheduled column is known)."""
    rule = timing(table)
    present = [c for c in rule.arrives if c in frame.columns]
    out = frame
    if present:
        arrived = pd.Series(False, index=frame.index)
        for column in present:
            limit = cutoff(table, column, as_of)
            if column in rule.scheduled:
                limit += dt.timedelta(days=notice_days)
            arrived |= _before(frame[column], limit)
        out = frame.loc[arrived].copy()
    for column, comes_with in rule.later.items():
        if column not in out.columns:
            continue
        unknown = out[column].notna() & ~_before(out[column], as_of)
        for col in (column, *comes_with):
            if col in out.columns and unknown.any():
                out[col] = out[col].mask(unknown)
    return out.reset_index(drop=True)


def known_frames(
    frames: Mapping[str, pd.DataFrame], as_of: dt.date, *, notice_days: int = 0
) -> dict[str, pd.DataFrame]:
    """Every table cut to what was known before `as_of` (see `known_frame`)."""
    return {
        name: known_frame(name, frame, as_of, notice_days=notice_days)
        for name, frame in frames.items()
    }
