"""Demo bank simulator: time and peak memory at 10k, 100k and 1M customers (12 months).

    python -m bench.demo_bench [--sizes 10000 100000 1000000] [--months 12]

Each size runs in its own process, so the peak resident memory is that run's alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.report import machine, table, update_section

CHILD = """
import json, resource, sys, time
from pathlib import Path
from rich.console import Console
from keepwell.config import load_config
from keepwell.demo import generate
cfg = load_config()
demo = cfg.demo.model_copy(update={"customers": int(sys.argv[1]), "months": int(sys.argv[2])})
began = time.perf_counter()
summary = generate(demo, cfg, Path(sys.argv[3]), console=Console(quiet=True))
seconds = time.perf_counter() - began
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
size_mb = sum(p.stat().st_size for p in Path(sys.argv[3]).iterdir()) / 1e6
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "rows": summary.rows, "disk_mb": size_mb,
                  "churn": summary.churn_rate_90d, "complaint": summary.complaint_rate_90d}))
"""


def run(customers: int, months: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="kw-demo-bench-") as tmp:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(customers), str(months), str(Path(tmp) / "bank")],
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--months", type=int, default=12)
    args = ap.parse_args(argv)
    rows = []
    for n in args.sizes:
        r = run(n, args.months)
        print(f"{n:>9,} customers: {r['seconds']:.1f} s, peak {r['peak_mb']:,.0f} MB", flush=True)
        rows.append(
            [
                f"{n:,}",
                f"{r['rows']['transactions']:,}",
                f"{r['rows']['sessions']:,}",
                f"{r['seconds']:.1f}",
                f"{r['seconds'] / n * 1e6:.0f}",
                f"{r['peak_mb']:,.0f}",
                f"{r['disk_mb']:,.0f}",
                f"{r['churn']:.1%} / {r['complaint']:.1%}",
            ]
        )
    md = (
        f"## Demo bank simulator ({args.months} months)\n\n"
        "`python -m bench.demo_bench` (part of `make bench`). One process per size; peak is the "
        "process's maximum resident memory. Customers are generated and written in chunks of "
        "`demo.chunk_customers` (50,000), so memory grows with the chunk, not the bank.\n\n"
        + table(
            [
                "customers",
                "transactions",
                "log-ins",
                "seconds",
                "us / customer",
                "peak MB",
                "Parquet MB",
                "oracle churn / complaint (90 d)",
            ],
            rows,
        )
        + f"\n\nMachine: {machine()}, 2 cores.\n"
    )
    update_section("demo", md)


if __name__ == "__main__":
    main()
