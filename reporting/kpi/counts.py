"""Counting for the KPI report: each customer's group codes (branch, RM, segment) and counts per
(month, group) of a metric's numerator, denominator and excluded rows (`reporting.kpi.compute`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reporting.kpi.model import KpiError, MonthIndex

DIMENSIONS = {"branch": "branch_id", "rm": "rm_id", "segment": "segment"}
UNKNOWN = "(unknown)"


def strings(series: pd.Series) -> pa.ChunkedArray:
    values = pa.array(series, from_pandas=True)  # zero-copy for Arrow-backed strings
    values = pa.chunked_array([values]) if isinstance(values, pa.Array) else values
    return values.cast(pa.large_string())


def lookup(values: pd.Series, keys: pa.Array) -> np.ndarray:
    """The position of each value in `keys` (-1: null or absent), hashed in Arrow."""
    found = pc.index_in(strings(values), value_set=keys.cast(pa.large_string()))
    return found.fill_null(-1).to_numpy().astype(np.int64)


class Groups:
    """Codes of the branch, RM and segment of each customer, of each complaint and callback (by
    its customer; UNKNOWN when the customer is missing) and of other rows' own columns."""

    def __init__(self, frames: dict[str, pd.DataFrame], lists: pd.DataFrame | None):
        customers = frames["customers"]
        self.labels: dict[str, np.ndarray] = {}
        for dim, col in DIMENSIONS.items():
            values = set(pc.unique(strings(customers[col]).drop_null()).to_pylist())
            if lists is not None:
                values |= set(lists[col].dropna().astype(str))
            self.labels[dim] = np.array([*sorted(values), UNKNOWN], dtype=object)
        self.customer_codes = self.codes(customers)
        ids = strings(customers["customer_id"]).combine_chunks()
        if pc.count_distinct(ids).as_py() != len(ids):
            dupes = customers["customer_id"][customers["customer_id"].duplicated()]
            raise KpiError("customers.customer_id has duplicate values, e.g. "
                           f"{dupes.unique()[:5].tolist()}")  # fmt: skip
        self.by_table, self.unknown = {}, {}
        for name in ("complaints", "callbacks"):
            row = lookup(frames[name]["customer_id"], ids)
            known = row >= 0
            self.unknown[name] = int((~known).sum())
            self.by_table[name] = {
                dim: np.where(known, codes[np.maximum(row, 0)], len(self.labels[dim]) - 1)
                for dim, codes in self.customer_codes.items()
            }
        first = customers.dropna(subset=["rm_id"]).drop_duplicates("rm_id")
        self.rm_branch = dict(zip(first["rm_id"].astype(str), first["branch_id"], strict=True))

    def codes(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        out = {}
        for dim, col in DIMENSIONS.items():
            labels = self.labels[dim]
            codes = lookup(frame[col], pa.array(labels[:-1].tolist(), pa.string()))
            out[dim] = np.where(codes < 0, len(labels) - 1, codes)
        return out


@dataclass
class Counts:
    """Counts per (month, group) for the overall view (one group) and each dimension."""

    num: dict[str, np.ndarray]
    den: dict[str, np.ndarray]
    excluded: dict[str, np.ndarray]


def tally(months: MonthIndex, groups: Groups, month: np.ndarray, codes: dict[str, np.ndarray],
           weight: np.ndarray) -> dict[str, np.ndarray]:  # fmt: skip
    keep = (month >= 0) & weight
    n = len(months)
    out = {"overall": np.bincount(month[keep], minlength=n).reshape(n, 1)}
    for dim, labels in groups.labels.items():
        flat = month[keep] * len(labels) + codes[dim][keep]
        out[dim] = np.bincount(flat, minlength=n * len(labels)).reshape(n, len(labels))
    return out


def counts(months: MonthIndex, groups: Groups, month, codes, num, den, excluded=None) -> Counts:
    none = np.zeros(len(month), bool)
    return Counts(
        tally(months, groups, month, codes, num & den),
        tally(months, groups, month, codes, den),
        tally(months, groups, month, codes, none if excluded is None else excluded),
    )
