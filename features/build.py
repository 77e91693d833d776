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
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import ibis

from features.dates import normalize_dates
from features.definitions import prepare_tables
from features.families.common import Params
from features.passes import plan_passes
from features.ranges import check_as_of_range, data_range
from features.slots import TablePlan, aggregate_table, literal_like
from features.spec import BASE_INPUTS, FeatureSpec, Measure
from features.view import SnapshotView, engine_name
from keepwell.contract import timing

if TYPE_CHECKING:
    from keepwell.config import Config

_PER_SNAPSHOT = re.compile(r".+__\d+")


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
    plans = {t: TablePlan.of(t, ms) for t, ms in by_table.items()}
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
