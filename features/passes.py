"""Which snapshots `features.build.build_features` computes together ("passes").

A pass groups consecutive as-of dates into one query part: each table's aggregates for those
snapshots are evaluated only on the rows that can count for one of them, and one more pass
means reading the tables once more. `plan_passes` picks the size with the cheapest `pass_cost`,
under a cap that keeps the per-customer wide table small.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

# Per-snapshot aggregates per pass, over all tables: bounds the width of the per-customer tables
# and so the memory (about 16 bytes per customer and aggregate while a pass runs).
MAX_AGGREGATES_PER_PASS = 320


def plan_passes(
    dates: list[dt.date],
    per_snapshot: int,
    snapshots_per_pass: int | None,
    lookback_days: int | None = None,
) -> list[list[int]]:
    """Consecutive groups of snapshot indexes, one query part per group.

    With `snapshots_per_pass` None, the size is the cheapest under `pass_cost`, capped by
    MAX_AGGREGATES_PER_PASS (memory); without `lookback_days` (no table skips old rows) a pass
    saves nothing, so passes are as large as the cap allows.
    """
    cap = max(1, MAX_AGGREGATES_PER_PASS // max(per_snapshot, 1))
    if snapshots_per_pass is None and lookback_days is None:
        snapshots_per_pass = cap
    if snapshots_per_pass is None:
        sizes = range(1, min(cap, len(dates)) + 1)
        costs = {
            size: pass_cost(chunks(dates, size), dates, per_snapshot, lookback_days)
            for size in sizes
        }
        snapshots_per_pass = min(costs, key=lambda size: (costs[size], -size))
    return chunks(dates, max(1, snapshots_per_pass))


def chunks(dates: Sequence[dt.date], size: int) -> list[list[int]]:
    idx = list(range(len(dates)))
    return [idx[i : i + size] for i in range(0, len(idx), size)]


# One more pass re-reads the event tables; measured on the 1M-customer benchmark, a scan with its
# slot columns costs about as much as 24 per-snapshot aggregates over the same rows.
SCAN_COST_AGGREGATES = 24


def pass_cost(
    passes: list[list[int]], dates: Sequence[dt.date], per_snapshot: int, lookback_days: int
) -> float:
    """Estimated work of `passes`, in per-row aggregates over a whole event table.

    A pass reads every row once (SCAN_COST_AGGREGATES) and evaluates its snapshots' aggregates
    only on the rows that can count for one of them: those from `lookback_days` before its first
    as_of to its last one (older rows go to the cheap history aggregate). Events are taken as
    spread evenly over the days from `lookback_days` before the first as_of to the last.
    """
    whole = (dates[-1] - dates[0]).days + lookback_days
    total = 0.0
    for idx in passes:
        span = (dates[idx[-1]] - dates[idx[0]]).days + lookback_days
        share = span / whole if whole > 0 else 1.0
        total += SCAN_COST_AGGREGATES + share * per_snapshot * len(idx)
    return total
