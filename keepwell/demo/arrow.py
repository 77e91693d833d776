"""Arrow columns of the demo bank: day numbers to UTC timestamps, and the RM table."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from keepwell.demo.population import Rms

US_PER_DAY = 86_400_000_000
TS = pa.timestamp("us", tz="UTC")


def _us(days: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(days, dtype=np.float64) * US_PER_DAY).astype(np.int64)


def _ts(days: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    us = _us(np.nan_to_num(days, nan=0.0))
    mask = None if valid is None else ~valid
    return pa.array(us, type=pa.int64(), mask=mask).cast(TS)


def rms_table(rms: Rms) -> pa.Table:
    return pa.table(
        {
            "rm_id": pa.array(rms.rm_id, pa.string()),
            "branch_id": pa.array(rms.branch_id, pa.string()),
            "capacity_per_day": pa.array(rms.capacity, pa.int64()),
        }
    )
