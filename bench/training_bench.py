"""Training time: `keepwell train` on 12 monthly snapshots of 100,000 demo customers.

    python -m bench.training_bench [--customers 100000] [--snapshots 12] [--months 24]

The demo bank is generated once (cached next to the feature benchmark's) and the whole training
job runs in a child process against a scratch workspace: feature and label build, split, the
candidate shapes per target with their explain timings, calibration, baselines, evaluation,
plots, model cards and registration. Each step's wall time comes from the job's own progress
messages; the peak resident memory is the child's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.features_bench import ensure_data
from bench.report import machine, table, update_section

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time
from pathlib import Path
from keepwell.config import load_config
from keepwell.workspace import Workspace
from training.run import train

data, root, snapshots = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
cfg = load_config(overrides={"training": {"split": {"snapshots": snapshots}}})
steps = []
began = time.perf_counter()
def progress(message):
    steps.append((time.perf_counter() - began, message))
result = train(data, cfg, Workspace.open(root, cfg), progress=progress)
seconds = time.perf_counter() - began
ev = result.evaluation.targets
print(json.dumps({
    "seconds": seconds,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "rows": {"train": len(result.prepared.train), "valid": len(result.prepared.valid),
             "test": len(result.prepared.test)},
    "split": result.split.describe(),
    "steps": steps,
    "shapes": result.shapes,
    "auc": {t: {k: ev[t][k]["roc_auc"] for k in ("model", "logistic", "oracle") if k in ev[t]}
            for t in ev},
}))
"""


def stage_seconds(steps: list[list]) -> list[tuple[str, float]]:
    """Wall time of each step: from its message to the next one."""
    out = []
    for (t0, message), (t1, _) in zip(steps, [*steps[1:], steps[-1]], strict=True):
        out.append((message, t1 - t0))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--months", type=int, default=24)
    p.add_argument("--snapshots", type=int, default=12)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--data-root", default=str(REPO / "workspace" / "bench"))
    args = p.parse_args()
    data = ensure_data(Path(args.data_root), args.customers, args.months, args.seed)
    with tempfile.TemporaryDirectory(prefix="kw-train-bench-") as tmp:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(data), tmp, str(args.snapshots)],
            capture_output=True, text=True, check=True, cwd=REPO,
        )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    stages = stage_seconds(result["steps"])
    slowest = sorted(stages, key=lambda s: -s[1])[:8]
    rows = result["rows"]
    shape_rows = [
        [t, s.get("num_leaves"), s.get("max_depth"), s.get("trees"),
         f"{s.get('valid_roc_auc', float('nan')):.4f}", f"{s.get('predict_us_per_row', 0):.1f}",
         f"{s.get('explain_us_per_row', 0):.1f}", f"{s.get('projected_explain_seconds', 0):.1f}",
         "yes" if s.get("chosen") else ""]
        for t, shapes in result["shapes"].items() for s in shapes
    ]  # fmt: skip

    def auc_text(target: str, v: dict) -> str:
        text = f"{target}: model {v['model']:.3f}, logistic {v['logistic']:.3f}"
        return text + (f", oracle {v['oracle']:.3f}" if "oracle" in v else "")

    auc = "; ".join(auc_text(t, v) for t, v in result["auc"].items())
    headers = ["target", "leaves", "depth", "trees", "valid ROC-AUC", "predict us/row",
               "explain us/row", "explain 100k (s)", "chosen"]  # fmt: skip
    split = result["split"]
    lines = [
        "## Training time",
        "",
        f"`python -m bench.training_bench --customers {args.customers} --snapshots "
        f"{args.snapshots}` ({machine()}). The whole `keepwell train` job on the demo bank "
        f"({args.customers:,} customers, {args.months} months, seed {args.seed}), "
        f"{args.snapshots} monthly snapshots split by time: {rows['train']:,} training rows, "
        f"{rows['valid']:,} validation rows, {rows['test']:,} test rows (train "
        f"{split['split_train']}, valid {split['split_valid']}, test {split['split_test']}).",
        "",
        f"**Total: {result['seconds']:.0f} s, peak memory {result['peak_mb'] / 1024:.2f} GB.** "
        f"Test ROC-AUC: {auc}.",
        "",
        "Slowest steps (wall seconds, from the job's progress messages):",
        "",
        table(["step", "seconds"], [[m, f"{s:.1f}"] for m, s in slowest]),
        "",
        "Candidate tree shapes (validation ROC-AUC; predict and explain microseconds per row "
        "on the configured cores; projected seconds to explain 100,000 customers):",
        "",
        table(headers, shape_rows),
    ]
    md = "\n".join(lines)
    update_section("training", md)
    print(md)


if __name__ == "__main__":
    main()
