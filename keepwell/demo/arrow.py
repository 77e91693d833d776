"""Arrow tables of the demo bank: the recorded arrays (day numbers, codes) as the bank's tables."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from keepwell.config import SEGMENTS
from keepwell.demo.population import Customers, Rms

US_PER_DAY = 86_400_000_000
TS = pa.timestamp("us", tz="UTC")
PRODUCTS = np.array(["deposit", "fund", "bond", "equity", "insurance", "structured", "loan"])
CHANNELS = np.array(["branch", "app", "web", "phone"])
CATEGORIES = np.array(["fees", "service", "product", "digital", "advice", "other"])
SEVERITIES = np.array(["low", "medium", "high"])

Columns = dict[str, np.ndarray]


def _us(days: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(days, dtype=np.float64) * US_PER_DAY).astype(np.int64)


def timestamps(days: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """UTC timestamps from fractional day numbers (null where `valid` is false)."""
    us = _us(np.nan_to_num(days, nan=0.0))
    mask = None if valid is None else ~valid
    return pa.array(us, type=pa.int64(), mask=mask).cast(TS)


def optional_timestamps(days: np.ndarray) -> pa.Array:
    """UTC timestamps, null where the day number is NaN (not happened, or not known)."""
    return timestamps(days, ~np.isnan(days))


def strings(values) -> pa.Array:
    return pa.array(values, pa.string())


def serial_ids(prefix: str, n: int) -> pa.Array:
    """`prefix0`, `prefix1`, ...: the row ids of one chunk's table."""
    return strings(np.char.add(prefix, np.arange(n).astype(str)))


def rms_table(rms: Rms) -> pa.Table:
    return pa.table(
        {
            "rm_id": strings(rms.rm_id),
            "branch_id": strings(rms.branch_id),
            "capacity_per_day": pa.array(rms.capacity, pa.int64()),
        }
    )


def customers_table(p: Customers, rms: Rms, closed: np.ndarray) -> pa.Table:
    st = p.static
    birth_valid = ~p.kind_corporate
    return pa.table(
        {
            "customer_id": strings(p.customer_id),
            "segment": strings(np.array(SEGMENTS)[st.segment]),
            "kind": strings(np.where(p.kind_corporate, "corporate", "individual")),
            "birth_date": pa.array(
                np.where(birth_valid, p.birth_day, 0).astype(np.int32),
                pa.int32(),
                mask=~birth_valid,
            ).cast(pa.date32()),
            "income_band": strings(p.income_band.tolist()),
            "risk_tolerance": pa.array(p.risk_tolerance, pa.int8()),
            "disabled": pa.array(p.disabled, pa.bool_()),
            "rm_id": strings(rms.rm_id[p.rm]),
            "branch_id": strings(rms.branch_id[p.rm]),
            "opened_at": timestamps(st.opened_day + 0.375),
            "closed_at": optional_timestamps(closed),
            "name": strings(p.name),
            "phone": strings(p.phone),
        }
    )


def holdings_table(ids: np.ndarray, h: Columns, balance: np.ndarray, tag: str) -> pa.Table:
    """`h`: the holdings sorted by customer and opening (cust, type, risk, open, close)."""
    return pa.table(
        {
            "customer_id": strings(ids[h["cust"]]),
            "product_id": serial_ids(f"P{tag}-", h["cust"].size),
            "product_type": strings(PRODUCTS[h["type"]]),
            "product_risk": pa.array(h["risk"], pa.int8()),
            "opened_at": timestamps(h["open"]),
            "closed_at": optional_timestamps(h["close"]),
            "balance": pa.array(np.round(balance, 2), pa.float64()),
        }
    )


def balances_table(ids: np.ndarray, b: Columns) -> pa.Table:
    return pa.table(
        {
            "customer_id": strings(ids[b["cust"]]),
            "month": pa.array(b["t"].astype(np.int32), pa.int32()).cast(pa.date32()),
            "aum": pa.array(np.round(b["aum"], 2), pa.float64()),
        }
    )


def transactions_table(ids: np.ndarray, t: Columns) -> pa.Table:
    return pa.table(
        {
            "customer_id": strings(ids[t["cust"]]),
            "ts": timestamps(t["t"]),
            "amount": pa.array(t["amount"], pa.float64()),
            "direction": strings(np.where(t["out"], "out", "in")),
            "channel": strings(CHANNELS[t["channel"]]),
            "fee": pa.array(t["fee"], pa.float64()),
        }
    )


def sessions_table(ids: np.ndarray, s: Columns) -> pa.Table:
    return pa.table(
        {
            "customer_id": strings(ids[s["cust"]]),
            "ts": timestamps(s["t"]),
            "channel": strings(np.where(s["app"], "app", "web")),
        }
    )


def complaints_table(ids: np.ndarray, c: Columns, tag: str) -> pa.Table:
    return pa.table(
        {
            "complaint_id": serial_ids(f"CP{tag}-", c["cust"].size),
            "customer_id": strings(ids[c["cust"]]),
            "opened_at": timestamps(c["t"]),
            "first_response_at": optional_timestamps(c["first_response"]),
            "resolved_at": optional_timestamps(c["resolved"]),
            "category": strings(CATEGORIES[c["category"]]),
            "severity": strings(SEVERITIES[c["severity"]]),
        }
    )


def callbacks_table(ids: np.ndarray, k: Columns, tag: str) -> pa.Table:
    sat = k["satisfaction"]
    return pa.table(
        {
            "callback_id": serial_ids(f"CB{tag}-", k["cust"].size),
            "customer_id": strings(ids[k["cust"]]),
            "reason": strings(k["reason"].tolist()),
            "due_at": timestamps(k["due"]),
            "done_at": optional_timestamps(k["done"]),
            "outcome": strings(k["outcome"].tolist()),
            "satisfaction": pa.array(
                np.nan_to_num(sat).astype(np.int8), pa.int8(), mask=np.isnan(sat)
            ),
        }
    )


def oracle_table(ids: np.ndarray, oracle_parts) -> pa.Table:
    """The true probabilities per (customer, as_of): `oracle_parts` of (idx, day, pc, pq, eff)."""
    if oracle_parts:
        idx, day, pc, pq_, eff = (np.concatenate(x) for x in zip(*oracle_parts, strict=True))
    else:
        idx = day = np.zeros(0, np.int32)
        pc = pq_ = eff = np.zeros(0, np.float32)
    order = np.lexsort((day, idx))

    def probability(values: np.ndarray) -> pa.Array:
        return pa.array(values[order].astype(np.float64), pa.float64())

    return pa.table(
        {
            "customer_id": strings(ids[idx[order]]),
            "as_of": pa.array(day[order], pa.int32()).cast(pa.date32()),
            "p_churn": probability(pc),
            "p_complaint": probability(pq_),
            "callback_effect": probability(eff),
        }
    )
