"""The KPI report's data: `Metric` (counts, value, target, met, prior and change), `Month`,
`GroupKpis` and `KpiReport` with its JSON form (`to_dict`, schema in `reporting.kpi.report`); the
period helpers `calendar_months`, `prior_period` and `MonthIndex`; `kpi_targets` from the config.
Computed by `reporting.kpi.compute.compute_kpis`; the definitions are in `reporting.kpi.compute`'s
docstring.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from keepwell.config import Config

METRICS = ("callback_completion", "list_completion", "complaint_first_response",
           "complaint_resolution", "complaint_rate", "churn_rate", "satisfaction")  # fmt: skip
RATES = ("complaint_rate", "churn_rate")  # compared with the prior period (a change target)
TOLERANCE = 1e-9  # met up to rounding: exactly -20 % meets a -20 % target


class KpiError(ValueError):
    """The KPIs cannot be computed; the message names the period, table or column at fault."""


@dataclass(frozen=True)
class Metric:
    numerator: int
    denominator: int
    target: float | None
    target_kind: str = "min_share"  # min_share: value >= target; max_change: change <= target
    excluded: int = 0
    prior: Metric | None = None  # the rates: the prior period's (or month's) counts

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    @property
    def change(self) -> float | None:
        cur, old = self.value, self.prior.value if self.prior else None
        return None if cur is None or not old else (cur - old) / old

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        if self.target_kind == "max_change":
            change = self.change
            return None if change is None else change <= self.target + TOLERANCE
        value = self.value
        return None if value is None else value >= self.target - TOLERANCE

    def to_dict(self) -> dict[str, Any]:
        prior = self.prior
        return {
            "numerator": self.numerator, "denominator": self.denominator, "value": self.value,
            "target": self.target, "met": self.met, "excluded": self.excluded,
            "prior": None if prior is None else {
                "numerator": prior.numerator, "denominator": prior.denominator,
                "value": prior.value},
            "change": self.change,
        }  # fmt: skip


@dataclass(frozen=True)
class Month:
    label: str  # YYYY-MM
    start: dt.date
    end: dt.date  # exclusive


@dataclass(frozen=True)
class GroupKpis:
    dimension: str
    group: str
    period: dict[str, Metric]
    monthly: dict[str, list[Metric]]
    branch_id: str | None = None  # an RM's branch


@dataclass(frozen=True)
class KpiReport:
    start: dt.date
    end: dt.date
    prior: tuple[dt.date, dt.date] | None
    prior_by_month: bool
    data_start: dt.datetime
    data_end: dt.datetime
    months: tuple[Month, ...]
    targets: dict[str, float]
    overall: dict[str, Metric]
    monthly: dict[str, list[Metric]]
    breakdowns: dict[str, list[GroupKpis]]
    lists: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of `reporting.kpi.report` (schema in its docstring)."""

        def series(metrics: dict[str, list[Metric]]) -> dict[str, list[dict]]:
            return {name: [{"month": m.label, **x.to_dict()} for m, x in zip(self.months, xs,
                    strict=True)] for name, xs in metrics.items()}  # fmt: skip

        def stamp(moment: dt.datetime) -> str:
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

        return {
            "schema": "keepwell.kpi/1",
            "period": {"from": self.start.isoformat(), "to": self.end.isoformat(),
                       "months": [{"month": m.label, "from": m.start.isoformat(),
                                   "to": m.end.isoformat()} for m in self.months]},
            "prior_period": None if self.prior is None else {
                "from": self.prior[0].isoformat(), "to": self.prior[1].isoformat(),
                "month_by_month": self.prior_by_month},
            "data": {"from": stamp(self.data_start), "to": stamp(self.data_end)},
            "targets": dict(self.targets),
            "kpis": {name: m.to_dict() for name, m in self.overall.items()},
            "monthly": series(self.monthly),
            "breakdowns": {dim: [{"group": g.group, **({"branch_id": g.branch_id}
                                  if dim == "rm" else {}),
                                  "kpis": {n: m.to_dict() for n, m in g.period.items()},
                                  "monthly": series(g.monthly)} for g in groups]
                           for dim, groups in self.breakdowns.items()},
            "lists": dict(self.lists),
            "notes": list(self.notes),
        }  # fmt: skip


def calendar_months(start: dt.date, end: dt.date) -> tuple[Month, ...]:
    """The calendar months of [start, end); the first and last may be partial."""
    months, day = [], start
    while day < end:
        following = dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)
        months.append(Month(f"{day:%Y-%m}", day, min(following, end)))
        day = following
    return tuple(months)


def prior_period(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date, bool]:
    """The period of the same length just before `start`: the same number of calendar months
    when both ends are first days of months (third item True), else the same number of days."""
    if start.day == 1 and end.day == 1:
        n = (end.year - start.year) * 12 + end.month - start.month
        index = start.year * 12 + start.month - 1 - n
        return dt.date(index // 12, index % 12 + 1, 1), start, True
    return start - (end - start), start, False


def kpi_targets(config: Config) -> dict[str, tuple[float, str]]:
    """Per metric: (target, kind); kind min_share (value >= target) or max_change."""
    t = config.kpi.targets
    return {"callback_completion": (t.callback_completion, "min_share"),
            "list_completion": (t.callback_completion, "min_share"),
            "complaint_first_response": (t.complaint_first_response, "min_share"),
            "complaint_resolution": (t.complaint_resolution, "min_share"),
            "complaint_rate": (t.complaint_rate_change, "max_change"),
            "churn_rate": (t.churn_rate_change, "max_change"),
            "satisfaction": (t.satisfaction, "min_share")}  # fmt: skip


class MonthIndex:
    """The months of a period as boundaries, to place moments in them."""

    def __init__(self, months: tuple[Month, ...]):
        self.months = months
        self.bounds = np.array([m.start for m in months] + [months[-1].end], "datetime64[us]")

    def __len__(self) -> int:
        return len(self.months)

    def index(self, moments: np.ndarray) -> np.ndarray:
        """The month of each moment; -1 outside the period (or NaT)."""
        idx = np.searchsorted(self.bounds, moments, side="right") - 1
        idx[(idx >= len(self)) | np.isnat(moments)] = -1
        return idx
