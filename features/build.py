"""Point-in-time feature snapshots for many as-of dates in one pass, as Ibis expressions.

`build_features(tables, as_of_dates, spec, config)` returns a lazy Ibis table with one row per
(customer_id, as_of) for every customer that exists at as_of (opened_at < as_of and closed_at
null or >= as_of), whatever the backend (DuckDB, PySpark): no pandas, no per-snapshot loop, no
range join. Only events strictly before as_of count, for every column: an event's effect starts
at `Measure.start` and counts for the snapshots after it.

How one pass serves every snapshot ("snapshot slots"). For the sorted as-of dates T_0 < ... <
T_K-1 and an event column x, slot(x) = the number of T_k <= x (an int8 from one CASE). An event
counts for snapshot k when slot(start + delay) <= k < slot(anchor + window) and, for states,
k < slot(end). Each table is then grouped once by customer_id with one conditional aggregate per
(measure, snapshot): `sum(CASE WHEN <k in range> THEN value ELSE 0 END)`, `count_if(<k in
range>)` for counts. Rows older than every
window feed the history measures (last event, latest reading) through one extra plain aggregate,
so they skip the per-snapshot work. The per-customer wide tables are joined to the customers
(1 row each) and unpivoted by unnesting an array of one struct per snapshot; each feature's
`compute` turns the measures into the feature value. Snapshots are processed in passes of
consecutive as-of dates: a pass evaluates its aggregates only on the rows that can count for its
snapshots, so splitting 12 monthly snapshots with 180-day windows in two halves does less work
than one pass, at the cost of reading the tables once more (`features.passes` picks the size; a
cap keeps the wide table small, see `snapshots_per_pass`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.datatypes as dtypes

from features.dates import normalize_dates
from features.definitions import prepare_tables
from features.families.common import Params
from features.passes import plan_passes
from features.spec import BASE_INPUTS, FeatureSpec, Measure
from keepwell.contract import timing

if TYPE_CHECKING:
    from keepwell.config import Config

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
DAY_US = 86_400_000_000
_PER_SNAPSHOT = re.compile(r".+__\d+")


class AsOfOutOfRange(ValueError):
    """An as-of date the data cannot describe; the message gives the data's range."""


# -- engine shims: cheap epoch microseconds (DuckDB casts of TIMESTAMPTZ go through ICU) ------


@ibis.udf.scalar.builtin(name="epoch_us")
def _duckdb_epoch_us(ts) -> dtypes.int64:  # type: ignore[no-untyped-def]
    """DuckDB's epoch_us(timestamp[tz])."""


@ibis.udf.scalar.builtin(name="unix_micros")
def _spark_unix_micros(ts) -> dtypes.int64:  # type: ignore[no-untyped-def]
    """Spark's unix_micros(timestamp)."""


@ibis.udf.agg.builtin(name="count_if")
def _count_if(condition: bool) -> dtypes.int64:  # type: ignore[empty-body]
    """count_if(boolean) of DuckDB and Spark: cheaper than sum(CASE WHEN c THEN 1 ELSE 0 END)."""


def engine_name(table: ibis.Table) -> str:
    """The backend a table lives on ("duckdb", "pyspark", ...); "duckdb" for bare memtables."""
    try:
        return str(table._find_backend(use_default=True).name)
    except Exception:  # pragma: no cover - an unbound table
        return "duckdb"


def epoch_micros(column: ibis.Value, engine: str) -> ibis.Value:
    if engine == "duckdb":
        return _duckdb_epoch_us(column)
    if engine == "pyspark":
        return _spark_unix_micros(column)
    return (column.epoch_seconds() * 1_000_000).cast("int64")


# -- dates and ranges ------------------------------------------------------------------------


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


def customers_base(customers: ibis.Table, extra: Iterable[str] = ()) -> ibis.Table:
    cols = list(dict.fromkeys([*BASE_INPUTS["customers"], *extra]))
    return customers.select(*cols)


def attach(wide: ibis.Table, per_customer: ibis.Table) -> ibis.Table:
    """`wide` left-joined with a per-customer table on customer_id (one key column kept)."""
    right = per_customer.rename({"_join_key": "customer_id"})
    joined = wide.left_join(right, wide.customer_id == right._join_key)
    return joined.select(*[c for c in joined.columns if c != "_join_key"])


def active_at(wide: ibis.Table, day: dt.date) -> ibis.Value:
    """The customer exists at `day`: opened before it and not closed before it."""
    opened, closed = wide.opened_at, wide.closed_at
    return (opened < literal_like(opened, day)) & (
        closed.isnull() | (closed >= literal_like(closed, day))
    )


# -- per-table aggregation -------------------------------------------------------------------

_COMBINE: dict[str, Callable[[ibis.Value, ibis.Value], ibis.Value]] = {
    "sum": lambda recent, old: recent.fill_null(0) + old.fill_null(0),
    "max": lambda recent, old: ibis.ifelse(recent.isnull() | (old > recent), old, recent),
    "min": lambda recent, old: ibis.ifelse(recent.isnull() | (old < recent), old, recent),
    "bit_or": lambda recent, old: recent.fill_null(0) | old.fill_null(0),
    "latest": lambda recent, old: recent.coalesce(old),  # recent rows are all newer
}


@dataclass
class _TablePlan:
    """The measures of one table, and whether old rows can skip the per-snapshot work."""

    name: str
    measures: list[Measure]
    split: bool = False
    history: list[Measure] = field(default_factory=list)

    @classmethod
    def of(cls, name: str, measures: list[Measure]) -> _TablePlan:
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
    plan: _TablePlan, ev: ibis.Table, dates: Sequence[dt.date], offset: int
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
        # a row starts to count once it is known (the contract's rule for its table);
        # windows and ends compare the raw columns
        lo = slot_name(m.start, m.delay_days, known=True)
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


# -- snapshot view ---------------------------------------------------------------------------


class SnapshotView:
    """What a feature's `compute` sees: the measures and customer columns at one as_of.

    `table` has one row per (customer, snapshot): the customer's columns, `as_of`, the helper
    columns `_day` (as_of in days since 1970-01-01), `_year` and `_month_day` (month * 100 +
    day of as_of), and one column per measure (plus `<measure>__old` for history measures).
    """

    def __init__(self, table: ibis.Table, engine: str, history: Mapping[str, str]) -> None:
        self.table = table
        self.engine = engine
        self._history = history  # measure name -> how, for measures with an __old column

    @property
    def as_of(self) -> ibis.Value:
        return self.table.as_of

    def raw(self, measure: Measure) -> ibis.Value:
        """The measure at this as_of (null when the customer has no counting rows)."""
        recent = self.table[f"_m_{measure.name}"]
        if measure.name in self._history:
            old = self.table[f"{measure.name}__old"]
            return _COMBINE[self._history[measure.name]](recent, old)
        return recent

    def total(self, measure: Measure) -> ibis.Value:
        """A sum, count or bit mask with null as 0."""
        return self.raw(measure).fill_null(0)

    def customer(self, column: str) -> ibis.Value:
        return self.table[column]

    def days_since_column(self, column: ibis.Value) -> ibis.Value:
        """Calendar days between the UTC date of a timestamp and as_of (1 = the day before)."""
        day = (epoch_micros(column, self.engine) // DAY_US).cast("int64")
        return (self.table._day - day).cast("int64")

    def days_since(self, measure: Measure) -> ibis.Value:
        return self.days_since_column(self.raw(measure))

    @staticmethod
    def ratio(numerator: ibis.Value, denominator: ibis.Value) -> ibis.Value:
        """numerator / denominator, null when the denominator is null or not positive."""
        num = numerator.cast("float64")
        den = denominator.cast("float64")
        return ibis.ifelse(den > 0, num / den, ibis.null("float64"))

    @staticmethod
    def clip_low(value: ibis.Value, low: float | int) -> ibis.Value:
        return ibis.ifelse(value < low, ibis.literal(low, value.type()), value)

    def popcount(self, measure: Measure, bits: int) -> ibis.Value:
        mask = self.total(measure).cast("int64")
        total: ibis.Value = ibis.literal(0, "int64")
        for i in range(bits):
            total = total + ibis.ifelse((mask & (1 << i)) != 0, 1, 0)
        return total.cast("int64")

    def age_years(self, birth_date: ibis.Value) -> ibis.Value:
        """Completed years at as_of; null when birth_date is null."""
        t = self.table
        to_come = (birth_date.month() * 100 + birth_date.day()) > t._month_day
        return (t._year - birth_date.year() - ibis.ifelse(to_come, 1, 0)).cast("int64")


# -- the build -------------------------------------------------------------------------------


def _check_inputs(tables: Mapping[str, ibis.Table], spec: FeatureSpec) -> None:
    customers = tables.get("customers")
    if customers is None:
        raise ValueError(
            "build_features needs the table customers (columns "
            f"{', '.join(BASE_INPUTS['customers'])}); tables given: {sorted(tables)}"
        )
    missing = [c for c in BASE_INPUTS["customers"] if c not in customers.columns]
    if missing:
        raise ValueError(f"table customers lacks column(s) {missing}, needed for every snapshot")
    at_export = [
        f"{f.name} reads {table}.{c}"
        for f in spec
        for table, cols in f.required_columns.items()
        for c in cols
        if c in timing.at_export_columns(table)
    ]
    if at_export:
        raise ValueError(
            "features read columns that hold a value at the end of the data, not at as_of "
            f"(see docs/data-contract.md, 'When a row is known'): {'; '.join(at_export)}"
        )
    problems = [
        f"{f.name} (needs {', '.join(miss)})" for f in spec if (miss := f.missing_inputs(tables))
    ]
    if problems:
        raise ValueError(
            "features whose inputs are missing: "
            + "; ".join(problems)
            + ". Use spec.available_for(tables) to drop them with a warning."
        )


def build_features(
    tables: Mapping[str, ibis.Table],
    as_of_dates: Sequence[dt.date],
    spec: FeatureSpec,
    config: Config,
    *,
    data_range: tuple[dt.date, dt.date] | None = None,
    snapshots_per_pass: int | None = None,
) -> ibis.Table:
    """The feature table: customer_id, as_of (date), then `spec`'s features in order.

    `data_range` (first, newest event day) skips the range query when the caller knows it.
    Raises `AsOfOutOfRange` (a ValueError) for an as_of outside (first event, newest + 1 day],
    and ValueError for a missing table or column.
    """
    dates = normalize_dates(as_of_dates)
    _check_inputs(tables, spec)
    first, last = data_range if data_range is not None else _data_range(tables)
    check_as_of_range(dates, first, last)
    engine = engine_name(tables["customers"])
    params = Params.from_config(config)

    by_table: dict[str, list[Measure]] = {}
    for m in spec.measures:
        by_table.setdefault(m.table, []).append(m)
    needed = {t: {c for m in ms for c in m.columns} for t, ms in by_table.items()}
    prepared = prepare_tables(tables, needed, dates, params)
    plans = {t: _TablePlan.of(t, ms) for t, ms in by_table.items()}
    customer_cols = [c for f in spec for c in f.required_columns.get("customers", ())]
    base = customers_base(tables["customers"], customer_cols)
    per_snapshot = sum(len(ms) for ms in by_table.values())

    parts: list[ibis.Table] = []
    lookback = max((plan.split_shift() for plan in plans.values() if plan.split), default=None)
    passes = plan_passes(dates, per_snapshot, snapshots_per_pass, lookback)
    for idx in passes:
        pass_dates = [dates[i] for i in idx]
        wide = base
        history: dict[str, str] = {}
        for name, plan in plans.items():
            for agg in aggregate_table(plan, prepared[name], pass_dates, idx[0]):
                wide = attach(wide, agg)
            if plan.split:
                history |= {m.name: m.how for m in plan.history}
        long = _unnest_snapshots(wide, spec.measures, [(i, dates[i]) for i in idx], history)
        view = SnapshotView(long, engine, history)
        columns = {f.name: f.compute(view).cast(f.dtype) for f in spec}
        parts.append(long.select("customer_id", "as_of", **columns))
    return parts[0] if len(parts) == 1 else ibis.union(*parts, distinct=False)


def _unnest_snapshots(
    wide: ibis.Table,
    measures: Sequence[Measure],
    snapshots: Sequence[tuple[int, dt.date]],
    history: Mapping[str, str],
) -> ibis.Table:
    """One row per (customer, snapshot) where the customer exists, from the per-customer table.

    Each snapshot's measure columns go into a struct; the array of structs is unnested (DuckDB
    UNNEST, Spark explode), so the wide table is read once whatever the number of snapshots.
    """
    structs = []
    for i, day in snapshots:
        fields: dict[str, ibis.Value] = {
            "as_of": ibis.literal(day, "date"),
            "_active": active_at(wide, day),
            "_day": ibis.literal((day - dt.date(1970, 1, 1)).days, "int64"),
            "_year": ibis.literal(day.year, "int64"),
            "_month_day": ibis.literal(day.month * 100 + day.day, "int64"),
        }
        fields |= {f"_m_{m.name}": wide[f"{m.name}__{i}"] for m in measures}
        structs.append(ibis.struct(fields))
    keep = [c for c in wide.columns if not _PER_SNAPSHOT.fullmatch(c)]
    long = wide.select(*keep, _snapshot=ibis.array(structs).unnest()).unpack("_snapshot")
    return long.filter(long._active)


def _data_range(tables: Mapping[str, ibis.Table]) -> tuple[dt.date, dt.date]:
    return data_range(tables)
