"""Decision simulation across callback-effect heterogeneity: which ranking of risk calls retains
the most customers per 1,000 calls (`keepwell simulate`).

    python -m bench.simulation_bench [--customers 20000] [--settings 0 0.5 1] [--no-report]

For each setting h of `demo.effect_heterogeneity` (0: a callback has the same effect on the
log-odds for everyone; 1: the default mix of persuadables, sleeping dogs, lost causes and sure
things, `keepwell.demo.process`), in child processes and cached under `workspace/bench`:

1. a demo bank with that h (`demo_<customers>c_<months>m_s<seed>_h<h>`);
2. the churn and complaint champions trained on it (`training.run.train`, default configuration,
   aliased `champion`) and, when `training.effect.model` exists, the callback effect model
   (`train_effect`); the simulation uses its *newest* version whatever its alias (champion or
   challenger only, shown in the table), so the benchmark shows what the model does even when
   the promotion rule keeps it from `keepwell plan --rank-by uplift`;
3. `keepwell simulate` for every policy over the last `--sim-months` labelled months.

It writes one table per setting and a plot (`docs/simulation.png`) into the `simulation`
section of docs/benchmarks.md, and checks the must-show criteria of issue 8: with the default
setting, uplift ranking retains at least 1.5x the customers per 1,000 calls that risk ranking
does and at least 80 % of the oracle's; in every setting at least 95 % of risk ranking's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.report import machine, table, update_section
from keepwell.io import atomic_path
from reporting.simulation.core import POLICIES, report_rows

REPO = Path(__file__).resolve().parents[1]
PLOT = REPO / "docs" / "simulation.png"
DEFAULT_SETTING = 1.0  # the demo config's effect_heterogeneity

GENERATE = """
import sys
from pathlib import Path
from keepwell.config import load_config
from keepwell.demo import generate
out, customers, months, seed, h = Path(sys.argv[1]), *map(int, sys.argv[2:5]), float(sys.argv[5])
cfg = load_config()
demo = cfg.demo.model_copy(update={"customers": customers, "months": months, "seed": seed,
                                   "effect_heterogeneity": h})
generate(demo, cfg, out)
"""

TRAIN = """
import sys
from pathlib import Path
from keepwell.config import load_config
from keepwell.workspace import Workspace
from training.registry import CHAMPION, set_alias
from training.run import train

data, root, threads = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
cfg = load_config(overrides={"training": {"threads": threads}})
ws = Workspace.open(root, cfg)
result = train(data, cfg, ws)
for model in result.models.values():
    set_alias(model.name, CHAMPION, model.version)
"""

EFFECT = """
import sys
from pathlib import Path
from keepwell.config import load_config
from keepwell.workspace import Workspace
from reporting.simulation.run import effect_function

data, root, threads = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
cfg = load_config(overrides={"training": {"threads": threads}})
train_effect = effect_function("train_effect")
if train_effect is None:
    print("no callback effect model package (training.effect.model): the uplift policy is left out")
else:
    train_effect(data, cfg, Workspace.open(root, cfg))
    print("trained the callback effect model")
"""

SIMULATE = """
import json, sys
from pathlib import Path
from keepwell.config import load_config
from keepwell.workspace import Workspace
from reporting.simulation.run import load_effect, run_simulation, write_report

data, root, months, calls = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
cfg = load_config()
ws = Workspace.open(root, cfg)
effect = load_effect(ws, cfg, newest=True)  # whatever its alias
report = run_simulation(ws, cfg, data_dir=data, months=months,
                        calls_per_rm=int(calls) if calls != "-" else None, effect_model=effect)
write_report(report, ws.reports)
print(json.dumps(report))
"""


def _run(code: str, *args: Any) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    if out.returncode:
        raise SystemExit(f"child failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return out.stdout


def ensure_bank(root: Path, customers: int, months: int, seed: int, h: float) -> Path:
    """The demo bank for these parameters and heterogeneity, generated once and reused."""
    folder = root / f"demo_{customers}c_{months}m_s{seed}_h{h:g}"
    marker = folder / "bench.json"
    if marker.exists():
        return folder
    print(f"generating the demo bank: {customers:,} customers, {months} months, h={h:g}")
    began = time.perf_counter()
    _run(GENERATE, folder, customers, months, seed, h)
    info = {"customers": customers, "months": months, "seed": seed, "effect_heterogeneity": h}
    marker.write_text(json.dumps({**info, "seconds": time.perf_counter() - began}))
    return folder


def ensure_models(root: Path, data: Path, threads: int) -> Path:
    """A workspace whose registry has champions (and the effect model) trained on `data`."""
    marker = root / "champions.done"
    if marker.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    print(f"training the champions on {data} -> {root}")
    print(_run(TRAIN, data, root, threads).strip())
    marker.write_text("ok")
    return root


def ensure_effect(root: Path, data: Path, threads: int) -> None:
    """The callback effect model in the workspace `root`, trained once when its package exists."""
    marker = root / "effect.done"
    if marker.exists():
        return
    said = _run(EFFECT, data, root, threads).strip()
    print(said)
    if said.startswith("trained"):
        marker.write_text("ok")


def must_show(reports: dict[float, dict[str, Any]]) -> list[tuple[str, bool | None]]:
    """The issue's criteria on retained per 1,000 calls: (text, passed; None = not checked)."""
    out: list[tuple[str, bool | None]] = []

    def rate(h: float, policy: str) -> float | None:
        r = reports[h]["policies"].get(policy)
        return None if r is None else r["retained_per_1000_calls"]

    for h in sorted(reports):
        uplift, risk, oracle = rate(h, "uplift"), rate(h, "risk"), rate(h, "oracle")
        if uplift is None or risk is None:
            out.append((f"h={h:g}: uplift >= 0.95 x risk: not checked (no uplift policy)", None))
            continue
        out.append(
            (f"h={h:g}: uplift {uplift:.1f} >= 0.95 x risk {risk:.1f}", uplift >= 0.95 * risk)
        )
        if h == DEFAULT_SETTING and oracle is not None:
            out.append((f"h={h:g}: uplift {uplift:.1f} >= 1.5 x risk", uplift >= 1.5 * risk))
            out.append(
                (
                    f"h={h:g}: uplift {uplift:.1f} >= 0.8 x oracle {oracle:.1f}",
                    uplift >= 0.8 * oracle,
                )
            )
    if DEFAULT_SETTING not in reports:
        out.append((f"default setting h={DEFAULT_SETTING:g} not run", None))
    return out


def plot(reports: dict[float, dict[str, Any]], path: Path) -> None:
    """Grouped bars: retained customers per 1,000 calls, by policy and setting."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    policies = [
        p for p in POLICIES if p != "none" and any(p in r["policies"] for r in reports.values())
    ]
    settings = sorted(reports)
    fig = Figure(figsize=(7.5, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / max(len(settings), 1)
    x = np.arange(len(policies))
    for i, h in enumerate(settings):
        values = [
            reports[h]["policies"].get(p, {}).get("retained_per_1000_calls", np.nan)
            for p in policies
        ]
        ax.bar(x + (i - (len(settings) - 1) / 2) * width, values, width, label=f"h = {h:g}")
    ax.set_xticks(x, policies, fontsize=9)
    ax.set_ylabel("customers retained per 1,000 calls")
    ax.set_title("Risk-call policies by callback-effect heterogeneity h", fontsize=10, loc="left")
    ax.legend(fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def section(reports: dict[float, dict[str, Any]], args: argparse.Namespace, checks) -> str:
    first = next(iter(reports.values()))["settings"]
    lines = [
        "## Decision simulation",
        "",
        f"`python -m bench.simulation_bench --customers {args.customers}` ({machine()}): for each "
        f"callback-effect heterogeneity h, a demo bank of {args.customers:,} customers "
        f"({args.months} months, seed {args.seed}), champions trained on it, then "
        f"`keepwell simulate` over the last {len(first['months'])} labelled months "
        f"({first['months'][0]} .. {first['months'][-1]}), {first['calls_per_rm']} risk calls "
        "per RM a month. Figures are expectations on the bank's recorded truth: reach rate x the "
        "oracle's true reduction of the 90-day churn probability (sleeping dogs count negative).",
        "",
        "![retained per 1,000 calls by policy and h](simulation.png)",
    ]
    for h in sorted(reports):
        r = reports[h]
        s = r["settings"]
        rows = [
            [name, f"{p['calls']:,}", f"{p['retained']:.1f}", f"{p['retained_per_1000_calls']:.1f}",
             f"{p['value_retained']:.1f}", f"{p['value_retained_per_1000_calls']:.1f}"]
            for name, p in report_rows(r["policies"])
        ]  # fmt: skip
        lines += [
            "",
            f"**h = {h:g}** (reach rate {s['reach_rate']:.1%}, {s['customers']:,} active "
            f"customers a month, {s['rms']} RMs; models {', '.join(s['models'].values())}; "
            f"effect model: {s['effect_model'] or 'none'})" + "".join(f"; {n}" for n in r["notes"]),
            "",
            table(
                [
                    "policy",
                    "calls",
                    "retained",
                    "per 1,000 calls",
                    "value retained",
                    "value per 1,000 calls",
                ],
                rows,
            ),
        ]
    lines += ["", "Must-show criteria (issue 8):", ""]
    lines += [f"- {'PASS' if ok else 'FAIL' if ok is False else 'n/a'}: {t}" for t, ok in checks]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=20_000)
    p.add_argument("--months", type=int, default=24)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--settings", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    p.add_argument("--sim-months", type=int, default=6)
    p.add_argument("--calls-per-rm", type=int, default=None)
    p.add_argument("--threads", type=int, default=1, help="LightGBM training threads")
    p.add_argument("--data-root", default=str(REPO / "workspace" / "bench"))
    p.add_argument("--no-report", action="store_true", help="print, do not write the docs")
    args = p.parse_args(argv)
    root = Path(args.data_root)
    reports, seconds = {}, {}
    for h in args.settings:
        began = time.perf_counter()
        data = ensure_bank(root, args.customers, args.months, args.seed, h)
        ws = ensure_models(root / f"simulation_{args.customers}c_s{args.seed}_h{h:g}", data,
                           args.threads)  # fmt: skip
        ensure_effect(ws, data, args.threads)
        calls = "-" if args.calls_per_rm is None else args.calls_per_rm
        out = _run(SIMULATE, data, ws, args.sim_months, calls)
        reports[h] = json.loads(out.strip().splitlines()[-1])
        seconds[h] = time.perf_counter() - began
        print(f"h={h:g}: {seconds[h]:.0f} s")
    checks = must_show(reports)
    md = section(reports, args, checks)
    if not args.no_report:
        plot(reports, PLOT)
        update_section("simulation", md)
    print(md)


if __name__ == "__main__":
    main()
