"""Labels per (customer_id, as_of T) over the horizon H = config.labels.horizon_days.

* `churn` - the relationship closes in [T, T+H) (when `labels.churn.closure`), or the customer's
  assets fall to (1 - aum_drop_fraction) of their level at T or below. When a balances row is
  known is the contract's rule (`keepwell.contract.timing`: a month's closing balance is known
  from the next month's first day), so AUM_T is the newest row known before T, and the readings
  that follow are the rows that become known in [T, T+H): the lowest of them must be
  <= (1 - f) * AUM_T. Every monthly reading inside the horizon counts
  (a drop that recovers within the horizon still counts); AUM_T null or 0 cannot drop. A drop
  of exactly the fraction counts (compared with a 1e-9 relative tolerance).
* `complaint` - at least `labels.complaint.min_complaints` complaints opened in [T, T+H).
* `labeled` - false when the horizon runs past the data's end (T + H > newest event day + 1):
  such snapshots get null labels, never silent negatives.

Rows are the customers that exist at T, exactly the rows of `build_features` for that as_of.
The only pre-T input is AUM_T (the baseline of the drop); everything else is in [T, T+H].
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import ibis

from features.build import active_at, attach, customers_base
from features.dates import normalize_dates
from features.ranges import check_as_of_range
from features.ranges import data_range as _event_range
from features.slots import literal_like
from keepwell.contract import timing

if TYPE_CHECKING:
    from keepwell.config import Config

LABEL_COLUMNS = ("churn", "complaint", "labeled")
REL_TOL = 1e-9  # floating-point slack: a drop of exactly aum_drop_fraction counts


def _require(
    tables: Mapping[str, ibis.Table], table: str, columns: Sequence[str], why: str
) -> None:
    t = tables.get(table)
    if t is None:
        raise ValueError(f"labels need the table {table} ({why}); tables given: {sorted(tables)}")
    missing = [c for c in columns if c not in t.columns]
    if missing:
        raise ValueError(f"labels need {table} column(s) {missing} ({why})")


def build_labels(
    tables: Mapping[str, ibis.Table],
    as_of_dates: Sequence[dt.date],
    config: Config,
    *,
    data_range: tuple[dt.date, dt.date] | None = None,
) -> ibis.Table:
    """customer_id, as_of, churn, complaint, labeled - one row per customer existing at as_of."""
    dates = normalize_dates(as_of_dates)
    labels = config.labels
    horizon = labels.horizon_days
    drop = labels.churn.aum_drop_fraction
    _require(tables, "customers", ["customer_id", "opened_at", "closed_at"], "who exists at as_of")
    _require(tables, "complaints", ["customer_id", "opened_at"], "the complaint label")
    use_aum = "balances" in tables
    if use_aum:
        _require(tables, "balances", ["customer_id", "month", "aum"], "the AUM-drop churn label")
    first, last = data_range if data_range is not None else _event_range(tables)
    check_as_of_range(dates, first, last)
    end = last + dt.timedelta(days=1)

    wide = customers_base(tables["customers"])
    c = tables["complaints"]
    opened = c.opened_at
    c = c.filter(
        (opened >= literal_like(opened, dates[0]))
        & (opened < literal_like(opened, dates[-1], -horizon))
    )
    complaint_counts = c.group_by("customer_id").aggregate(
        **{
            f"complaints__{k}": ibis.ifelse(
                (c.opened_at >= literal_like(c.opened_at, d))
                & (c.opened_at < literal_like(c.opened_at, d, -horizon)),
                1,
                0,
            ).sum()
            for k, d in enumerate(dates)
        }
    )
    wide = attach(wide, complaint_counts)
    if use_aum:
        b = tables["balances"]

        def known_before(day: dt.date) -> ibis.Value:
            return b.month < literal_like(b.month, timing.cutoff("balances", "month", day))

        b = b.filter(known_before(dates[-1] + dt.timedelta(days=horizon)))
        aggs = {}
        for k, d in enumerate(dates):
            # the level known at T, then the readings that become known inside the horizon
            at_t = known_before(d)
            ahead = ~at_t & known_before(d + dt.timedelta(days=horizon))
            aggs[f"aum_at__{k}"] = b.aum.argmax(b.month, where=at_t)
            aggs[f"aum_min__{k}"] = ibis.ifelse(ahead, b.aum, ibis.null("float64")).min()
        wide = attach(wide, b.group_by("customer_id").aggregate(**aggs))

    parts = []
    for k, d in enumerate(dates):
        labeled = d + dt.timedelta(days=horizon) <= end
        closed = wide.closed_at
        churn = ibis.literal(False)
        if labels.churn.closure:
            churn = closed.notnull() & (closed < literal_like(closed, d, -horizon))
        if use_aum:
            base, low = wide[f"aum_at__{k}"], wide[f"aum_min__{k}"]
            fell = (base > 0) & low.notnull() & (low <= (1.0 - drop) * (1.0 + REL_TOL) * base)
            churn = churn | fell.fill_null(False)
        complaint = wide[f"complaints__{k}"].fill_null(0) >= labels.complaint.min_complaints
        null = ibis.null("boolean")
        parts.append(
            wide.filter(active_at(wide, d)).select(
                "customer_id",
                as_of=ibis.literal(d, "date"),
                churn=churn.fill_null(False) if labeled else null,
                complaint=complaint if labeled else null,
                labeled=ibis.literal(labeled),
            )
        )
    return parts[0] if len(parts) == 1 else ibis.union(*parts, distinct=False)
