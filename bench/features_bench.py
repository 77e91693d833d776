"""Benchmark: monthly feature snapshots with our pipeline (DuckDB, Spark) against plain pandas.

    python -m bench.features_bench --customers 1000000 --months 18 --snapshots 12
    python -m bench.features_bench --customers 20000 --months 12 --snapshots 3   # smoke size

The data is the demo bank (`keepwell.demo`), generated once into `--data-root` and reused. Every
run is a separate process, so that its peak memory is its own: the parent polls the resident
memory of the child and all its descendants (Spark's JVM included) with psutil. The runs:

- `pandas`: `bench.pandas_features`, a straightforward pandas loop over the as-of dates, for the
  subset (transaction count and amount in 30/90/180 days, days since the last transaction, the
  30-day frequency against the 90-day monthly average, distinct channels in 90 days);
- `duckdb-subset` / `spark-subset`: our pipeline for the same subset (same definitions as the
  full spec, only these features kept);
- `duckdb-full` (and `spark-full` with --spark-full): every feature of the default spec.

The subset values of every run are compared with pandas (counts exactly, sums to 1e-9 relative)
before any time is reported. Results go to a Markdown table (`--report`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.pandas_features import SUBSET

REPO = Path(__file__).resolve().parents[1]
KINDS = ("pandas", "duckdb-subset", "duckdb-full", "spark-subset", "spark-full")
EXACT = tuple(c for c in SUBSET if "count" in c or "channels" in c or "days_since" in c)
RELATIVE = 1e-9


@dataclass
class RunResult:
    kind: str
    seconds: float  # building and writing, measured inside the process
    validate_seconds: float  # opening the tables and checking the contract (not in pandas)
    process_seconds: float  # the whole process, interpreter start and imports included
    peak_rss_bytes: int  # the process and its descendants, polled every 50 ms
    rows: int
    columns: int
    output: str
    error: str | None = None


# ------------------------------------------------------------------------------------ the data


def ensure_data(root: Path, customers: int, months: int, seed: int) -> Path:
    """The demo bank for these parameters, generated once (in a child process) and reused."""
    folder = root / f"demo_{customers}c_{months}m_s{seed}"
    marker = folder / "bench.json"
    if marker.exists():
        return folder
    print(f"generating the demo bank: {customers:,} customers, {months} months -> {folder}")
    started = time.perf_counter()
    code = (
        "from pathlib import Path; from keepwell.config import load_config; "
        "from keepwell.demo import generate; cfg = load_config(); "
        f"demo = cfg.demo.model_copy(update={{'customers': {customers}, 'months': {months}, "
        f"'seed': {seed}}}); generate(demo, cfg, Path({str(folder)!r}))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    seconds = time.perf_counter() - started
    info = {"customers": customers, "months": months, "seed": seed, "seconds": seconds}
    marker.write_text(json.dumps(info))
    return folder


def bench_dates(folder: Path, snapshots: int) -> list[dt.date]:
    """`snapshots` month starts, the last one the first of the month after the data ends."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from features.pipeline import monthly_as_of_dates

    ts = pq.read_table(folder / "transactions.parquet", columns=["ts"]).column("ts")
    last = pc.max(ts).as_py().date()
    first_of_next = dt.date(last.year + (last.month == 12), last.month % 12 + 1, 1)
    return monthly_as_of_dates(first_of_next, snapshots)


# ------------------------------------------------------------------------------ one measurement


def _subset_spec(config):
    from features.definitions import default_spec

    spec = default_spec(config)
    return spec.select(SUBSET)


def worker(kind: str, data: Path, dates: list[dt.date], out: Path, workdir: Path, mem: int) -> dict:
    """Run one measurement in this process; returns what the parent reports."""
    started = time.perf_counter()
    if kind == "pandas":
        from bench.pandas_features import build

        df = build(data, dates)
        df.to_parquet(out, index=False)
        return {"seconds": time.perf_counter() - started, "rows": len(df), "columns": df.shape[1]}
    from features.engines import connect
    from features.pipeline import build_snapshot_table, open_data, write_table
    from keepwell.config import load_config

    config = load_config()
    engine, what = kind.split("-")
    if engine == "duckdb":
        backend = connect("duckdb", workdir, memory_limit=f"{mem}GB")
    else:
        conf = {"spark.driver.memory": f"{mem}g", "spark.sql.shuffle.partitions": "8"}
        backend = connect("spark", workdir, spark_conf=conf)
    loaded = open_data(data, backend=backend, workdir=workdir)  # includes the contract check
    checked = time.perf_counter()
    spec = _subset_spec(config) if what == "subset" else None
    build = build_snapshot_table(loaded, dates, config, spec=spec)
    table = build.table
    if what == "subset":
        table = table.select("customer_id", "as_of", *SUBSET)
    rows = write_table(table, backend, out)
    return {
        "seconds": time.perf_counter() - checked,
        "validate_seconds": checked - started,
        "rows": rows,
        "columns": len(table.columns),
    }


def measure(kind: str, data: Path, dates: list[dt.date], work: Path, mem: int) -> RunResult:
    """Run `kind` in a child process and poll its (and its children's) resident memory."""
    import psutil

    out = work / f"{kind}.parquet"
    cmd = [
        sys.executable, "-m", "bench.features_bench", "--worker", kind, "--data", str(data),
        "--out", str(out), "--workdir", str(work / kind), "--memory-gb", str(mem),
        "--dates", *[d.isoformat() for d in dates],
    ]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    parent = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            procs = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(_rss(p) for p in procs))
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.05)
    stdout, stderr = proc.communicate()
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        tail = stderr.decode(errors="replace").strip().splitlines()[-15:]
        error = "\n".join(tail)
        return RunResult(kind, float("nan"), 0.0, elapsed, peak, 0, 0, str(out), error)
    info = json.loads(stdout.decode().strip().splitlines()[-1])
    return RunResult(
        kind,
        info["seconds"],
        info.get("validate_seconds", 0.0),
        elapsed,
        peak,
        info["rows"],
        info["columns"],
        str(out),
    )


def _rss(p) -> int:
    try:
        return p.memory_info().rss
    except Exception:  # the process ended between listing and reading
        return 0


# ----------------------------------------------------------------------------- checking values


def compare(reference: pd.DataFrame, other: pd.DataFrame, name: str) -> list[str]:
    """Differences between two subset tables: rows, then every value of every column."""
    keys = ["customer_id", "as_of"]
    a = reference.assign(as_of=pd.to_datetime(reference.as_of)).set_index(keys).sort_index()
    b = other.assign(as_of=pd.to_datetime(other.as_of)).set_index(keys).sort_index()
    problems = []
    if not a.index.equals(b.index):
        only_a, only_b = a.index.difference(b.index), b.index.difference(a.index)
        problems.append(
            f"{name}: rows differ: {len(only_a)} only in pandas (e.g. {list(only_a[:3])}), "
            f"{len(only_b)} only in {name} (e.g. {list(only_b[:3])})"
        )
        common = a.index.intersection(b.index)
        a, b = a.loc[common], b.loc[common]
    for col in SUBSET:
        x = a[col].astype("float64").to_numpy()
        y = b[col].astype("float64").to_numpy()
        both_null = np.isnan(x) & np.isnan(y)
        if col in EXACT:
            bad = ~both_null & (x != y)
        else:
            scale = np.maximum(np.abs(x), np.abs(y))
            bad = ~both_null & ~(np.abs(x - y) <= RELATIVE * np.maximum(scale, 1e-300))
            bad |= np.isnan(x) != np.isnan(y)
        if bad.any():
            i = np.flatnonzero(bad)[:3]
            examples = [(a.index[j], x[j], y[j]) for j in i]
            problems.append(f"{name}.{col}: {int(bad.sum())} values differ, e.g. {examples}")
    return problems


# ----------------------------------------------------------------------------- online lookups


def lookup_timings(data: Path, work: Path, config) -> dict[int, float]:
    """Microseconds per `OnlineStore.lookup` of 1, 10, 100 and 1,000 ids (in-memory store)."""
    from features.pipeline import materialize_latest
    from features.store import OnlineStore

    summary = materialize_latest(data, work / "online.duckdb", config, workdir=work / "store")
    timings = {}
    with OnlineStore(summary.path) as store:
        all_ids = store.customer_ids()
        rng = np.random.default_rng(0)
        store.lookup(list(rng.choice(all_ids, 10)))  # warm up
        for k in (1, 10, 100, 1000):
            picks = [list(rng.choice(all_ids, k)) for _ in range(50)]
            started = time.perf_counter()
            for ids in picks:
                store.lookup(ids)
            timings[k] = (time.perf_counter() - started) / len(picks) * 1e6
    return timings


# ------------------------------------------------------------------------------------- report


def render(
    results: list[RunResult],
    problems: list[str],
    params: dict,
    lookups: dict[int, float] | None,
) -> str:
    pandas = next((r for r in results if r.kind == "pandas" and r.error is None), None)
    lines = [
        "# Feature pipeline benchmark",
        "",
        f"Data: the demo bank, {params['customers']:,} customers over {params['months']} months "
        f"({params['transactions']:,} transactions); {len(params['dates'])} monthly snapshots "
        f"{params['dates'][0]} .. {params['dates'][-1]}. Machine: {os.cpu_count()} cores, "
        f"{params['ram_gb']:.0f} GiB RAM; Spark local[2]. Measured {params['when']} with "
        "`python -m bench.features_bench "
        f"--customers {params['customers']} --months {params['months']} "
        f"--snapshots {len(params['dates'])}`.",
        "",
        "*Build* is computing the snapshots and writing them to one Parquet file (pandas: "
        "reading the tables too; our pipeline reads them lazily while it builds), timed inside "
        "the run's own process. *Contract check* is opening the folder and validating every "
        "table against the data contract, which only our pipeline does; it is not in the "
        "ratio. Peak memory is the resident memory of the run's process and its children "
        "(Spark's JVM included), polled every 50 ms. *Subset*: the features the pandas "
        "baseline implements. The machine is shared: repeated runs vary by up to a third.",
        "",
        "| run | features | rows | build (s) | contract check (s) | peak memory (GB) "
        "| build speed vs pandas |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r.error is not None:
            lines.append(f"| {r.kind} | - | - | failed | - | {r.peak_rss_bytes / 1e9:.2f} | - |")
            continue
        ratio = "-"
        if pandas is not None:
            x = pandas.seconds / r.seconds
            ratio = f"{x:.1f}x" if x >= 0.1 else f"{x:.2f}x"
        check = "-" if r.kind == "pandas" else f"{r.validate_seconds:.1f}"
        lines.append(
            f"| {r.kind} | {r.columns - 2} | {r.rows:,} | {r.seconds:.1f} | {check} | "
            f"{r.peak_rss_bytes / 1e9:.2f} | {ratio} |"
        )
    lines += ["", "Values: " + ("every subset value agrees with pandas." if not problems else "")]
    lines += [f"- {p}" for p in problems]
    failed = [r for r in results if r.error]
    for r in failed:
        lines += ["", f"`{r.kind}` failed:", "", "```", r.error, "```"]
    if lookups:
        lines += [
            "",
            "Online lookups (`OnlineStore.lookup`, snapshot held in memory), per call:",
            "",
            "| ids per call | 1 | 10 | 100 | 1,000 |",
            "|---|---:|---:|---:|---:|",
            "| microseconds | "
            + " | ".join(f"{lookups[k]:,.0f}" for k in (1, 10, 100, 1000))
            + " |",
        ]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> tuple[list[RunResult], list[str], str]:
    import psutil
    import pyarrow.parquet as pq

    from bench.report import update_section
    from keepwell.config import load_config
    from keepwell.io import write_text

    data = (
        Path(args.data)
        if args.data
        else ensure_data(Path(args.data_root), args.customers, args.months, args.seed)
    )
    dates = bench_dates(data, args.snapshots)
    work = Path(args.work) / f"run_{data.name}"
    work.mkdir(parents=True, exist_ok=True)
    kinds = [k for k in args.runs.split(",") if k]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise SystemExit(f"unknown run(s) {bad}; choose from {KINDS}")
    results = []
    for kind in kinds:
        print(f"running {kind} ...", flush=True)
        result = measure(kind, data, dates, work, args.memory_gb)
        print(
            f"  {kind}: {result.seconds:.1f} s, peak {result.peak_rss_bytes / 1e9:.2f} GB"
            + (f"\n  FAILED:\n{result.error}" if result.error else ""),
            flush=True,
        )
        results.append(result)
    problems: list[str] = []
    reference = next((r for r in results if r.kind == "pandas" and r.error is None), None)
    if reference is not None:
        ref = pd.read_parquet(reference.output, columns=["customer_id", "as_of", *SUBSET])
        for r in results:
            if r.kind == "pandas" or r.error:
                continue
            other = pd.read_parquet(r.output, columns=["customer_id", "as_of", *SUBSET])
            problems += compare(ref, other, r.kind)
    lookups = lookup_timings(data, work, load_config()) if args.lookups else None
    params = {
        "customers": args.customers,
        "months": args.months,
        "transactions": pq.ParquetFile(data / "transactions.parquet").metadata.num_rows,
        "dates": dates,
        "ram_gb": psutil.virtual_memory().total / 2**30,
        "when": dt.date.today().isoformat(),
    }
    text = render(results, problems, params, lookups)
    if args.report:
        write_text(args.report, text)
        print(f"report written to {args.report}")
    else:
        update_section("features", text.replace("# ", "## ", 1))
        print("report written to docs/benchmarks.md")
    (work / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    return results, problems, text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.features_bench", description=__doc__)
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--months", type=int, default=18)
    p.add_argument("--snapshots", type=int, default=12)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--data", help="use this folder of bank tables instead of the demo bank")
    p.add_argument("--data-root", default=str(REPO / "workspace" / "bench"))
    p.add_argument("--work", default=str(REPO / "workspace" / "bench"))
    p.add_argument("--runs", default="pandas,duckdb-subset,duckdb-full,spark-subset")
    p.add_argument("--memory-gb", type=int, default=6, help="DuckDB memory_limit, Spark driver")
    p.add_argument(
        "--report", help="write the report here (default: its docs/benchmarks.md section)"
    )
    p.add_argument("--no-lookups", dest="lookups", action="store_false")
    # one measurement, in a child process
    p.add_argument("--worker", choices=KINDS, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    p.add_argument("--dates", nargs="*", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.worker:
        dates = [dt.date.fromisoformat(d) for d in args.dates]
        info = worker(
            args.worker, Path(args.data), dates, Path(args.out), Path(args.workdir), args.memory_gb
        )
        print(json.dumps(info))
        return 0
    results, problems, text = run(args)
    print(text)
    return 1 if problems or any(r.error for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
