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
import pyarrow as pa

from reporting.kpi.counts import UNKNOWN, Counts, Groups, counts, tally
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
from serving.decisions.calendar import WorkingCalendar
from serving.decisions.rules import complaint_deadlines, needed_arrow
from serving.records.outcomes import DONE_OUTCOMES

if TYPE_CHECKING:
    from keepwell.config import Config

NEEDED: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "segment", "rm_id", "branch_id", "opened_at", "closed_at"),
    "complaints": ("customer_id", "opened_at", "first_response_at", "resolved_at"),
    "callbacks": ("customer_id", "reason", "due_at", "done_at", "outcome", "satisfaction"),
}
TIMESTAMPS = {"opened_at", "closed_at", "first_response_at", "resolved_at", "due_at", "done_at"}
LIST_COLUMNS = ("task_id", "list_date", "rm_id", "branch_id", "segment")
POLICY_REASONS = ("post_sale", "quarterly", "complaint", "risk")


# -- input tables ----------------------------------------------------------------------------
def _frame(name: str, table: Any) -> pd.DataFrame:
    """The needed columns of a table as pandas; timestamps as naive UTC datetime64[us]."""
    out = needed_arrow(name, table, NEEDED[name], timestamps=TIMESTAMPS, error=KpiError)
    if "satisfaction" in out.column_names:
        kind = out.schema.field("satisfaction").type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)):
            raise KpiError(f"{name}.satisfaction must be a number (a 1-5 score), got {kind}")
    return out.to_pandas()


def _ts(series: pd.Series) -> np.ndarray:
    return series.to_numpy("datetime64[us]")


def _utc_naive(moment: dt.datetime) -> np.datetime64:
    ts = pd.Timestamp(moment)
    ts = ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts
    return np.datetime64(ts.to_datetime64(), "us")


def _data_range(frames: dict[str, pd.DataFrame]) -> tuple[np.datetime64, np.datetime64]:
    """First event (complaint opened, callback due; else a customer opened) and last recorded
    moment (an opening, closing, response, resolution or callback done)."""
    firsts = [_ts(frames["complaints"]["opened_at"]), _ts(frames["callbacks"]["due_at"])]
    lasts = [_ts(frames["customers"][c]) for c in ("opened_at", "closed_at")]
    lasts += [_ts(frames["complaints"][c]) for c in NEEDED["complaints"][1:]]
    lasts.append(_ts(frames["callbacks"]["done_at"]))

    def bound(arrays: list[np.ndarray], pick) -> np.datetime64 | None:
        values = [pick(a[~np.isnat(a)]) for a in arrays if (~np.isnat(a)).any()]
        return pick(np.array(values)) if values else None

    first = bound(firsts, np.min)
    if first is None:
        first = bound([_ts(frames["customers"]["opened_at"])], np.min)
    last = bound(lasts, np.max)
    if first is None or last is None:
        raise KpiError("the tables hold no dated events (customers, complaints, callbacks)")
    return first, last


# -- the metrics -----------------------------------------------------------------------------
def _rates(frames, months: MonthIndex, groups: Groups, span) -> dict[str, Counts]:
    """Complaint and churn rates; a month outside the data's `span` (first, last moment)
    counts no one: its customers could neither complain nor leave in the data."""
    customers = frames["customers"]
    opened, closed = _ts(customers["opened_at"]), _ts(customers["closed_at"])
    codes = groups.customer_codes
    shape = {"overall": (len(months), 1)} | {
        d: (len(months), len(lab)) for d, lab in groups.labels.items()
    }
    active = {d: np.zeros(s, np.int64) for d, s in shape.items()}
    closing = {d: np.zeros(s, np.int64) for d, s in shape.items()}
    for i, m in enumerate(months.months):
        ms, me = np.datetime64(m.start, "us"), np.datetime64(m.end, "us")
        if me <= span[0] or ms > span[1]:
            continue
        live = (opened < ms) & (np.isnat(closed) | (closed >= ms))
        gone = live & (closed < me)
        for target, mask in ((active, live), (closing, gone)):
            target["overall"][i, 0] = mask.sum()
            for dim, lab in groups.labels.items():
                target[dim][i] = np.bincount(codes[dim][mask], minlength=len(lab))
    complaints = frames["complaints"]
    month = months.index(_ts(complaints["opened_at"]))
    pairs = pd.DataFrame({"customer_id": complaints["customer_id"], "month": month})
    first = ~pairs.duplicated().to_numpy()  # a customer's first complaint of each month
    complained = tally(months, groups, month, groups.by_table["complaints"], first)
    zero = {d: np.zeros_like(a) for d, a in active.items()}
    return {
        "complaint_rate": Counts(complained, active, zero),
        "churn_rate": Counts(closing, active, zero),
    }


def _complaint_sla(frames, months, groups, data_end, config, calendar) -> dict[str, Counts]:
    complaints = frames["complaints"]
    opened = _ts(complaints["opened_at"])
    month = months.index(opened)
    codes = groups.by_table["complaints"]
    response_due = opened + np.timedelta64(config.policy.complaint_first_response_hours, "h")
    deadlines = complaint_deadlines(pd.Series(opened), config, calendar)
    resolution_due = deadlines.resolution_due.tz_convert(None).to_numpy("datetime64[us]")
    out = {}
    for name, done_at, due in (
        ("complaint_first_response", _ts(complaints["first_response_at"]), response_due),
        ("complaint_resolution", _ts(complaints["resolved_at"]), resolution_due),
    ):
        done = ~np.isnat(done_at)
        pending = ~done & (due >= data_end)
        out[name] = counts(months, groups, month, codes, done & (done_at <= due), ~pending,
                            pending)  # fmt: skip
    return out


def _callback_flags(callbacks: pd.DataFrame, data_end: np.datetime64) -> dict[str, np.ndarray]:
    """Per callback: counted (a policy callback, not held out), held (held out), completed,
    pending (counted, not completed, due at or after the data's end), silent (no outcome)."""
    outcome = callbacks["outcome"]
    due, done_at = _ts(callbacks["due_at"]), _ts(callbacks["done_at"])
    held = outcome.isin(["holdout"]).to_numpy(bool)
    counted = callbacks["reason"].isin(POLICY_REASONS).to_numpy(bool) & ~held
    completed = outcome.isin(DONE_OUTCOMES).to_numpy(bool) | ~np.isnat(done_at)
    silent = outcome.isna().to_numpy(bool) & np.isnat(done_at)
    pending = counted & ~completed & (due >= data_end)
    return {"counted": counted, "held": held, "completed": completed, "pending": pending,
            "silent": silent}  # fmt: skip


def _callbacks(frames, months, groups, data_end, config) -> dict[str, Counts]:
    callbacks = frames["callbacks"]
    codes = groups.by_table["callbacks"]
    flag = _callback_flags(callbacks, data_end)
    score = callbacks["satisfaction"].to_numpy("float64", na_value=np.nan)
    surveyed = ~np.isnan(score)
    satisfied = surveyed & (score >= config.kpi.targets.satisfied_from)
    return {
        "callback_completion": counts(months, groups, months.index(_ts(callbacks["due_at"])),
                                       codes, flag["completed"],
                                       flag["counted"] & ~flag["pending"], flag["pending"]),
        "satisfaction": counts(months, groups, months.index(_ts(callbacks["done_at"])), codes,
                                satisfied, surveyed),
    }  # fmt: skip


def _list_completion(lists, outcomes, months, groups, relist_days: int) -> Counts:
    """Tasks of the daily lists done (latest outcome reached or declined), one count per task.

    A task not done that is listed again for the same customer within `relist_days` (carried over,
    or a mandatory callback still due) is the same task: only its last listing counts, in the
    month of that listing, so a call made on the third day of a carried task is one task done,
    not one done and two missed."""
    lists = lists if lists is not None else pd.DataFrame(columns=list(LIST_COLUMNS))
    lists = lists.reset_index(drop=True)  # rows are aligned by index below
    done = pd.Series(False, index=lists.index)
    if outcomes is not None and len(outcomes) and len(lists):
        latest = outcomes.drop_duplicates("task_id", keep="last").set_index("task_id")["done"]
        done = lists["task_id"].map(latest).fillna(False).astype(bool)
    day = pd.to_datetime(lists["list_date"])
    task = lists["task_id"].astype(str)
    customer = task.str.split(":", n=1).str[1].fillna(task)  # a malformed id is its own task
    by_customer = pd.DataFrame({"customer": customer, "day": day}).sort_values(
        ["customer", "day"], kind="stable"
    )
    gap = (by_customer.groupby("customer")["day"].shift(-1) - by_customer["day"]).dt.days
    superseded = (gap.le(relist_days) & ~done.reindex(by_customer.index)).reindex(lists.index)
    keep = ~superseded.to_numpy()
    kept = lists[keep]
    when = day[keep].to_numpy("datetime64[us]")
    return counts(months, groups, months.index(when), groups.codes(kept), done[keep].to_numpy(),
                   np.ones(len(kept), bool))  # fmt: skip


def _all_counts(frames, months, groups, span, config, calendar, lists, outcomes):
    data_end = span[1]
    return {
        **_callbacks(frames, months, groups, data_end, config),
        "list_completion": _list_completion(
            lists, outcomes, months, groups, config.planner.carry_over_days
        ),
        **_complaint_sla(frames, months, groups, data_end, config, calendar),
        **_rates(frames, months, groups, span),
    }


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
    for name, day in (("start", start), ("end", end)):
        if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
            raise KpiError(f"{name} must be a date, got {day!r}")
    if start >= end:
        raise KpiError(f"the period is empty: from {start} must be before to {end}")
    missing = [name for name in NEEDED if name not in tables]
    if missing:
        raise KpiError(f"missing table(s) {missing} (needed: {list(NEEDED)})")
    for what, frame, needed in (("daily lists", lists, LIST_COLUMNS),
                                ("outcomes", outcomes, ("task_id", "done"))):  # fmt: skip
        absent = [] if frame is None else [c for c in needed if c not in frame.columns]
        if absent:
            raise KpiError(f"the {what} lack column(s) {absent}")
    frames = {name: _frame(name, tables[name]) for name in NEEDED}
    first, last = _data_range(frames)
    if data_end is not None:
        last = _utc_naive(data_end)
    first_day, last_day = first.astype("datetime64[D]").item(), last.astype("datetime64[D]").item()
    if end <= first_day or start > last_day:
        raise KpiError(
            f"the period {start} to {end} (exclusive) has no data: the data cover {first_day} "
            f"to {last_day}"
        )
    calendar = WorkingCalendar.from_config(config)
    months = MonthIndex(calendar_months(start, end))
    groups = Groups(frames, lists)
    counts = _all_counts(frames, months, groups, (first, last), config, calendar, lists,
                         outcomes)  # fmt: skip
    prior_start, prior_end, by_month = prior_period(start, end)
    prior = None
    if prior_start >= first_day:
        prior_months = MonthIndex(calendar_months(prior_start, prior_end))
        prior = _rates(frames, prior_months, groups, (first, last))
    targets = kpi_targets(config)

    def metrics(dim: str) -> list[tuple[dict[str, Metric], dict[str, list[Metric]]]]:
        views = {n: _split(counts[n], dim) for n in METRICS}
        old = {n: _split(prior[n], dim) for n in RATES} if prior is not None else {}
        out = []
        for group in range(len(views[METRICS[0]]["den"][1])):
            built = {n: _group_metrics(views[n], old.get(n), targets[n], group, by_month)
                     for n in METRICS}  # fmt: skip
            out.append(({n: p for n, (p, _) in built.items()},
                        {n: m for n, (_, m) in built.items()}))  # fmt: skip
        return out

    ((overall, monthly),) = metrics("overall")
    breakdowns: dict[str, list[GroupKpis]] = {}
    for dim, labels in groups.labels.items():
        used = sum(c.den[dim].sum(axis=0) + c.num[dim].sum(axis=0) + c.excluded[dim].sum(axis=0)
                   for c in counts.values())  # fmt: skip
        breakdowns[dim] = [
            GroupKpis(dim, str(label), *built,
                      branch_id=groups.rm_branch.get(str(label)) if dim == "rm" else None)
            for label, built, n in zip(labels, metrics(dim), used, strict=True) if n > 0
        ]  # fmt: skip
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
        overall, monthly, breakdowns, lists_info,
    )  # fmt: skip
    report.notes.extend(_notes(report, frames, groups, prior_start, first_day, last_day))
    return report


def _moment(value: np.datetime64) -> dt.datetime:
    return pd.Timestamp(value).tz_localize("UTC").to_pydatetime()


def _notes(report: KpiReport, frames, groups: Groups, prior_start, first_day, last_day):
    notes = [f"Data cover {first_day} to {last_day} (UTC)."]
    if report.prior is None:
        notes.append(
            f"No prior period: it would begin {prior_start}, before the data begin "
            f"{first_day}; complaint and churn rates are not compared."
        )
    else:
        how = "month by month and over the period" if report.prior_by_month else "over the period"
        notes.append(
            f"Prior period {report.prior[0]} to {report.prior[1]}: complaint and churn rates "
            f"compared {how}."
        )
    empty = "partial or empty (a month without data counts no one in the rates)"
    if last_day < report.end - dt.timedelta(days=1):
        notes.append(f"The data end {last_day}, before the period ends: later months are {empty}.")
    if report.start < first_day:
        notes.append(f"The data begin {first_day}, after the period begins: earlier months are "
                     f"{empty}.")  # fmt: skip
    k = report.overall
    for name, what in (
        ("complaint_first_response", "unanswered complaint(s) still within the first-response"),
        ("complaint_resolution", "unresolved complaint(s) still within the resolution"),
        ("callback_completion", "open callback(s) not yet due"),
    ):
        if k[name].excluded:
            suffix = " deadline" if name != "callback_completion" else ""
            notes.append(f"{k[name].excluded} {what}{suffix} at the data's end: excluded from "
                         f"{name}.")  # fmt: skip
    callbacks = frames["callbacks"]
    flag = _callback_flags(callbacks, _utc_naive(report.data_end))
    due = _ts(callbacks["due_at"])
    in_period = (due >= np.datetime64(report.start, "us")) & (due < np.datetime64(report.end, "us"))
    held = int((flag["held"] & in_period).sum())
    if held:
        notes.append(f"{held} held-out callback(s) (randomised, not made on purpose) are "
                     "excluded from callback_completion.")  # fmt: skip
    late = int((flag["counted"] & flag["silent"] & ~flag["pending"] & in_period).sum())
    if late:
        notes.append(f"{late} callback(s) due before the data's end have no outcome recorded "
                     "yet: counted as not completed (overdue).")  # fmt: skip
    unknown = sum(groups.unknown.values())
    if unknown:
        notes.append(f"{unknown} complaint or callback row(s) name a customer missing from the "
                     f"customers table: counted overall and under {UNKNOWN!r}.")  # fmt: skip
    if not report.lists["available"]:
        notes.append("No daily lists for the period: list completion (tasks listed on the RM "
                     "page) is not available.")  # fmt: skip
    return notes
