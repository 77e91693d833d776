"""The notes under the KPI report: the data's range, the prior period, what was excluded."""

from __future__ import annotations

import datetime as dt

import numpy as np

from reporting.kpi.counts import UNKNOWN, Groups
from reporting.kpi.metrics import callback_flags
from reporting.kpi.model import KpiReport
from reporting.kpi.tables import timestamps, utc_naive


def notes(report: KpiReport, frames, groups: Groups, prior_start, first_day, last_day):
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
    flag = callback_flags(callbacks, utc_naive(report.data_end))
    due = timestamps(callbacks["due_at"])
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
