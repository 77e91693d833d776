"""The KPI report's input tables: the needed columns as pandas, timestamps naive UTC, and the
data's range."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from reporting.kpi.model import KpiError
from serving.decisions.rules import needed_arrow

NEEDED: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "segment", "rm_id", "branch_id", "opened_at", "closed_at"),
    "complaints": ("customer_id", "opened_at", "first_response_at", "resolved_at"),
    "callbacks": ("customer_id", "reason", "due_at", "done_at", "outcome", "satisfaction"),
}
TIMESTAMPS = {"opened_at", "closed_at", "first_response_at", "resolved_at", "due_at", "done_at"}
LIST_COLUMNS = ("task_id", "list_date", "rm_id", "branch_id", "segment")


def frame(name: str, table: Any) -> pd.DataFrame:
    """The needed columns of a table as pandas; timestamps as naive UTC datetime64[us]."""
    out = needed_arrow(name, table, NEEDED[name], timestamps=TIMESTAMPS, error=KpiError)
    if "satisfaction" in out.column_names:
        kind = out.schema.field("satisfaction").type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)):
            raise KpiError(f"{name}.satisfaction must be a number (a 1-5 score), got {kind}")
    return out.to_pandas()


def timestamps(series: pd.Series) -> np.ndarray:
    return series.to_numpy("datetime64[us]")


def utc_naive(moment: dt.datetime) -> np.datetime64:
    ts = pd.Timestamp(moment)
    ts = ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts
    return np.datetime64(ts.to_datetime64(), "us")


def data_range(frames: dict[str, pd.DataFrame]) -> tuple[np.datetime64, np.datetime64]:
    """First event (complaint opened, callback due; else a customer opened) and last recorded
    moment (an opening, closing, response, resolution or callback done)."""
    firsts = [
        timestamps(frames["complaints"]["opened_at"]),
        timestamps(frames["callbacks"]["due_at"]),
    ]
    lasts = [timestamps(frames["customers"][c]) for c in ("opened_at", "closed_at")]
    lasts += [timestamps(frames["complaints"][c]) for c in NEEDED["complaints"][1:]]
    lasts.append(timestamps(frames["callbacks"]["done_at"]))

    def bound(arrays: list[np.ndarray], pick) -> np.datetime64 | None:
        values = [pick(a[~np.isnat(a)]) for a in arrays if (~np.isnat(a)).any()]
        return pick(np.array(values)) if values else None

    first = bound(firsts, np.min)
    if first is None:
        first = bound([timestamps(frames["customers"]["opened_at"])], np.min)
    last = bound(lasts, np.max)
    if first is None or last is None:
        raise KpiError("the tables hold no dated events (customers, complaints, callbacks)")
    return first, last
