"""The `serving` section of docs/benchmarks.md, from the cells and measurements of
`bench.serving_bench`."""

from __future__ import annotations

import os

from bench.load_client import Cell
from bench.report import machine, table

CONCURRENCY = (1, 8, 32)


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB" if n >= 2**20 else f"{n / 2**10:,.0f} KB"


def _find(cells: list[Cell], target: str, ids: int, concurrency: int) -> Cell | None:
    return next(
        (c for c in cells if (c.target, c.ids, c.concurrency) == (target, ids, concurrency)), None
    )


def _load_table(cells: list[Cell]) -> str:
    rows = []
    for c in cells:
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(c.errors.items())) or "0"
        server = f"{c.server_pct(50):.1f} / {c.server_pct(99):.1f}" if c.server_ms else "-"
        rows.append(
            [
                c.target,
                c.ids,
                c.concurrency,
                f"{c.ok:,}",
                errors,
                f"{c.rps:,.0f}",
                f"{c.rps * c.ids:,.0f}",
                f"{c.pct(50):.1f}",
                f"{c.pct(99):.1f}",
                server,
            ]
        )
    headers = [
        "target",
        "ids/request",
        "concurrency",
        "requests ok",
        "errors",
        "req/s",
        "rows/s",
        "p50 ms",
        "p99 ms",
        "server p50 / p99 ms",
    ]
    return table(headers, rows)


def _explanation_table(expl: dict) -> str:
    n, scale, pr = expl["customers"], 1_000_000 / expl["customers"], expl["per_request"]
    on_request = [
        f"{pr[1]['p50']:.1f} / {pr[1]['p99']:.1f}",
        f"{pr[100]['p50']:.0f} / {pr[100]['p99']:.0f}",
    ]
    lookup = [f"{pr[1]['hit_p50']:.3f}", f"{pr[100]['hit_p50']:.2f}"]
    json_bytes = expl["json_bytes"]
    pairs = zip(on_request, lookup, strict=True)
    cached = [f"miss {miss.split(' / ')[0]}, hit {hit}" for miss, hit in pairs]
    return table(
        [
            "placement",
            f"start-up per worker ({n:,} customers)",
            "start-up, 1M (projected)",
            f"extra memory ({n:,})",
            "extra memory, 1M (projected)",
            "1 id p50 / p99 ms",
            "100 ids p50 / p99 ms",
        ],
        [
            ["on request (chosen)", "0", "0", "0", "0", *on_request],
            [
                "precomputed at start-up",
                f"+{expl['precompute_s']:.0f} s",
                f"+{expl['precompute_s'] * scale / 60:.0f} min",
                _mb(json_bytes),
                _mb(json_bytes * scale),
                *(f"{x} (lookup)" for x in lookup),
            ],
            [
                "cached per snapshot",
                "0",
                "0",
                f"up to {_mb(json_bytes)}",
                f"up to {_mb(json_bytes * scale)}",
                *cached,
            ],
        ],
    )


def _targets(cells: list[Cell], inproc: dict) -> list[str]:
    lines = []
    single = _find(cells, "keepwell", 1, 1)
    if single:
        lines.append(
            f"* single-id p99 at concurrency 1: {single.pct(99):.1f} ms at the client, "
            f"{single.server_pct(99):.1f} ms in the server (target < 10 ms)"
        )
    for conc in CONCURRENCY:
        ours, theirs = _find(cells, "keepwell", 1, conc), _find(cells, "mlflow serve", 1, conc)
        if ours and theirs and theirs.rps:
            lines.append(
                f"* single-id throughput at concurrency {conc}: "
                f"{ours.rps / theirs.rps:.1f}x `mlflow models serve` (target >= 5x)"
            )
    hundred = _find(cells, "keepwell", 100, 1)
    if hundred and 100 in inproc:
        floor = inproc[100]["p50"] * 10  # us per row
        client, server = hundred.pct(50) * 10, hundred.server_pct(50) * 10
        lines.append(
            f"* 100-id requests at concurrency 1: {client:.0f} us per row at the client, "
            f"{server:.0f} us in the server, against {floor:.0f} us for LightGBM in "
            f"process: {client / floor:.1f}x / {server / floor:.1f}x (target within 3x)"
        )
    errors = sum(
        sum(c.errors.values()) for c in cells if c.target == "keepwell" and c.concurrency == 32
    )
    lines.append(f"* errors at concurrency 32 (Keepwell): {errors} (target 0)")
    return lines


def render(cells: list[Cell], inproc: dict, expl: dict, info: dict) -> str:
    load_table = _load_table(cells)
    lgb_table = table(
        ["rows/call", "p50 ms", "p99 ms", "rows/s"],
        [
            [size, f"{v['p50']:.2f}", f"{v['p99']:.2f}", f"{v['rows_per_s']:,.0f}"]
            for size, v in inproc.items()
        ],
    )
    expl_table = _explanation_table(expl)
    lines = _targets(cells, inproc)
    scale = 1_000_000 / expl["customers"]
    return f"""## Serving

`python -m bench.serving_bench` (part of `make bench`), {info["date"]}. Demo bank of
{info["customers"]:,} customers; champions {info["models"]}; features as of {info["as_of"]}. One
worker per server on 127.0.0.1; the load client (aiohttp, same machine) sends a fixed number of
requests per cell ({info["requests"]}) and stops a cell after {info["time_limit"]:.0f} s. Ids are
drawn at random from the book; a 100-id request names 100 distinct customers. Server memory after
the run: Keepwell {info["rss_ours"]:.0f} MB, `mlflow models serve` {info["rss_mlflow"]:.0f} MB.
Start-up to ready: Keepwell {info["ready_ours"]:.0f} s, mlflow {info["ready_mlflow"]:.0f} s.
Machine: {machine()}, {os.cpu_count()} cores; load average {info["load"]} at the start.

Keepwell answers both models (probabilities, TreeSHAP reasons, tiers, action, due callback) and
writes an audit row per request; `mlflow models serve` answers the churn model's probability from
feature values the client sends.

{load_table}

In process, plain LightGBM for both models (`predict` raw + `pred_contrib`, one thread, matrix
prepared beforehand):

{lgb_table}

Targets:

{chr(10).join(lines)}

Where explanations are computed (measured in process on the same book and models; the 1M
projections scale linearly). `Scorer.load` took {expl["load_s"]:.1f} s (both champions, the
snapshot as typed columns: {_mb(expl["book_bytes"])}, about {_mb(expl["book_bytes"] * scale)} per
million customers, due callbacks, RM map). "Precomputed" scores every customer at start-up and
keeps each answer as JSON; "cached" keeps the answers of the customers asked for since start-up.

{expl_table}
"""
