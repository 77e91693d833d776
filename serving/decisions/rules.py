"""The mandatory callback and complaint rules of the source documents (DESIGN.md section 1).

Pure functions over the bank's tables; every moment is UTC (a naive timestamp means UTC, as in
the data contract).

* `WorkingCalendar` - working weekdays minus configured holidays (`policy.working_days`,
  `policy.holidays`); `add_working_days` gives the complaint resolution deadline.
* `complaint_deadlines(opened_at, config)` - first response (24 h), resolution (7 working days)
  and feedback (48 h) deadlines of a complaint, for one moment or a whole column.
* `due_tasks(tables, on, config)` - every policy task open at the start of day `on`: one row per
  (customer, rule, source) with its deadline, overdue flag and a short PII-free detail.
  `due_tasks_from_folder(folder, on, config)` reads only the columns it needs.

Point in time: only events strictly before the start of `on` (00:00 UTC) count, as in the
features; a customer who closed before `on`, or opened on or after it, gets no task.

Rules (`policy` in the config):

* `post_sale`: each product purchase (holdings.opened_at) needs a first callback within
  `first_callback_days`; deadline purchase + that many days. It is settled by a callback with
  reason post_sale done (done_at) after the purchase, or by a held-out post-sale callback due in
  (purchase, purchase + first_callback_days + 1 day] (the purchase's own draw of the randomised
  holdout: the demo records it as outcome "holdout", and the held-out call must not be made,
  or the callback effect could not be measured), or by a post-sale call tried in that window
  and not reached (outcome no_answer or declined, due before `on`: the bank made its attempt
  and its records move on to the next cycle). Several open purchases of one customer are one
  task, at the earliest deadline. An unmade post-sale callback is carried, overdue, until
  `post_sale_lapse_days` after the purchase; then the quarterly follow-up takes its place (the
  demo bank never retries one, and purchases from before the callback records would otherwise
  stay overdue forever).
* `quarterly`: due `quarterly_interval_days` after the latest of the relationship's opening, the
  last reached callback of any reason (done_at), the last held-out post-sale or quarterly
  callback (due_at: a held-out cycle counts as settled), and the last post-sale or quarterly
  call tried and not reached (no_answer or declined, due_at before `on`: the attempt closes the
  cycle, as the bank's own schedule does; callback completion, reached over due, is a KPI);
  listed when that deadline falls on or
  before `on + horizon_days`.
* `complaint_response`: a complaint without first_response_at before `on`; deadline opened_at +
  `complaint_first_response_hours`.
* `complaint_resolution`: a complaint without resolved_at before `on`; deadline
  `complaint_resolution_working_days` working days after opening (`WorkingCalendar`).

A held-out callback row is known from `callback_notice_days` before its due_at (when the task,
and its holdout draw, is created: at the purchase for a post-sale callback, which is due
`first_callback_days` later). The 48-hour complaint feedback call is a deadline of
`complaint_deadlines` but not a task rule here (`serving.scoring.schemas.CallbackRule` has no such
rule).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, get_args

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from keepwell.contract.reading import connect, parse_csv, read_folder
from keepwell.contract.report import ContractError, report
from keepwell.contract.schemas import TABLES
from keepwell.words import CallbackRule
from serving.decisions.calendar import WorkingCalendar

if TYPE_CHECKING:
    from keepwell.config import Config

CALLBACK_RULES: tuple[str, ...] = get_args(CallbackRule)
TASK_COLUMNS = ("customer_id", "rule", "deadline", "overdue", "detail", "source_id")
# the columns of each table that due_tasks reads
NEEDED: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "opened_at", "closed_at"),
    "holdings": ("customer_id", "product_id", "opened_at"),
    "complaints": ("complaint_id", "customer_id", "opened_at", "first_response_at", "resolved_at"),
    "callbacks": ("customer_id", "reason", "due_at", "done_at", "outcome"),
}
TIMESTAMPS = {"opened_at", "closed_at", "first_response_at", "resolved_at", "due_at", "done_at"}
DAY = np.timedelta64(1, "D")


class ComplaintDeadlines(NamedTuple):
    """A complaint's service-level deadlines (UTC)."""

    first_response_due: Any
    resolution_due: Any
    feedback_due: Any


def complaint_deadlines(
    opened_at: Any, config: Config, calendar: WorkingCalendar | None = None
) -> ComplaintDeadlines:
    """First response `complaint_first_response_hours` (24) after opening; resolution
    `complaint_resolution_working_days` (7) working days after it (`add_working_days`, time of
    day per `policy.resolution_due`); feedback `complaint_feedback_hours` (48) after opening.

    The feedback deadline counts from the opening, as the demo bank's 48-hour feedback call
    (callbacks with reason "complaint", due opened_at + 48 h) and the source's "feedback handled
    within 48 hours" do; it is not a resolution follow-up. `opened_at` is one moment (the result
    holds `pd.Timestamp`s) or a column (the result holds UTC `DatetimeIndex`es).
    """
    calendar = calendar or WorkingCalendar.from_config(config)
    policy = config.policy
    scalar = isinstance(opened_at, (dt.datetime, np.datetime64, str))
    opened = pd.DatetimeIndex(
        pd.to_datetime(pd.Series([opened_at] if scalar else opened_at), utc=True)
    )
    resolution = calendar.add_working_days_array(
        opened,
        policy.complaint_resolution_working_days,
        end_of_day=policy.resolution_due == "end_of_day",
    )
    out = ComplaintDeadlines(
        opened + pd.Timedelta(hours=policy.complaint_first_response_hours),
        resolution,
        opened + pd.Timedelta(hours=policy.complaint_feedback_hours),
    )
    return ComplaintDeadlines(*(d[0] for d in out)) if scalar else out


# -- due tasks ---------------------------------------------------------------------------------
def needed_arrow(
    name: str,
    table: Any,
    cols: Sequence[str],
    *,
    timestamps: Collection[str],
    error: type[Exception] = ValueError,
    prefix: str = "",
) -> pa.Table:
    """The `cols` of one input table (Arrow or pandas) as Arrow, the `timestamps` among them as
    naive UTC; an absent column, a column of mixed types or a timestamp column of another type
    is an `error` naming the table and the column (message prefixed with `prefix`). The due
    tasks and the KPI report read their tables through it."""
    present = table.column_names if isinstance(table, pa.Table) else list(table.columns)
    missing = [c for c in cols if c not in present]
    if missing:
        raise error(f"{prefix}table {name} lacks column(s) {missing} (needed: {list(cols)})")
    if isinstance(table, pa.Table):
        out = table.select(list(cols))
    else:
        try:
            out = pa.Table.from_pandas(table.loc[:, list(cols)], preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise error(f"{prefix}table {name} has a column of mixed types: {exc}") from None
    for i, col in enumerate(cols):
        kind = out.schema.field(col).type
        if col not in timestamps:
            continue
        if not (pa.types.is_timestamp(kind) or pa.types.is_null(kind)):
            raise error(f"{prefix}{name}.{col} must be a timestamp, got {kind}")
        # naive UTC inside DuckDB (time-zone-aware arithmetic would cost seconds per million
        # rows); Arrow keeps zoned timestamps as UTC instants, so the cast keeps the moment
        out = out.set_column(i, col, out.column(col).cast(pa.timestamp("us")))
    return out


def _arrow(name: str, table: Any) -> pa.Table:
    return needed_arrow(name, table, NEEDED[name], timestamps=TIMESTAMPS, prefix="due_tasks: ")


_TASKS_SQL = """
WITH live AS (
    SELECT customer_id, opened_at FROM customers
    WHERE opened_at < $on AND (closed_at IS NULL OR closed_at >= $on)
),
history AS (  -- one pass over the callbacks: what is known per customer before on
    SELECT customer_id,
           max(done_at) FILTER (WHERE done_at < $on) AS reached_at,
           max(done_at) FILTER (WHERE done_at < $on AND reason = 'post_sale') AS post_sale_at,
           max(due_at) FILTER (
               WHERE outcome = 'holdout' AND reason IN ('post_sale', 'quarterly')
                 AND due_at < $notice_end
           ) AS held_at,
           max(due_at) FILTER (
               WHERE outcome IN ('no_answer', 'declined') AND reason IN ('post_sale', 'quarterly')
                 AND due_at < $on
           ) AS tried_at
    FROM callbacks GROUP BY customer_id
),
held_post_sale AS (  -- held-out post-sale callbacks, known from callback_notice_days before due,
    SELECT customer_id, due_at FROM callbacks  -- and post-sale calls tried but not reached
    WHERE reason = 'post_sale'
      AND ((outcome = 'holdout' AND due_at < $notice_end)
           OR (outcome IN ('no_answer', 'declined') AND due_at < $on))
),
purchases AS (
    SELECT h.customer_id, h.product_id, h.opened_at
    FROM holdings h SEMI JOIN live USING (customer_id)
    WHERE h.opened_at < $on AND ($lapse_start IS NULL OR h.opened_at > $lapse_start)
),
open_purchases AS (
    SELECT p.* FROM purchases p LEFT JOIN history d USING (customer_id)
    WHERE (d.post_sale_at IS NULL OR d.post_sale_at <= p.opened_at)
      AND NOT EXISTS (
          SELECT 1 FROM held_post_sale x
          WHERE x.customer_id = p.customer_id
            AND x.due_at > p.opened_at AND x.due_at <= p.opened_at + to_days($first + 1)
      )
),
post_sale AS (
    SELECT customer_id, 'post_sale' AS rule,
           min(opened_at) + to_days($first) AS deadline,
           'product opened ' || strftime(min(opened_at), '%Y-%m-%d')
               || CASE WHEN count(*) > 1
                       THEN ' (' || count(*) || ' products awaiting a first callback)'
                       ELSE '' END AS detail,
           arg_min(product_id, (opened_at, product_id)) AS source_id
    FROM open_purchases GROUP BY customer_id
),
anchors AS (
    SELECT l.customer_id, l.opened_at, h.reached_at, h.held_at, h.tried_at,
           greatest(l.opened_at, coalesce(h.reached_at, l.opened_at),
                    coalesce(h.held_at, l.opened_at), coalesce(h.tried_at, l.opened_at)) AS base
    FROM live l LEFT JOIN history h USING (customer_id)
),
quarterly AS (
    SELECT customer_id, 'quarterly' AS rule, base + to_days($quarter) AS deadline,
           CASE WHEN base = reached_at
                THEN 'last reached callback ' || strftime(base, '%Y-%m-%d')
                WHEN base = held_at
                THEN 'last policy callback held out, due ' || strftime(base, '%Y-%m-%d')
                WHEN base = tried_at
                THEN 'last policy callback tried, not reached, due ' || strftime(base, '%Y-%m-%d')
                ELSE 'no callback since the relationship began ' || strftime(base, '%Y-%m-%d')
           END AS detail,
           NULL::VARCHAR AS source_id
    FROM anchors WHERE base < $quarterly_before
),
open_complaints AS (
    SELECT c.* FROM complaints c SEMI JOIN live USING (customer_id)
    WHERE c.opened_at < $on
      AND (c.first_response_at IS NULL OR c.first_response_at >= $on
           OR c.resolved_at IS NULL OR c.resolved_at >= $on)
)
SELECT * FROM post_sale
UNION ALL SELECT * FROM quarterly
UNION ALL
SELECT customer_id, 'complaint_response', opened_at + to_hours($response_hours),
       'complaint opened ' || strftime(opened_at, '%Y-%m-%d %H:%M') || ', no first response',
       complaint_id
FROM open_complaints WHERE first_response_at IS NULL OR first_response_at >= $on
UNION ALL
SELECT c.customer_id, 'complaint_resolution',
       CASE WHEN $end_of_day
            THEN date_trunc('day', c.opened_at) + to_days(w.days + 1)
            ELSE c.opened_at + to_days(w.days) END,
       'complaint opened ' || strftime(c.opened_at, '%Y-%m-%d %H:%M') || ', not resolved',
       c.complaint_id
FROM open_complaints c JOIN working_offsets w ON w.day = CAST(c.opened_at AS DATE)
WHERE c.resolved_at IS NULL OR c.resolved_at >= $on
"""

_ORDERED_SQL = """
SELECT customer_id, rule, deadline, deadline < $on AS overdue, detail, source_id
FROM ({tasks})
ORDER BY deadline, customer_id, rule, source_id NULLS FIRST
"""


def _start_of(on: dt.date) -> pd.Timestamp:
    if isinstance(on, dt.datetime):
        raise TypeError(f"on must be a date, got the datetime {on}")
    return pd.Timestamp(on).tz_localize("UTC")


def due_tasks(
    tables: Mapping[str, Any],
    on: dt.date,
    config: Config,
    calendar: WorkingCalendar | None = None,
    *,
    horizon_days: int = 0,
) -> pd.DataFrame:
    """Every policy task open at the start of `on` (see the module docstring for the rules).

    `tables`: customers, holdings, complaints and callbacks as pandas frames (or Arrow tables)
    with the data contract's columns; other columns are ignored. `horizon_days` lists quarterly
    follow-ups due up to that many days after `on` as well.

    Returns one row per task, columns `TASK_COLUMNS`: customer_id, rule (`CALLBACK_RULES`),
    deadline (UTC), overdue (deadline before the start of `on`), detail (dates only, no PII),
    source_id (product_id of the earliest open purchase, complaint_id, or null for quarterly),
    ordered by deadline, customer_id, rule and source_id. Runs in DuckDB over the frames.
    """
    if horizon_days < 0:
        raise ValueError(f"horizon_days must be 0 or more, got {horizon_days}")
    missing = [name for name in NEEDED if name not in tables]
    if missing:
        raise ValueError(f"due_tasks: missing table(s) {missing}")
    calendar = calendar or WorkingCalendar.from_config(config)
    start = _start_of(on)
    inputs = {name: _arrow(name, tables[name]) for name in NEEDED}
    oldest = pc.min(inputs["complaints"]["opened_at"]).as_py()
    first_day = start.date() if oldest is None else min(oldest.date(), start.date())
    offsets = calendar.offsets(
        first_day, start.date(), config.policy.complaint_resolution_working_days
    )
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        for name, table in inputs.items():
            con.register(name, table)
        con.register("working_offsets", offsets)
        sql = _ORDERED_SQL.format(tasks=_TASKS_SQL)
        found = con.execute(sql, _params(start, horizon_days, config)).to_arrow_table()
    finally:
        con.close()
    tasks = found.to_pandas()
    tasks["deadline"] = tasks["deadline"].dt.tz_localize("UTC")
    return tasks


def _params(start: pd.Timestamp, horizon_days: int, config: Config) -> dict[str, Any]:
    """The SQL's parameters: moments as naive UTC, durations in days or hours."""

    def naive(moment: pd.Timestamp) -> dt.datetime:
        return moment.tz_localize(None).to_pydatetime()

    policy, days = config.policy, pd.Timedelta(days=1)
    lapse = policy.post_sale_lapse_days
    return {
        "on": naive(start),
        "notice_end": naive(start + policy.callback_notice_days * days),
        "lapse_start": None if lapse is None else naive(start - lapse * days),
        # quarterly: listed when base + interval < start of (on + horizon + 1)
        "quarterly_before": naive(
            start + (horizon_days + 1 - policy.quarterly_interval_days) * days
        ),
        "first": policy.first_callback_days,
        "quarter": policy.quarterly_interval_days,
        "response_hours": policy.complaint_first_response_hours,
        "end_of_day": policy.resolution_due == "end_of_day",
    }


def due_tasks_from_folder(
    folder: Path | str,
    on: dt.date,
    config: Config,
    calendar: WorkingCalendar | None = None,
    *,
    horizon_days: int = 0,
) -> pd.DataFrame:
    """`due_tasks` on a bank folder, reading only the columns the rules need: Parquet files (or
    folders of parts) straight into Arrow, CSV files through the contract's typed reader."""
    tables = read_tables(folder, NEEDED, purpose="due_tasks")
    return due_tasks(tables, on, config, calendar, horizon_days=horizon_days)


def read_tables(
    folder: Path | str, needed: Mapping[str, tuple[str, ...]], *, purpose: str
) -> dict[str, pa.Table]:
    """The `needed` columns of each named table of a bank folder, as Arrow tables: Parquet files
    (or folders of parts) read straight into Arrow, CSV files through the contract's typed reader.
    A missing table or column is a `ValueError` naming it (prefixed with `purpose`)."""

    con = connect()
    try:
        found = read_folder(folder, con)
        if found.problems:
            raise ContractError(report(found.problems, notes=found.notes, source=str(folder)))
        missing = [name for name in needed if name not in found.sources]
        if missing:
            raise ValueError(f"{purpose}: {folder} has no table(s) {missing}")
        tables: dict[str, pa.Table] = {}
        for name, columns in needed.items():
            source = found.sources[name]
            absent = [c for c in columns if c not in source.raw.columns]
            if absent:
                raise ValueError(f"{purpose}: table {name} lacks column(s) {absent}")
            if source.format == "parquet":
                tables[name] = pq.read_table(source.path, columns=list(columns))
            else:
                typed = parse_csv(source.raw, TABLES[name], strict=True)
                tables[name] = typed.select(*columns).to_pyarrow()
    finally:
        con.disconnect()
    return tables


def first_task_per_customer(tasks: pd.DataFrame) -> pd.DataFrame:
    """One row per customer of `due_tasks`' output: its most urgent task (earliest deadline),
    plus `rules` (every rule due, most urgent first, comma-separated) and `task_count`; indexed
    by customer_id. What the scoring API reports as callback_due / callback_rule."""
    ordered = tasks.sort_values(["deadline", "rule", "source_id"], kind="stable")
    first = ordered.drop_duplicates("customer_id").set_index("customer_id")
    unique_rules = ordered.drop_duplicates(["customer_id", "rule"])
    grouped = unique_rules.groupby("customer_id", sort=False)["rule"]
    first["rules"] = grouped.agg(",".join).reindex(first.index)
    first["task_count"] = ordered.groupby("customer_id", sort=False).size().reindex(first.index)
    return first
