"""A five-customer bank built by hand, for golden values and point-in-time properties.

The main as-of date is T = 2024-07-01 (a Monday). Windows: 30 d = [2024-06-01, T),
90 d = [2024-04-02, T), 180 d = [2024-01-03, T), 365 d = [2023-07-02, T) (2024 is a leap year).
Label horizon 90 d: [T, 2024-09-29).

* C1 Ann - elderly retail customer whose activity and assets are falling, with complaints that
  breach the SLA (one saved by the 2024-05-01 holiday), an unsuitable product and overdue
  callbacks (one a holdout). Churns by an 80 % AUM drop (exactly at the threshold) and complains.
* C2 Bob - closed on 2024-06-15: present on 2024-06-01, gone on T.
* C3 Cyd - new customer (opened 2024-05-20): absent on 2024-05-01, present on 2024-06-01.
* C4 Dax Ltd - corporate customer with no events besides balances; closes on 2024-09-10
  (inside the horizon: churn).
* C5 Eve - turns 65 on T exactly, disabled, one old transaction (kept only as history), zero
  assets, one complaint never answered.

Every event after T is a trap: point-in-time features must ignore it. The newest event is on
2024-09-29, so the data ends on 2024-09-30 and snapshots after 2024-07-02 are unlabeled.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import pandas as pd
import pyarrow as pa

T = dt.date(2024, 7, 1)
FIRST_EVENT = dt.date(2010, 1, 1)
LAST_EVENT = dt.date(2024, 9, 29)


def ts(text: str | None) -> pd.Timestamp | None:
    """'2024-06-30 23:59:59' -> a UTC timestamp (None stays None)."""
    return None if text is None else pd.Timestamp(text, tz="UTC")


def day(text: str | None) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text)


def _frame(rows: list[dict[str, Any]], columns: dict[str, str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(columns))
    for col, kind in columns.items():
        if kind == "ts":
            df[col] = pd.to_datetime(df[col], utc=True).astype("datetime64[us, UTC]")
        elif kind == "date":
            df[col] = pd.array([v for v in df[col]], dtype="object")
        elif kind == "float":
            df[col] = df[col].astype("float64")
        elif kind == "int":
            df[col] = df[col].astype("int64")
        elif kind == "Int":
            df[col] = df[col].astype("Int64")
        elif kind == "bool":
            df[col] = df[col].astype("bool")
        else:
            df[col] = df[col].astype("object")
    return df


CUSTOMER_COLUMNS = {
    "customer_id": "str",
    "segment": "str",
    "kind": "str",
    "birth_date": "date",
    "income_band": "str",
    "risk_tolerance": "int",
    "disabled": "bool",
    "rm_id": "str",
    "branch_id": "str",
    "opened_at": "ts",
    "closed_at": "ts",
    "name": "str",
    "phone": "str",
}
HOLDING_COLUMNS = {
    "customer_id": "str",
    "product_id": "str",
    "product_type": "str",
    "product_risk": "int",
    "opened_at": "ts",
    "closed_at": "ts",
    "balance": "float",
}
BALANCE_COLUMNS = {"customer_id": "str", "month": "date", "aum": "float"}
TXN_COLUMNS = {
    "customer_id": "str",
    "ts": "ts",
    "amount": "float",
    "direction": "str",
    "channel": "str",
    "fee": "float",
}
SESSION_COLUMNS = {"customer_id": "str", "ts": "ts", "channel": "str"}
COMPLAINT_COLUMNS = {
    "complaint_id": "str",
    "customer_id": "str",
    "opened_at": "ts",
    "first_response_at": "ts",
    "resolved_at": "ts",
    "category": "str",
    "severity": "str",
}
CALLBACK_COLUMNS = {
    "callback_id": "str",
    "customer_id": "str",
    "reason": "str",
    "due_at": "ts",
    "done_at": "ts",
    "outcome": "str",
    "satisfaction": "Int",
}
COLUMNS = {
    "customers": CUSTOMER_COLUMNS,
    "holdings": HOLDING_COLUMNS,
    "balances": BALANCE_COLUMNS,
    "transactions": TXN_COLUMNS,
    "sessions": SESSION_COLUMNS,
    "complaints": COMPLAINT_COLUMNS,
    "callbacks": CALLBACK_COLUMNS,
}


def _customers() -> list[dict[str, Any]]:
    def c(cid, segment, kind, birth, income, tol, disabled, opened, closed, name):
        return {
            "customer_id": cid,
            "segment": segment,
            "kind": kind,
            "birth_date": day(birth),
            "income_band": income,
            "risk_tolerance": tol,
            "disabled": disabled,
            "rm_id": "RM1",
            "branch_id": "BR1",
            "opened_at": ts(opened),
            "closed_at": ts(closed),
            "name": name,
            "phone": "+44 7700 900000",
        }

    return [
        c("C1", "retail", "individual", "1950-07-15", "middle", 2, False,
          "2015-03-10 09:00", None, "Ann"),
        c("C2", "hnw", "individual", "1980-01-01", "very_high", 4, True,
          "2020-01-01 09:00", "2024-06-15 10:00", "Bob"),
        c("C3", "retail", "individual", "1990-06-30", "low", 1, False,
          "2024-05-20 12:00", None, "Cyd"),
        c("C4", "institutional", "corporate", None, None, 3, False,
          "2010-01-01 00:00", "2024-09-10 08:00", "Dax Ltd"),
        c("C5", "retail", "individual", "1959-07-01", "middle", 3, True,
          "2018-02-01 09:00", None, "Eve"),
    ]  # fmt: skip


def _holdings() -> list[dict[str, Any]]:
    def h(cid, pid, ptype, risk, opened, closed):
        return {
            "customer_id": cid,
            "product_id": pid,
            "product_type": ptype,
            "product_risk": risk,
            "opened_at": ts(opened),
            "closed_at": ts(closed),
            "balance": 100.0,
        }

    return [
        h("C1", "H1", "deposit", 1, "2015-03-10 09:30", None),
        h("C1", "H2", "equity", 4, "2024-03-01 10:00", None),  # unsuitable, gap 2
        h("C1", "H3", "fund", 3, "2023-01-01 10:00", "2024-05-15 10:00"),  # closed in 90 d
        h("C1", "H4", "bond", 5, "2024-06-15 10:00", "2024-07-01 00:00"),  # open at T, gap 3
        h("C1", "H5", "structured", 5, "2024-07-01 00:00", None),  # bought at T: not yet
        h("C2", "H8", "fund", 3, "2021-01-01 10:00", "2024-06-15 10:00"),
        h("C3", "H6", "deposit", 1, "2024-05-20 12:30", None),
        h("C5", "H7", "fund", 2, "2018-02-01 09:30", None),  # below tolerance: gap -1
    ]


def _balances() -> list[dict[str, Any]]:
    rows = []
    c1 = {
        "2023-12-01": 100000, "2024-01-01": 100000, "2024-02-01": 90000, "2024-03-01": 80000,
        "2024-04-01": 60000, "2024-05-01": 40000, "2024-06-01": 30000, "2024-07-01": 20000,
        "2024-08-01": 5000, "2024-09-01": 4000,
    }  # fmt: skip
    rows += [{"customer_id": "C1", "month": day(m), "aum": float(v)} for m, v in c1.items()]
    rows += [
        {"customer_id": "C2", "month": day(m), "aum": 250000.0}
        for m in ("2024-04-01", "2024-05-01", "2024-06-01")
    ]
    rows += [{"customer_id": "C3", "month": day("2024-06-01"), "aum": 1000.0}]
    rows += [
        {"customer_id": "C4", "month": day(f"2024-{m:02d}-01"), "aum": 500000.0}
        for m in range(1, 10)
    ]
    rows += [
        {"customer_id": "C5", "month": day("2024-03-01"), "aum": 0.0},
        {"customer_id": "C5", "month": day("2024-06-01"), "aum": 0.0},
    ]
    return rows


def _transactions() -> list[dict[str, Any]]:
    def t(cid, when, amount, direction, channel, fee):
        return {
            "customer_id": cid,
            "ts": ts(when),
            "amount": float(amount),
            "direction": direction,
            "channel": channel,
            "fee": fee,
        }

    return [
        t("C1", "2023-07-01 23:00", 700, "out", "branch", 100.0),  # just outside 365 d
        t("C1", "2024-01-02 10:00", 100, "out", "branch", 2.0),  # just outside 180 d
        t("C1", "2024-01-03 00:00", 1000, "in", "branch", 1.0),  # first instant of 180 d
        t("C1", "2024-02-10 10:00", 500, "in", "app", 0.5),
        t("C1", "2024-02-20 10:00", 400, "in", "app", None),
        t("C1", "2024-03-15 10:00", 200, "out", "app", 0.5),
        t("C1", "2024-04-02 00:00", 50, "out", "web", 0.25),  # first instant of 90 d
        t("C1", "2024-05-20 10:00", 300, "out", "branch", 1.0),
        t("C1", "2024-06-30 23:59:59", 20, "out", "phone", 0.25),  # last instant before T
        t("C1", "2024-07-01 00:00", 999, "in", "app", 9.0),  # at T: excluded
        t("C1", "2024-07-15 10:00", 5000, "out", "branch", 9.0),
        t("C2", "2024-05-05 10:00", 800, "out", "branch", 1.0),
        t("C3", "2024-06-05 10:00", 2000, "in", "app", 0.0),
        t("C3", "2024-06-20 10:00", 100, "out", "web", 0.1),
        t("C5", "2023-12-01 10:00", 10, "out", "branch", 0.0),  # only as history
        t("C9", "2024-06-01 10:00", 123, "in", "app", 0.0),  # not a customer: ignored
    ]


def _sessions() -> list[dict[str, Any]]:
    def s(cid, when, channel="app"):
        return {"customer_id": cid, "ts": ts(when), "channel": channel}

    c1 = ["2024-04-05 08:00", "2024-04-20 08:00", "2024-05-01 08:00", "2024-05-10 08:00",
          "2024-05-15 08:00", "2024-05-31 23:00", "2024-06-10 08:00", "2024-07-01 00:00",
          "2024-07-20 08:00"]  # fmt: skip
    return [s("C1", w) for w in c1] + [
        s("C3", "2024-06-01 00:00", "web"),  # first instant of 30 d
        s("C3", "2024-06-25 08:00"),
    ]


def _complaints() -> list[dict[str, Any]]:
    def k(kid, cid, opened, first, resolved, severity="low", category="service"):
        return {
            "complaint_id": kid,
            "customer_id": cid,
            "opened_at": ts(opened),
            "first_response_at": ts(first),
            "resolved_at": ts(resolved),
            "category": category,
            "severity": severity,
        }

    return [
        # Fri 15:00, answered after 25 h (breach); 7 working days skip the weekend and the
        # 2024-05-01 holiday: last day Wed 05-08, resolved that day -> on time
        k("K1", "C1", "2024-04-26 15:00", "2024-04-27 16:00", "2024-05-08 12:00"),
        # Mon; answered in 11 h; never resolved: deadline 06-20 passed -> resolution breach
        k("K2", "C1", "2024-06-10 09:00", "2024-06-10 20:00", None, severity="high"),
        # Fri 10:00; first response after T -> breach known on 06-29 10:00; resolved after T
        k("K3", "C1", "2024-06-28 10:00", "2024-07-02 09:00", "2024-07-05 10:00"),
        # Sunday, answered and resolved the same day
        k("K4", "C1", "2024-06-30 12:00", "2024-06-30 13:00", "2024-06-30 18:00"),
        # opened at T: excluded from features, counted by the complaint label
        k("K5", "C1", "2024-07-01 00:00", "2024-07-01 05:00", "2024-07-03 10:00"),
        # outside 180 d, with breaches: ignored by the windowed counts
        k("K6", "C1", "2023-12-20 10:00", "2023-12-22 10:00", "2024-01-20 10:00", "high"),
        k("K9", "C2", "2024-05-02 10:00", "2024-05-02 12:00", "2024-05-03 10:00"),
        # Mon 08:00, answered in 23 h, resolved 23:00 on the 7th working day -> on time
        k("K7", "C3", "2024-06-03 08:00", "2024-06-04 07:00", "2024-06-12 23:00"),
        # at T + 90 d exactly: outside the label horizon
        k("K8", "C3", "2024-09-29 00:00", "2024-09-29 05:00", "2024-09-29 09:00"),
        # Fri 22:00, never answered, never resolved
        k("K10", "C5", "2024-05-31 22:00", None, None, severity="medium"),
    ]


def _callbacks() -> list[dict[str, Any]]:
    def b(bid, cid, reason, due, done, outcome, satisfaction=None):
        return {
            "callback_id": bid,
            "customer_id": cid,
            "reason": reason,
            "due_at": ts(due),
            "done_at": ts(done),
            "outcome": outcome,
            "satisfaction": satisfaction,
        }

    return [
        b("CB1", "C1", "post_sale", "2024-06-22 10:00", None, "no_answer"),  # overdue
        b("CB2", "C1", "post_sale", "2024-03-08 10:00", "2024-03-07 15:00", "reached", 4),
        b("CB3", "C1", "quarterly", "2024-06-01 12:00", "2024-07-03 10:00", "reached", 2),
        b("CB4", "C1", "quarterly", "2024-03-01 12:00", None, "holdout"),  # overdue, holdout
        b("CB5", "C1", "complaint", "2024-06-12 09:00", "2024-06-11 16:00", "reached"),
        b("CB8", "C2", "quarterly", "2024-05-01 12:00", "2024-05-01 10:00", "reached", 3),
        b("CB6", "C3", "post_sale", "2024-05-27 12:30", "2024-05-25 10:00", "reached", 5),
        b("CB7", "C5", "quarterly", "2023-11-01 12:00", None, "declined"),  # before 180 d
    ]


def bank_frames() -> dict[str, pd.DataFrame]:
    """The bank as pandas DataFrames, one per table, typed like the data contract."""
    rows = {
        "customers": _customers(),
        "holdings": _holdings(),
        "balances": _balances(),
        "transactions": _transactions(),
        "sessions": _sessions(),
        "complaints": _complaints(),
        "callbacks": _callbacks(),
    }
    return {name: _frame(rows[name], columns) for name, columns in COLUMNS.items()}


def connect() -> ibis.BaseBackend:
    con = ibis.duckdb.connect(threads=1)
    con.raw_sql("SET TimeZone = 'UTC'")
    return con


_ARROW = {
    "str": pa.string(),
    "date": pa.date32(),
    "ts": pa.timestamp("us", tz="UTC"),
    "float": pa.float64(),
    "int": pa.int64(),
    "Int": pa.int64(),
    "bool": pa.bool_(),
}


def to_arrow(name: str, df: pd.DataFrame) -> pa.Table:
    """A frame as an Arrow table with the contract's types (nulls kept as nulls)."""
    arrays = {}
    for col, kind in COLUMNS[name].items():
        values = [None if pd.isna(v) else v for v in df[col].tolist()]
        if kind == "ts":
            values = [None if v is None else pd.Timestamp(v).to_pydatetime() for v in values]
        arrays[col] = pa.array(values, type=_ARROW[kind])
    return pa.table(arrays)


def load(con: ibis.BaseBackend, frames: dict[str, pd.DataFrame]) -> dict[str, ibis.Table]:
    """Register `frames` on the DuckDB connection `con` (replacing earlier versions)."""
    out = {}
    for name, df in frames.items():
        view = f"fx_{name}"
        con.con.register(view, to_arrow(name, df))  # replaces an earlier registration
        out[name] = con.table(view)
    return out
