"""Generate the demo bank in chunks of customers and write it as Parquet tables.

Each chunk has its own random streams derived from (seed, chunk number), so the output is the same
bytes for the same seed and chunk size, and memory stays bounded by the chunk, not the bank.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from keepwell.config import SEGMENTS, Config, DemoConfig
from keepwell.demo import arrow, emit
from keepwell.demo.population import Customers, make_customers, make_rms
from keepwell.demo.process import NO_EVENT, State, oracle, step
from keepwell.io import atomic_dir

BURN_IN_MONTHS = 6
TABLES = (
    "customers",
    "rms",
    "holdings",
    "balances",
    "transactions",
    "sessions",
    "complaints",
    "callbacks",
    "oracle",
)


@dataclass
class DemoSummary:
    out: Path
    rows: dict[str, int]
    seconds: float
    churn_rate_90d: float
    complaint_rate_90d: float

    def render(self) -> Table:
        t = Table(title=f"Demo bank written to {self.out}", show_header=True)
        t.add_column("table")
        t.add_column("rows", justify="right")
        for name, count in self.rows.items():
            t.add_row(name, f"{count:,}")
        t.caption = (
            f"oracle base rates over 90 days: churn {self.churn_rate_90d:.1%}, "
            f"complaint {self.complaint_rate_90d:.1%}; {self.seconds:.1f} s"
        )
        return t


def month_calendar(start, months_before: int, months_after: int) -> np.ndarray:
    """Day numbers (days since 1970-01-01) of month starts from start-months_before on."""
    first = np.datetime64(start, "M") - months_before
    return (
        np.arange(first, first + months_before + months_after + 1).astype("datetime64[D]")
    ).astype(np.int64)


def _initial_state(static, start_day: int, rng: np.random.Generator) -> State:
    n = static.mu.shape[0]
    e = (static.mu + rng.normal(0, 0.4, n)).astype(np.float32)
    return State(
        e=e,
        e_hist=np.repeat(e[:, None], 3, axis=1),
        episode_left=np.zeros(n, np.int8),
        since_complaint=np.full(n, NO_EVENT, np.int16),
        since_breach=np.full(n, NO_EVENT, np.int16),
        unsuitable=np.zeros(n, np.int16),
        protection=np.zeros((n, 3), np.float32),
        next_quarterly=(start_day + rng.integers(0, 91, n)).astype(np.int32),
    )


def _simulate_chunk(
    demo: DemoConfig, config: Config, rms, chunk: int, first: int, n: int, progress, task
) -> dict[str, pa.Table]:
    seq = np.random.SeedSequence([demo.seed, chunk])
    pop_rng, burn_rng, step_rng, emit_rng = (
        np.random.Generator(np.random.PCG64(s)) for s in seq.spawn(4)
    )
    cal = month_calendar(demo.start, BURN_IN_MONTHS, demo.months + 4)
    start_day = int(cal[BURN_IN_MONTHS])
    end_day = int(cal[BURN_IN_MONTHS + demo.months])
    people: Customers = make_customers(demo, rms, first, n, start_day, end_day, pop_rng)
    static = people.static
    policy = config.policy
    het, holdout = demo.effect_heterogeneity, policy.holdout_share

    state = _initial_state(static, int(cal[0]), burn_rng)
    book = emit.Book(people, rms, start_day, end_day, config, emit_rng)
    state.unsuitable = book.initial_holdings(static).astype(np.int16)
    # Burn-in: let engagement, grievances and callback protection reach their usual mix (no churn).
    for m in range(BURN_IN_MONTHS):
        state, _ = step(
            static, state, int(cal[m]), int(cal[m + 1] - cal[m]), burn_rng, het, holdout
        )
    alive = np.ones(n, dtype=bool)
    fresh = static.opened_day >= start_day
    oracle_parts = []
    for m in range(demo.months):
        k = BURN_IN_MONTHS + m
        day, days = int(cal[k]), int(cal[k + 1] - cal[k])
        # joiners arrive with a fresh state in their month
        arriving = fresh & (static.opened_day >= day) & (static.opened_day < day + days)
        if arriving.any():
            book.reset_joiners(state, static, arriving)
        active = alive & (static.opened_day < day)
        idx = np.flatnonzero(active)
        if idx.size:
            months = [(int(cal[k + j]), int(cal[k + j + 1] - cal[k + j])) for j in range(4)]
            p_churn, p_complaint, effect = oracle(
                static.take(idx),
                state.take(idx),
                months,
                config.labels.horizon_days,
                demo.oracle_draws,
                np.random.SeedSequence([demo.seed, chunk, 1000 + m]),
                het,
                holdout,
            )
            oracle_parts.append(
                (idx, np.full(idx.size, day, np.int32), p_churn, p_complaint, effect)
            )
        new_state, month = step(static, state, day, days, step_rng, het, holdout)
        present = alive & (static.opened_day < day + days)
        book.emit_month(day, days, state, new_state, month, present)
        alive &= ~(month.churned & present)
        state = new_state
        progress.advance(task)
    return book.tables(oracle_parts)


def generate(
    demo: DemoConfig, config: Config, out: Path, console: Console | None = None
) -> DemoSummary:
    """Write the demo bank to `out` (replaced atomically: a crash leaves the old folder or none)."""
    began = time.perf_counter()
    console = console or Console(stderr=True)
    rms = make_rms(
        demo, config, np.random.Generator(np.random.PCG64(np.random.SeedSequence([demo.seed])))
    )
    chunks = list(range(0, demo.customers, demo.chunk_customers))
    rows = dict.fromkeys(TABLES, 0)
    churn_sum = complaint_sum = 0.0
    oracle_rows = 0
    with atomic_dir(out) as tmp:
        writers: dict[str, pq.ParquetWriter] = {}
        with Progress(
            TextColumn("[bold]demo bank"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("customer-months x {task.fields[scale]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task(
                "simulate", total=len(chunks) * demo.months, scale=demo.chunk_customers
            )
            try:
                for c, first in enumerate(chunks):
                    n = min(demo.chunk_customers, demo.customers - first)
                    tables = _simulate_chunk(demo, config, rms, c, first, n, progress, task)
                    for name, table in tables.items():
                        if name not in writers:
                            writers[name] = pq.ParquetWriter(tmp / f"{name}.parquet", table.schema)
                        writers[name].write_table(table)
                        rows[name] += table.num_rows
                    o = tables["oracle"]
                    churn_sum += float(pa.compute.sum(o["p_churn"]).as_py() or 0)
                    complaint_sum += float(pa.compute.sum(o["p_complaint"]).as_py() or 0)
                    oracle_rows += o.num_rows
                rms_table = arrow.rms_table(rms)
                pq.write_table(rms_table, tmp / "rms.parquet")
                rows["rms"] = rms_table.num_rows
            finally:
                for w in writers.values():
                    w.close()
        meta = {
            "generator": "keepwell demo bank",
            "customers": demo.customers,
            "months": demo.months,
            "seed": demo.seed,
            "start": str(demo.start),
            "chunk_customers": demo.chunk_customers,
            "effect_heterogeneity": demo.effect_heterogeneity,
            "holdout_share": config.policy.holdout_share,
            "horizon_days": config.labels.horizon_days,
            "segments": list(SEGMENTS),
        }
        (tmp / "demo.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return DemoSummary(
        out=out,
        rows=rows,
        seconds=time.perf_counter() - began,
        churn_rate_90d=churn_sum / max(oracle_rows, 1),
        complaint_rate_90d=complaint_sum / max(oracle_rows, 1),
    )
