"""The baseline: a straightforward pandas implementation of a subset of the features.

What a data scientist would write first: load the tables, then for every as-of date take the
customers open at that date, mask the transactions of each window with booleans and group by
customer. It follows the definitions of `features.spec` for these features (checked value by
value by the benchmark), but shares no code with `features/`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

WINDOWS = (30, 90, 180)
SUBSET = (
    *(f"txn_count_{w}d" for w in WINDOWS),
    *(f"txn_amount_{w}d" for w in WINDOWS),
    "days_since_last_txn",
    "txn_rate_30d_vs_90d",
    "distinct_channels_90d",
)


def load(folder: Path | str) -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = Path(folder)
    customers = pd.read_parquet(
        folder / "customers.parquet", columns=["customer_id", "opened_at", "closed_at"]
    )
    txns = pd.read_parquet(
        folder / "transactions.parquet", columns=["customer_id", "ts", "amount", "channel"]
    )
    return customers, txns


def snapshot(customers: pd.DataFrame, txns: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """The subset for one as-of date: one row per customer open at as_of."""
    t0 = pd.Timestamp(as_of, tz="UTC")
    open_ = (customers.opened_at < t0) & (customers.closed_at.isna() | (customers.closed_at >= t0))
    out = pd.DataFrame({"customer_id": customers.loc[open_, "customer_id"].to_numpy()})
    out = out.set_index("customer_id")
    past = txns[txns.ts < t0]
    for w in WINDOWS:
        win = past[past.ts >= t0 - pd.Timedelta(days=w)]
        grouped = win.groupby("customer_id", observed=True)
        out[f"txn_count_{w}d"] = grouped.size().reindex(out.index, fill_value=0).astype("int64")
        out[f"txn_amount_{w}d"] = grouped.amount.sum().reindex(out.index, fill_value=0.0)
        if w == 90:
            channels = grouped.channel.nunique().reindex(out.index, fill_value=0)
            out["distinct_channels_90d"] = channels.astype("int64")
    last = past.groupby("customer_id", observed=True).ts.max().reindex(out.index)
    out["days_since_last_txn"] = (t0.normalize() - last.dt.floor("D")).dt.days.astype("Int64")
    # daily rate of the last 30 days against that of the last 90; null without transactions
    rate_90 = out["txn_count_90d"] / 90
    out["txn_rate_30d_vs_90d"] = (out["txn_count_30d"] / 30) / rate_90.where(rate_90 > 0)
    out.insert(0, "as_of", as_of)
    return out.reset_index()


def build(folder: Path | str, as_of_dates: Sequence[dt.date]) -> pd.DataFrame:
    """The subset for every as-of date, one row per (customer_id, as_of)."""
    customers, txns = load(folder)
    frames = [snapshot(customers, txns, d) for d in as_of_dates]
    out = pd.concat(frames, ignore_index=True)
    return out[["customer_id", "as_of", *SUBSET]]
