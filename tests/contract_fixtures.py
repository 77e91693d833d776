"""A small valid bank (5 customers, 2 RMs) for tests: every table of the data contract.

    tables = valid_bank()                       # dict[str, pandas.DataFrame], fresh each call
    tables["transactions"].loc[0, "channel"] = "fax"
    folder = write_bank(tmp_path / "bank", tables)            # Parquet
    folder = write_bank(tmp_path / "bank", tables, fmt="csv") # CSV: ISO times, true/false

The customers' names and phone numbers are PII: `PII_NAMES` lists the names, so a test can
check that none of them is ever printed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

PII_NAMES = ("Zelda Quixote", "Yannick Borealis", "Xenia Marchetti", "Wilbur Pangloss", "Vega AG")
PII_PHONES = ("+41 79 555 01 17", "+41 79 555 02 28", "+41 79 555 03 39", None, "+41 44 555 05 51")


def _ts(*values: str | None) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), utc=True))


def _d(value: str) -> dt.date:
    return dt.date.fromisoformat(value)


def valid_bank(oracle: bool = False) -> dict[str, pd.DataFrame]:
    """Fresh DataFrames of every required table (and the optional oracle), all valid."""
    ids = ["C001", "C002", "C003", "C004", "C005"]
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "segment": ["retail", "hnw", "retail", "hnw", "institutional"],
            "kind": ["individual", "individual", "individual", "individual", "corporate"],
            "birth_date": [_d("1950-03-01"), _d("1978-11-23"), _d("1991-07-14"), None, None],
            "income_band": ["middle", "very_high", "low", "high", None],
            "risk_tolerance": pd.Series([2, 5, 1, 4, 3], dtype="int64"),
            "disabled": [True, False, False, False, False],
            "rm_id": ["R1", "R1", "R2", "R2", "R1"],
            "branch_id": ["B1", "B1", "B2", "B2", "B1"],
            "opened_at": _ts(
                "2015-02-01T09:00:00",
                "2018-05-12T10:30:00",
                "2020-01-20T15:00:00",
                "2016-09-09T08:00:00",
                "2012-04-02T12:00:00",
            ),
            "closed_at": _ts(None, None, None, "2024-02-15T16:00:00", None),
            "name": list(PII_NAMES),
            "phone": list(PII_PHONES),
        }
    )
    holdings = pd.DataFrame(
        {
            "customer_id": ["C001", "C001", "C002", "C003", "C004", "C005"],
            "product_id": ["DEP-1", "FND-7", "EQT-3", "DEP-1", "STR-2", "BND-9"],
            "product_type": ["deposit", "fund", "equity", "deposit", "structured", "bond"],
            "product_risk": pd.Series([1, 3, 4, 1, 5, 2], dtype="int64"),
            "opened_at": _ts(
                "2015-02-01T09:00:00",
                "2021-06-01T10:00:00",
                "2019-01-15T11:00:00",
                "2020-01-20T15:00:00",
                "2017-03-03T09:30:00",
                "2013-01-10T10:00:00",
            ),
            "closed_at": _ts(None, None, None, None, "2024-02-15T16:00:00", None),
            "balance": [12_000.0, 5_400.5, 250_000.0, 800.0, 0.0, 3_000_000.0],
        }
    )
    months = [_d("2024-01-01"), _d("2024-02-01"), _d("2024-03-01")]
    balances = pd.DataFrame(
        {
            "customer_id": [c for c in ids for _ in months],
            "month": months * len(ids),
            "aum": [17_000.0, 17_200.0, 17_400.5, 250_000.0, 260_000.0, 255_000.0, 800.0, 900.0,
                    850.0, 90_000.0, 10_000.0, 0.0, 3.0e6, 3.1e6, 3.05e6],
        }
    )  # fmt: skip
    transactions = pd.DataFrame(
        {
            "customer_id": ["C001", "C001", "C002", "C002", "C003", "C004", "C004", "C005"],
            "ts": _ts(
                "2024-01-03T09:15:00",
                "2024-02-10T14:00:00",
                "2024-01-20T11:11:11",
                "2024-03-01T08:00:00",
                "2024-02-02T19:45:00",
                "2024-01-05T10:00:00",
                "2024-02-14T17:30:00",
                "2024-03-15T12:00:00",
            ),
            "amount": [200.0, 75.5, 10_000.0, 2_500.0, 40.0, 5_000.0, 80_000.0, 1.0e6],
            "direction": ["in", "out", "in", "out", "out", "out", "out", "in"],
            "channel": ["branch", "app", "phone", "web", "app", "branch", "branch", "web"],
            "fee": [None, 0.5, 0.0, 12.0, None, 2.0, 40.0, None],
        }
    )
    sessions = pd.DataFrame(
        {
            "customer_id": ["C001", "C002", "C002", "C003", "C003", "C005"],
            "ts": _ts(
                "2024-01-02T07:00:00",
                "2024-01-10T21:00:00",
                "2024-02-11T21:05:00",
                "2024-02-01T12:00:00",
                "2024-03-01T12:30:00",
                "2024-03-10T09:00:00",
            ),
            "channel": ["app", "web", "app", "app", "app", "web"],
        }
    )
    complaints = pd.DataFrame(
        {
            "complaint_id": ["K1", "K2", "K3"],
            "customer_id": ["C003", "C004", "C001"],
            "opened_at": _ts("2024-01-10T10:00:00", "2024-01-20T09:00:00", "2024-03-20T16:00:00"),
            "first_response_at": _ts("2024-01-10T15:00:00", "2024-01-22T09:00:00", None),
            "resolved_at": _ts("2024-01-15T12:00:00", None, None),
            "category": ["fees", "advice", "digital"],
            "severity": ["low", "high", "medium"],
        }
    )
    callbacks = pd.DataFrame(
        {
            "callback_id": ["CB1", "CB2", "CB3", "CB4"],
            "customer_id": ["C001", "C002", "C004", "C003"],
            "reason": ["post_sale", "quarterly", "complaint", "risk"],
            "due_at": _ts(
                "2024-01-10T00:00:00",
                "2024-03-31T00:00:00",
                "2024-01-25T00:00:00",
                "2024-03-30T00:00:00",
            ),
            "done_at": _ts("2024-01-08T11:00:00", None, None, None),
            "outcome": ["reached", "no_answer", "holdout", None],
            "satisfaction": pd.Series([5, None, None, None], dtype="Int64"),
        }
    )
    rms = pd.DataFrame(
        {
            "rm_id": ["R1", "R2"],
            "branch_id": ["B1", "B2"],
            "capacity_per_day": pd.Series([12, 8], dtype="int64"),
        }
    )
    bank = {
        "customers": customers,
        "holdings": holdings,
        "balances": balances,
        "transactions": transactions,
        "sessions": sessions,
        "complaints": complaints,
        "callbacks": callbacks,
        "rms": rms,
    }
    if oracle:
        bank["oracle"] = pd.DataFrame(
            {
                "customer_id": ids,
                "as_of": [_d("2024-03-01")] * len(ids),
                "p_churn": [0.05, 0.2, 0.01, 0.9, 0.03],
                "p_complaint": [0.1, 0.02, 0.3, 0.5, 0.0],
                "callback_effect": [-0.02, 0.0, -0.1, 0.05, -1.0],
            }
        )
    return bank


def _csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Booleans as `true`/`false`, timestamps as ISO 8601 with `Z`, as the contract documents."""
    out = df.copy()
    for column in out.columns:
        series = out[column]
        if pd.api.types.is_bool_dtype(series):
            out[column] = series.map({True: "true", False: "false"})
        elif isinstance(series.dtype, pd.DatetimeTZDtype):
            out[column] = series.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def write_bank(
    folder: Path, tables: Mapping[str, pd.DataFrame] | None = None, fmt: str = "parquet"
) -> Path:
    """Write `tables` (default: `valid_bank()`) into `folder`, one `<table>.<fmt>` file each."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in (valid_bank() if tables is None else tables).items():
        if fmt == "parquet":
            df.to_parquet(folder / f"{name}.parquet", index=False)
        elif fmt == "csv":
            _csv_frame(df).to_csv(folder / f"{name}.csv", index=False)
        else:
            raise ValueError(f"fmt must be 'parquet' or 'csv', not {fmt!r}")
    return folder
