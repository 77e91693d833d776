"""`make bench`: run every benchmark and rewrite its section of docs/benchmarks.md."""

from __future__ import annotations

import importlib
import sys

from keepwell.privacy import disable_telemetry

BENCHES = [
    "bench.demo_bench",
    "bench.features_bench",
    "bench.crossval_bench",
    "bench.serving_bench",
    "bench.planner_bench",
    "bench.simulation_bench",
]


def main() -> None:
    disable_telemetry()  # before any benchmark imports MLflow or BentoML
    names = sys.argv[1:] or BENCHES
    for name in names:
        print(f"== {name}", flush=True)
        importlib.import_module(name).main([])


if __name__ == "__main__":
    main()
