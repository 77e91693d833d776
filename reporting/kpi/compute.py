"""The KPIs of the source documents (DESIGN.md section 1), computed from the bank's tables and
the outcomes recorded on the RM page, per calendar month of a period [start, end), overall and
by branch, RM and segment. Pure functions; `load_kpi_inputs` is the one that reads files.

Every KPI is a `Metric`: numerator, denominator, value (numerator / denominator; None when the
denominator is 0), target, met (None when there is no value), `excluded` (rows left out because
their outcome cannot be known yet at the data's end) and, for the two rates, the prior period's
counts and the relative change. A share is met when value >= target, a change when change <=
target (both up to 1e-9, so that exactly -20 % meets -20 %). Timestamps are UTC.

* `callback_completion` - policy callbacks (reason post_sale, quarterly, complaint, risk) due in
  the month, except the randomised hold-out (outcome "holdout", calls deliberately not made):
  completed when the outcome is reached or declined or done_at is set. One not completed and not
  yet due at the data's end is excluded; one due before it without an outcome is a miss.
* `list_completion` - tasks of the daily lists (`<workspace>/<paths.lists>/<date>/<rm_id>.parquet`)
  listed in the month, done when their latest outcome (`serving.records.outcomes`) is reached or
  declined; by the list's own RM, branch and segment. 0 / 0 when there are no lists.
* `complaint_first_response` - complaints opened in the month answered within
  `policy.complaint_first_response_hours`; unanswered with the deadline passed by the data's end
  is a breach, unanswered and still within it is excluded.
* `complaint_resolution` - the same for resolution within the working-day deadline of
  `serving.decisions.rules.complaint_deadlines` (weekends and configured holidays).
* `complaint_rate` - customers with at least one complaint opened in the month / customers
  active at its start (opened before it, not closed before it). Over the period: the sum of the
  monthly numerators over the sum of the monthly denominators (customer-months).
* `churn_rate` - customers active at the month's start whose relationship closed in the month /
  active at its start; over the period pooled the same way.
* `satisfaction` - surveys (callbacks.satisfaction set, done_at in the month) scoring at least
  `kpi.targets.satisfied_from`.

The two rates are compared with the prior period of the same length just before `start` (the
same number of calendar months when start and end are first days of months, month by month as
well; otherwise the same number of days), when the data begin on or before its start: change =
(current - prior) / prior, met when change <= `complaint_rate_change` / `churn_rate_change`.
Customers' branch, RM and segment are those of the customers table (a snapshot); events of a
customer missing from it count overall and under "(unknown)".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from reporting.kpi.counts import Counts, Groups
from reporting.kpi.metrics import all_counts, rates
from reporting.kpi.model import (
    METRICS,
    RATES,
    GroupKpis,
    KpiError,
    KpiReport,
    Metric,
    MonthIndex,
    calendar_months,
    kpi_targets,
    prior_period,
)
from reporting.kpi.notes import notes
from reporting.kpi.tables import LIST_COLUMNS, NEEDED, data_range, frame, utc_naive
from serving.decisions.calendar import WorkingCalendar

if TYPE_CHECKING:
    from keepwell.config import Config

__all__ = ["LIST_COLUMNS", "NEEDED", "compute_kpis"]  # the inputs' columns are part of the API


def _split(counts: Counts, dim: str) -> dict[str, tuple[list, list]]:
    """Per part (num, den, excluded): per group its monthly counts and its period total."""
    return {part: (table.T.tolist(), table.sum(axis=0).tolist())
            for part in ("num", "den", "excluded")
            for table in [getattr(counts, part)[dim]]}  # fmt: skip


def _group_metrics(current, prior, target, group: int, by_month: bool):
    """(period Metric, monthly Metrics) of one group from `_split` views; `prior` (the rates)
    gives each its prior counts (per month only when the periods align `by_month`)."""
    (num, num_t), (den, den_t), (exc, exc_t) = current.values()
    old_period = old_months = None
    if prior is not None:
        (old_num, old_num_t), (old_den, old_den_t) = prior["num"], prior["den"]
        old_period = Metric(old_num_t[group], old_den_t[group], None)
        if by_month:
            old_months = [Metric(n, d, None) for n, d in zip(old_num[group], old_den[group],
                                                              strict=True)]  # fmt: skip
    period = Metric(num_t[group], den_t[group], *target, exc_t[group], old_period)
    monthly = [Metric(n, d, *target, e, None if old_months is None else old_months[i])
               for i, (n, d, e) in enumerate(zip(num[group], den[group], exc[group],
                                                 strict=True))]  # fmt: skip
    return period, monthly


def _check_arguments(tables, start, end, lists, outcomes) -> None:
    for name, day in (("start", start), ("end", end)):
        if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
            raise KpiError(f"{name} must be a date, got {day!r}")
    if start >= end:
        raise KpiError(f"the period is empty: from {start} must be before to {end}")
    missing = [name for name in NEEDED if name not in tables]
    if missing:
        raise KpiError(f"missing table(s) {missing} (needed: {list(NEEDED)})")
    for what, table, needed in (("daily lists", lists, LIST_COLUMNS),
                                ("outcomes", outcomes, ("task_id", "done"))):  # fmt: skip
        absent = [] if table is None else [c for c in needed if c not in table.columns]
        if absent:
            raise KpiError(f"the {what} lack column(s) {absent}")


def _group_kpis(counts, prior, targets, by_month: bool, dim: str):
    """Per group of `dim`: (period metrics, monthly metrics) of every KPI."""
    views = {n: _split(counts[n], dim) for n in METRICS}
    old = {n: _split(prior[n], dim) for n in RATES} if prior is not None else {}
    out = []
    for group in range(len(views[METRICS[0]]["den"][1])):
        built = {n: _group_metrics(views[n], old.get(n), targets[n], group, by_month)
                 for n in METRICS}  # fmt: skip
        out.append(({n: p for n, (p, _) in built.items()},
                    {n: m for n, (_, m) in built.items()}))  # fmt: skip
    return out


def _breakdowns(counts, prior, targets, by_month: bool, groups: Groups) -> dict[str, list]:
    """The KPIs by branch, RM and segment: the groups with any row counted."""
    breakdowns: dict[str, list[GroupKpis]] = {}
    for dim, labels in groups.labels.items():
        used = sum(c.den[dim].sum(axis=0) + c.num[dim].sum(axis=0) + c.excluded[dim].sum(axis=0)
                   for c in counts.values())  # fmt: skip
        breakdowns[dim] = [
            GroupKpis(dim, str(label), *built,
                      branch_id=groups.rm_branch.get(str(label)) if dim == "rm" else None)
            for label, built, n in zip(labels, _group_kpis(counts, prior, targets, by_month, dim),
                                       used, strict=True) if n > 0
        ]  # fmt: skip
    return breakdowns


def compute_kpis(
    tables: Mapping[str, Any],
    start: dt.date,
    end: dt.date,
    config: Config,
    *,
    outcomes: pd.DataFrame | None = None,
    lists: pd.DataFrame | None = None,
    data_end: dt.datetime | None = None,
) -> KpiReport:
    """The KPIs of [start, end) (see the module docstring) from customers, complaints and
    callbacks (pandas frames or Arrow tables with the contract's columns), the rows of the daily
    lists (`LIST_COLUMNS`; None: no lists) and `OutcomeStore.latest()` (task_id, done).
    `data_end` (default: the last recorded moment in the tables) decides what is still pending.
    """
    _check_arguments(tables, start, end, lists, outcomes)
    frames = {name: frame(name, tables[name]) for name in NEEDED}
    first, last = data_range(frames)
    if data_end is not None:
        last = utc_naive(data_end)
    first_day, last_day = first.astype("datetime64[D]").item(), last.astype("datetime64[D]").item()
    if end <= first_day or start > last_day:
        raise KpiError(
            f"the period {start} to {end} (exclusive) has no data: the data cover {first_day} "
            f"to {last_day}"
        )
    calendar = WorkingCalendar.from_config(config)
    months = MonthIndex(calendar_months(start, end))
    groups = Groups(frames, lists)
    counts = all_counts(frames, months, groups, (first, last), config, calendar, lists,
                        outcomes)  # fmt: skip
    prior_start, prior_end, by_month = prior_period(start, end)
    prior = None
    if prior_start >= first_day:
        prior_months = MonthIndex(calendar_months(prior_start, prior_end))
        prior = rates(frames, prior_months, groups, (first, last))
    targets = kpi_targets(config)
    ((overall, monthly),) = _group_kpis(counts, prior, targets, by_month, "overall")
    lists_info = {
        "available": lists is not None,
        "list_dates": 0 if lists is None else int(pd.Series(lists["list_date"]).nunique()),
        "tasks": 0 if lists is None else len(lists),
    }
    report = KpiReport(
        start, end, (prior_start, prior_end) if prior is not None else None,
        by_month and prior is not None, _moment(first), _moment(last), months.months,
        {name: t for name, (t, _) in targets.items()} | {
            "satisfied_from": config.kpi.targets.satisfied_from},
        overall, monthly, _breakdowns(counts, prior, targets, by_month, groups), lists_info,
    )  # fmt: skip
    report.notes.extend(notes(report, frames, groups, prior_start, first_day, last_day))
    return report


def _moment(value: np.datetime64) -> dt.datetime:
    return pd.Timestamp(value).tz_localize("UTC").to_pydatetime()
