"""Serving benchmark: the Keepwell service vs `mlflow models serve` vs in-process LightGBM.

`python -m bench.serving_bench` (part of `make bench`) prepares a scratch workspace with the demo
bank (`keepwell demo-data`, `train`, `promote`, `features materialize`; skipped when present),
starts both servers on 127.0.0.1 with one worker each, and runs a bounded load client (a fixed
number of requests per cell, cut off at a time limit) with single-id and 100-id requests at
concurrency 1, 8 and 32. It also times plain LightGBM in process on the same rows, measures where
explanations could be computed (precomputed at start-up, on request, cached), and writes the
`serving` section of docs/benchmarks.md.

What each target does per request:

* Keepwell: key check, validation, both models' TreeSHAP pass (margin and reasons), tiers,
  decision, due callback, an audit-log row, JSON out.
* `mlflow models serve --env-manager local`: the churn champion's pyfunc on the same rows sent as
  feature values (`dataframe_split`); calibrated probabilities, no reasons, one model.
* in process: for both models `predict(raw_score)` + `predict(pred_contrib)` on a prepared float
  matrix, one thread: the floor of any server.

The client runs on the same machine (2 cores here), so it takes CPU from the servers; every target
pays that equally.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from bench.load_client import (
    Cell,
    access_log_ms,
    free_port,
    load,
    server_rss_mb,
    start,
    stop,
    wait_ready,
)
from bench.report import update_section
from bench.serving_report import CONCURRENCY, render
from keepwell.privacy import disable_telemetry

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORKSPACE = Path("/tmp/keepwell-serving-bench")
SIZES = (1, 100)


# -- workspace ---------------------------------------------------------------------------------
def keepwell(ws: Path, *args: str) -> None:
    cmd = [sys.executable, "-m", "cli", "--workspace", str(ws), *args]
    print("$", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def prepare(ws: Path, customers: int) -> None:
    """Demo bank, trained and promoted models, online store: whatever is missing."""
    if not (ws / "data" / "demo" / "customers.parquet").exists():
        keepwell(ws, "demo-data", "--customers", str(customers))
    if not (ws / "mlflow.db").exists():
        keepwell(ws, "train")
        keepwell(ws, "promote")
    if not (ws / "store" / "online.duckdb").exists():
        keepwell(ws, "features", "materialize")


def new_key(ws: Path) -> str:
    from keepwell.config import load_config
    from serving.records.keys import KeyStore

    config = load_config()
    return KeyStore(ws / config.paths.keys).create("crm", label="serving bench")[1]


# -- request bodies ----------------------------------------------------------------------------
def sample_ids(book_ids: np.ndarray, size: int, count: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [rng.choice(book_ids, size=size, replace=False).tolist() for _ in range(count)]


def mlflow_body(scorer: Any, ids: list[str]) -> bytes:
    """The churn model's input for `ids` as `dataframe_split`, values as the store holds them."""
    features = list(scorer.models["churn"].fitted.features)
    rows = scorer.snapshot.take(scorer.snapshot.positions(ids))
    frame = rows.frame(features)
    data = json.loads(frame.to_json(orient="split", index=False))
    return json.dumps(
        {"dataframe_split": {"columns": data["columns"], "data": data["data"]}}
    ).encode()


# -- in process --------------------------------------------------------------------------------
def in_process(scorer: Any, id_sets: dict[int, list[list[str]]]) -> dict[int, dict[str, float]]:
    """Both models' raw predict + pred_contrib, one thread, on prepared matrices."""
    out = {}
    for size, sets in id_sets.items():
        matrices = []
        for ids in sets:
            rows = scorer.snapshot.take(scorer.snapshot.positions(ids))
            matrices.append(
                [
                    (m.fitted.booster, rows.matrix(m.fitted.features, m.fitted.categories))
                    for m in scorer.models.values()
                ]
            )
        times = []
        for pairs in matrices:
            t0 = time.perf_counter()
            for booster, x in pairs:
                booster.predict(x, raw_score=True, num_threads=1)
                booster.predict(x, pred_contrib=True, num_threads=1)
            times.append(time.perf_counter() - t0)
        arr = np.array(times[min(10, len(times) // 10) :])
        out[size] = {
            "p50": float(np.percentile(arr, 50)) * 1000,
            "p99": float(np.percentile(arr, 99)) * 1000,
            "rows_per_s": size / float(arr.mean()),
        }
    return out


# -- where explanations are computed -----------------------------------------------------------
def explanation_costs(scorer: Any, load_seconds: float) -> dict[str, Any]:
    """Precompute (score the whole book), on request (per call), cached (a dict of JSON)."""
    from serving.records.keys import Principal

    crm = Principal("bench", "crm")
    ids = scorer.snapshot.ids.tolist()
    began = time.perf_counter()
    cache: dict[str, bytes] = {}
    for i in range(0, len(ids), 1000):
        for r in scorer.score_ids(ids[i : i + 1000], crm):
            cache[r.customer_id] = r.model_dump_json().encode()
    precompute_s = time.perf_counter() - began
    json_bytes = sum(len(v) + 60 for v in cache.values())  # + a dict entry and bytes header
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    held = scorer.score_ids(ids[:1000], crm)
    object_bytes = (tracemalloc.get_traced_memory()[0] - before) / len(held)
    tracemalloc.stop()
    del held
    per_request = {}
    for size in SIZES:
        sets = sample_ids(scorer.snapshot.ids, size, 200 if size == 1 else 40, seed=size)
        times, hits = [], []
        for s in sets:
            t0 = time.perf_counter()
            scorer.score_ids(s, crm)
            times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            b'{"results":[' + b",".join(cache[c] for c in s) + b"]}"
            hits.append(time.perf_counter() - t0)
        per_request[size] = {
            "p50": np.percentile(times, 50) * 1000,
            "p99": np.percentile(times, 99) * 1000,
            "hit_p50": np.percentile(hits, 50) * 1000,
        }
    book = scorer.snapshot
    book_bytes = sum(c.nbytes for c in book.columns.values()) + book.ids.nbytes
    book_bytes += sys.getsizeof(book._position) + sum(sys.getsizeof(i) for i in ids)
    return {
        "customers": len(ids),
        "load_s": load_seconds,
        "precompute_s": precompute_s,
        "json_bytes": json_bytes,
        "object_bytes": object_bytes,
        "book_bytes": book_bytes,
        "per_request": per_request,
    }


# -- the two servers ---------------------------------------------------------------------------
def _cells(
    target: str,
    url: str,
    bodies_by_size: dict[int, list[bytes]],
    headers: dict[str, str],
    args: argparse.Namespace,
    log: Path | None,
) -> list[Cell]:
    cells = []
    for size, bodies in bodies_by_size.items():
        n = args.requests if size == 1 else args.batch_requests
        for conc in CONCURRENCY:
            before = log.stat().st_size if log else 0
            cell = load(url, bodies, headers, Cell(target, size, conc), n, args.time_limit)
            if log is not None:
                with open(log, encoding="utf-8", errors="replace") as f:
                    f.seek(before)
                    cell.server_ms = access_log_ms(f.read(), "/score", cell.ok)
            print(
                f"{target} {size} ids c={conc}: {cell.rps:.0f} req/s p50 {cell.pct(50):.1f} "
                f"p99 {cell.pct(99):.1f} (server p50 {cell.server_pct(50):.1f} p99 "
                f"{cell.server_pct(99):.1f}) errors {cell.errors}",
                flush=True,
            )
            cells.append(cell)
    return cells


def run_keepwell(
    ws: Path,
    env: dict[str, str],
    key: str,
    id_sets: dict[int, list[list[str]]],
    args: argparse.Namespace,
    info: dict[str, Any],
) -> list[Cell]:
    log = ws / "bench-logs" / "keepwell.log"
    log.parent.mkdir(exist_ok=True)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "cli.serve",
        "--workspace",
        str(ws),
        "serve",
        "--port",
        str(port),
    ]
    server = start(command, env, log)
    try:
        info["ready_ours"] = wait_ready(f"http://127.0.0.1:{port}/readyz", server, log)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        bodies = {
            size: [json.dumps({"customer_ids": s}).encode() for s in sets]
            for size, sets in id_sets.items()
        }
        cells = _cells("keepwell", f"http://127.0.0.1:{port}/score", bodies, headers, args, log)
        info["rss_ours"] = server_rss_mb(server)
    finally:
        stop(server)
    return cells


def run_mlflow(
    ws: Path,
    env: dict[str, str],
    scorer: Any,
    id_sets: dict[int, list[list[str]]],
    args: argparse.Namespace,
    info: dict[str, Any],
) -> list[Cell]:
    log = ws / "bench-logs" / "mlflow.log"
    port = free_port()
    name = scorer.models["churn"].name
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        f"models:/{name}@champion",
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    server = start(command, {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{ws}/mlflow.db"}, log)
    try:
        info["ready_mlflow"] = wait_ready(f"http://127.0.0.1:{port}/ping", server, log)
        bodies = {size: [mlflow_body(scorer, s) for s in sets] for size, sets in id_sets.items()}
        headers = {"Content-Type": "application/json"}
        cells = _cells(
            "mlflow serve", f"http://127.0.0.1:{port}/invocations", bodies, headers, args, None
        )
        info["rss_mlflow"] = server_rss_mb(server)
    finally:
        stop(server)
    return cells


# -- main --------------------------------------------------------------------------------------
def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workspace", type=Path, default=DEFAULT_WORKSPACE)
    p.add_argument("--customers", type=int, default=10_000)
    p.add_argument("--requests", type=int, default=1000, help="single-id requests per cell")
    p.add_argument("--batch-requests", type=int, default=200, help="100-id requests per cell")
    p.add_argument("--time-limit", type=float, default=20.0, help="seconds per cell at most")
    p.add_argument("--skip-mlflow", action="store_true")
    p.add_argument("--no-write", action="store_true", help="print, do not update the doc")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    disable_telemetry()  # the server and the mlflow baseline inherit the switches
    args = parse(sys.argv[1:] if argv is None else argv)
    ws = args.workspace.resolve()
    prepare(ws, args.customers)
    from keepwell.config import load_config
    from keepwell.workspace import Workspace
    from serving.scoring.scorer import Scorer

    config = load_config()
    began = time.perf_counter()
    scorer = Scorer.load(Workspace.open(ws, config), config)
    load_s = time.perf_counter() - began
    key = new_key(ws)
    info: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "customers": len(scorer.snapshot),
        "as_of": scorer.as_of,
        "requests": f"{args.requests:,} single-id, {args.batch_requests:,} 100-id",
        "time_limit": args.time_limit,
        "load": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
        "models": ", ".join(f"{m.name} v{m.version}" for m in scorer.models.values()),
        "rss_mlflow": float("nan"),
        "ready_mlflow": float("nan"),
    }
    id_sets = {
        1: sample_ids(scorer.snapshot.ids, 1, 500, 1),
        100: sample_ids(scorer.snapshot.ids, 100, 100, 2),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEEPWELL_", "MLFLOW_"))}
    cells = run_keepwell(ws, env, key, id_sets, args, info)
    if not args.skip_mlflow:
        cells += run_mlflow(ws, env, scorer, id_sets, args, info)
    inproc = in_process(scorer, id_sets)
    expl = explanation_costs(scorer, load_s)
    section = render(cells, inproc, expl, info)
    print(section)
    if not args.no_write:
        update_section("serving", section)


if __name__ == "__main__":
    main()
