"""Planner time: `keepwell plan` for one day of a 1,000,000-customer, 2,000-RM demo bank.

    python -m bench.planner_bench [--customers 1000000] [--months 18] [--model-customers 100000]

Champion models are trained once on a smaller demo bank with the same feature spec (9 monthly
snapshots: quality is not what is measured here) and cached in `workspace/bench/planner_models`.
The plan then runs in a child process against a scratch copy of that workspace, for the day after
the big bank's newest event, with the snapshot built from its tables (no online store), so the
time covers everything: contract check and feature build of 1M customers, the bank's tables and
due policy tasks, scoring, composing, reasons for every listed customer and writing 2,000 lists.

Baseline, in the same child and on the same features: plain in-process LightGBM scoring of the
whole book by both champions (`FittedModel.predict_proba`), the least any planner must do.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.features_bench import ensure_data
from bench.report import machine, table, update_section

REPO = Path(__file__).resolve().parents[1]

TRAIN = """
import sys
from pathlib import Path
from keepwell.config import load_config
from keepwell.workspace import Workspace
from training.registry import CHAMPION, set_alias
from training.run import train

data, root = Path(sys.argv[1]), Path(sys.argv[2])
cfg = load_config(overrides={"training": {"split": {"snapshots": 9, "valid_snapshots": 1,
                                                     "test_snapshots": 1}}})
result = train(data, cfg, Workspace.open(root, cfg))
for model in result.models.values():
    set_alias(model.name, CHAMPION, model.version)
"""

CHILD = """
import json, resource, sys, time
from pathlib import Path
from keepwell.config import load_config
from keepwell.workspace import Workspace
from features.pipeline import open_data
from serving.planning.job import plan_day

data, root = Path(sys.argv[1]), Path(sys.argv[2])
cfg = load_config()
ws = Workspace.open(root, cfg)
day = open_data(data).data_end
steps = []
began = time.perf_counter()
result = plan_day(ws, cfg, day, data_dir=data, say=lambda m: steps.append(
    (time.perf_counter() - began, m)))
seconds = time.perf_counter() - began
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
# baseline: plain LightGBM on the same book
import pandas as pd
from serving.planning.write import load_scorer
scorer, _ = load_scorer(ws, cfg, day, data, lambda m: None)
frame = scorer.snapshot.frame(list(scorer.snapshot.columns))
t0 = time.perf_counter()
for served in scorer.models.values():
    served.fitted.predict_proba(frame, threads=1)
baseline = time.perf_counter() - t0
s = result.summary
print(json.dumps({
    "day": str(day), "seconds": seconds, "peak_mb": peak, "stages": result.seconds,
    "baseline_seconds": baseline, "steps": steps,
    "customers": s["customers"], "rms": s["rms"], "tasks": s["tasks"], "by_rule": s["by_rule"],
    "special_care": s["special_care"], "dropped": s["dropped_by_capacity"],
    "deferred": s["deferred"], "held_out": s["held_out"],
    "files": len(list(result.folder.iterdir())),
}))
"""


def ensure_models(root: Path, data: Path) -> Path:
    """A workspace whose registry has champions trained on `data` (cached)."""
    marker = root / "champions.done"
    if marker.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    print(f"training champion models on {data} -> {root}")
    subprocess.run([sys.executable, "-c", TRAIN, str(data), str(root)], check=True, cwd=REPO)
    marker.write_text("ok")
    return root


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--months", type=int, default=18)
    p.add_argument("--model-customers", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--data-root", default=str(REPO / "workspace" / "bench"))
    args = p.parse_args(argv)
    root = Path(args.data_root)
    data = ensure_data(root, args.customers, args.months, args.seed)
    model_data = ensure_data(root, args.model_customers, 24, args.seed)
    models = ensure_models(root / "planner_models", model_data)
    with tempfile.TemporaryDirectory(prefix="kw-plan-bench-", dir=root) as tmp:
        ws = Path(tmp) / "ws"
        shutil.copytree(models, ws, ignore=shutil.ignore_patterns("lists", "tasks", "audit"))
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(data), str(ws)],
            capture_output=True, text=True, check=True, cwd=REPO,
        )  # fmt: skip
    r = json.loads(out.stdout.strip().splitlines()[-1])
    stages = [[k.replace("_", " "), f"{v:.1f}"] for k, v in r["stages"].items()]
    rules = ", ".join(f"{k} {v:,}" for k, v in r["by_rule"].items())
    lines = [
        "## Planner",
        "",
        f"`python -m bench.planner_bench` ({machine()}): `keepwell plan` for {r['day']} on the "
        f"demo bank of {args.customers:,} customers ({args.months} months, seed {args.seed}): "
        f"{r['customers']:,} active customers, {r['rms']:,} RMs. The feature snapshot is built "
        "from the bank's tables (no online store), so this is the whole job.",
        "",
        f"**Total: {r['seconds']:.0f} s, peak memory {r['peak_mb'] / 1024:.2f} GB**, "
        f"{r['files']:,} files written. Baseline in the same run: plain in-process LightGBM "
        f"scoring of the same {r['customers']:,} customers by both models took "
        f"{r['baseline_seconds']:.1f} s, so the whole plan costs "
        f"{r['seconds'] / r['baseline_seconds']:.1f}x bare scoring.",
        "",
        table(["stage", "seconds"], stages),
        "",
        f"Tasks: {r['tasks']:,} ({rules}); special care {r['special_care']:,}; ordinary risk "
        f"tasks dropped by capacity {r['dropped']:,}; special-care tasks deferred "
        f"{r['deferred']:,}; held out (risk holdout) {r['held_out']:,}.",
    ]
    md = "\n".join(lines)
    update_section("planner", md)
    print(md)


if __name__ == "__main__":
    main()
