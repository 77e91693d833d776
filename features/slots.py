"""Snapshot slots and per-table aggregation: every snapshot's measures in one group-by a table.

For the sorted as-of dates T_0 < ... < T_K-1 and an event column x, slot(x) = the number of
T_k <= x (an int8 from one CASE); a row counts for snapshot k when slot(start + delay) <= k <
slot(anchor + window) and, for states, k < slot(end) (see `features.build`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import ibis
import ibis.expr.datatypes as dtypes

from features.spec import Measure
from keepwell.contract import timing


@ibis.udf.agg.builtin(name="count_if")
def _count_if(condition: bool) -> dtypes.int64:  # type: ignore[empty-body]
    """count_if(boolean) of DuckDB and Spark: cheaper than sum(CASE WHEN c THEN 1 ELSE 0 END)."""


# -- literals and slots ----------------------------------------------------------------------


def literal_like(column: ibis.Value, day: dt.date, shift_days: int = 0) -> ibis.Value:
    """Midnight UTC of `day - shift_days`, typed like `column` (date or timestamp)."""
    moment = day - dt.timedelta(days=shift_days)
    kind = column.type()
    if kind.is_date():
        return ibis.literal(moment, type="date")
    if kind.is_timestamp():
        tz = dt.UTC if kind.timezone else None
        return ibis.literal(dt.datetime.combine(moment, dt.time(), tzinfo=tz), type=kind)
    raise TypeError(f"column {column.get_name()} is {kind}, not a date or a timestamp")


def slot(
    column: ibis.Value,
    dates: Sequence[dt.date],
    shift_days: int = 0,
    known: Callable[[dt.date], dt.date] | None = None,
) -> ibis.Value:
    """int8: how many of `dates` (minus `shift_days`) are <= `column`; len(dates) when null.

    With `known` (the contract's cutoff for the column), the number of those dates before which
    the row was already known: `column < known(date - shift_days)`.
    """
    branches = []
    for k, d in enumerate(dates):
        day = d - dt.timedelta(days=shift_days)
        limit = literal_like(column, known(day) if known else day)
        branches.append((column < limit, k))
    return ibis.cases(*branches, else_=len(dates)).cast("int8")


# -- per-table aggregation -------------------------------------------------------------------


@dataclass
class TablePlan:
    """The measures of one table, and whether old rows can skip the per-snapshot work."""

    name: str
    measures: list[Measure]
    split: bool = False
    history: list[Measure] = field(default_factory=list)

    @classmethod
    def of(cls, name: str, measures: list[Measure]) -> TablePlan:
        starts = {m.start for m in measures}
        simple = (
            len(starts) == 1
            and all(m.end is None for m in measures)
            and all(m.anchor in (None, m.start) for m in measures)
        )
        history = [m for m in measures if m.window_days is None]
        return cls(name, measures, split=simple, history=history)

    def split_shift(self) -> int:
        """Days before the first as_of from which rows are old (and known) for every measure."""
        windows = [m.window_days or 0 for m in self.measures]
        delays = [m.delay_days for m in self.measures]
        lag = max(timing.knowledge_lag_days(self.name, m.start) for m in self.measures)
        return max([*windows, *delays, 0]) + lag


def _aggregate_value(m: Measure, ev: ibis.Table, cond: ibis.Value) -> ibis.Value:
    if m.how == "sum":
        if m.value is None:
            return _count_if(cond)
        return ibis.ifelse(cond, ev[m.value].cast("float64").fill_null(0.0), 0.0).sum()
    if m.how == "max":
        return ibis.ifelse(cond, ev[m.value], ibis.null(ev[m.value].type())).max()
    if m.how == "min":
        return ibis.ifelse(cond, ev[m.value], ibis.null(ev[m.value].type())).min()
    if m.how == "bit_or":
        return ibis.ifelse(cond, ev[m.value].cast("int64"), 0).bit_or()
    if m.how == "latest":
        return ev[m.value].argmax(ev[m.start], where=cond)
    raise ValueError(f"measure {m.name}: unknown aggregate {m.how!r}")  # pragma: no cover


def _plain_aggregate(m: Measure, ev: ibis.Table) -> ibis.Value:
    cond = ibis.literal(True)
    if m.where is not None:
        cond = ev[m.where].fill_null(False)
    return _aggregate_value(m, ev, cond)


def aggregate_table(
    plan: TablePlan, ev: ibis.Table, dates: Sequence[dt.date], offset: int
) -> list[ibis.Table]:
    """Per-customer tables with `<measure>__<offset + k>` (and `<measure>__old`) columns."""
    slots: dict[tuple[str, int, bool], str] = {}

    def slot_name(column: str, shift: int, known: bool = False) -> str:
        key = (column, shift, known)
        if key not in slots:
            slots[key] = f"_slot{len(slots)}"
        return slots[key]

    ranges = []
    for m in plan.measures:
        # a row starts to count once it is known (the contract's rule for its table): only a
        # period column is known later than its value; windows and ends compare the raw columns
        lo = slot_name(
            m.start, m.delay_days, known=timing.period_of(plan.name, m.start) is not None
        )
        his = []
        if m.window_days is not None:
            his.append(slot_name(m.window_column, m.window_days))
        if m.end is not None:
            his.append(slot_name(m.end, 0))
        ranges.append((m, lo, his))

    out: list[ibis.Table] = []
    start_col = plan.measures[0].start
    recent = ev
    if plan.split:
        boundary = literal_like(ev[start_col], dates[0], plan.split_shift())
        if plan.history:
            old = ev.filter(ev[start_col] < boundary)
            out.append(
                old.group_by("customer_id").aggregate(
                    **{f"{m.name}__old": _plain_aggregate(m, old) for m in plan.history}
                )
            )
        recent = ev.filter(
            (ev[start_col] >= boundary) & (ev[start_col] < literal_like(ev[start_col], dates[-1]))
        )
    recent = recent.mutate(
        **{
            name: slot(recent[col], dates, shift, _known_cutoff(plan.name, col) if known else None)
            for (col, shift, known), name in slots.items()
        }
    )
    k_count = len(dates)
    visible = ibis.or_(*[recent[lo] < k_count for _, lo, _ in ranges])
    recent = recent.filter(visible)
    aggs: dict[str, ibis.Value] = {}
    for k in range(k_count):
        for m, lo, his in ranges:
            cond = recent[lo] <= k
            for hi in his:
                cond &= recent[hi] > k
            if m.where is not None:
                cond &= recent[m.where].fill_null(False)
            aggs[f"{m.name}__{offset + k}"] = _aggregate_value(m, recent, cond)
    out.append(recent.group_by("customer_id").aggregate(**aggs))
    return out


def _known_cutoff(table: str, column: str) -> Callable[[dt.date], dt.date]:
    return lambda day: timing.cutoff(table, column, day)
