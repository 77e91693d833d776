"""The monthly counts of each KPI (numerator, denominator, excluded) by month and group; the
definitions are in `reporting.kpi.compute`'s docstring."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reporting.kpi.counts import Counts, Groups, counts, tally
from reporting.kpi.model import MonthIndex
from reporting.kpi.tables import LIST_COLUMNS, timestamps
from serving.decisions.rules import complaint_deadlines
from serving.records.outcomes import DONE_OUTCOMES

POLICY_REASONS = ("post_sale", "quarterly", "complaint", "risk")


def rates(frames, months: MonthIndex, groups: Groups, span) -> dict[str, Counts]:
    """Complaint and churn rates; a month outside the data's `span` (first, last moment)
    counts no one: its customers could neither complain nor leave in the data."""
    customers = frames["customers"]
    opened, closed = timestamps(customers["opened_at"]), timestamps(customers["closed_at"])
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
    month = months.index(timestamps(complaints["opened_at"]))
    pairs = pd.DataFrame({"customer_id": complaints["customer_id"], "month": month})
    first = ~pairs.duplicated().to_numpy()  # a customer's first complaint of each month
    complained = tally(months, groups, month, groups.by_table["complaints"], first)
    zero = {d: np.zeros_like(a) for d, a in active.items()}
    return {
        "complaint_rate": Counts(complained, active, zero),
        "churn_rate": Counts(closing, active, zero),
    }


def complaint_sla(frames, months, groups, data_end, config, calendar) -> dict[str, Counts]:
    complaints = frames["complaints"]
    opened = timestamps(complaints["opened_at"])
    month = months.index(opened)
    codes = groups.by_table["complaints"]
    response_due = opened + np.timedelta64(config.policy.complaint_first_response_hours, "h")
    deadlines = complaint_deadlines(pd.Series(opened), config, calendar)
    resolution_due = deadlines.resolution_due.tz_convert(None).to_numpy("datetime64[us]")
    out = {}
    for name, done_at, due in (
        ("complaint_first_response", timestamps(complaints["first_response_at"]), response_due),
        ("complaint_resolution", timestamps(complaints["resolved_at"]), resolution_due),
    ):
        done = ~np.isnat(done_at)
        pending = ~done & (due >= data_end)
        out[name] = counts(months, groups, month, codes, done & (done_at <= due), ~pending,
                            pending)  # fmt: skip
    return out


def callback_flags(callbacks: pd.DataFrame, data_end: np.datetime64) -> dict[str, np.ndarray]:
    """Per callback: counted (a policy callback, not held out), held (held out), completed,
    pending (counted, not completed, due at or after the data's end), silent (no outcome)."""
    outcome = callbacks["outcome"]
    due, done_at = timestamps(callbacks["due_at"]), timestamps(callbacks["done_at"])
    held = outcome.isin(["holdout"]).to_numpy(bool)
    counted = callbacks["reason"].isin(POLICY_REASONS).to_numpy(bool) & ~held
    completed = outcome.isin(DONE_OUTCOMES).to_numpy(bool) | ~np.isnat(done_at)
    silent = outcome.isna().to_numpy(bool) & np.isnat(done_at)
    pending = counted & ~completed & (due >= data_end)
    return {"counted": counted, "held": held, "completed": completed, "pending": pending,
            "silent": silent}  # fmt: skip


def callback_counts(frames, months, groups, data_end, config) -> dict[str, Counts]:
    callbacks = frames["callbacks"]
    codes = groups.by_table["callbacks"]
    flag = callback_flags(callbacks, data_end)
    score = callbacks["satisfaction"].to_numpy("float64", na_value=np.nan)
    surveyed = ~np.isnan(score)
    satisfied = surveyed & (score >= config.kpi.targets.satisfied_from)
    return {
        "callback_completion": counts(months, groups, months.index(timestamps(callbacks["due_at"])),
                                       codes, flag["completed"],
                                       flag["counted"] & ~flag["pending"], flag["pending"]),
        "satisfaction": counts(months, groups, months.index(timestamps(callbacks["done_at"])),
                                codes, satisfied, surveyed),
    }  # fmt: skip


def list_completion(lists, outcomes, months, groups, relist_days: int) -> Counts:
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


def all_counts(frames, months, groups, span, config, calendar, lists, outcomes):
    data_end = span[1]
    return {
        **callback_counts(frames, months, groups, data_end, config),
        "list_completion": list_completion(
            lists, outcomes, months, groups, config.planner.carry_over_days
        ),
        **complaint_sla(frames, months, groups, data_end, config, calendar),
        **rates(frames, months, groups, span),
    }
