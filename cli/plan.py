"""`keepwell plan --date D`: every RM's callback list for a day (`serving.planning.job`)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from cli.common import Steps, app, console, fail, open_workspace
from cli.options import ConfigOpt, DataOpt, WorkspaceOpt
from keepwell.words import current_name

RANK_CHOICES = ("value_at_risk", "risk", "effect", "uplift")  # uplift: the old name of effect


def _default_day(ws) -> dt.date:
    """The online store's snapshot date (the service's), else the day after the newest event."""
    from features.store import OnlineStore, StoreError

    try:
        with OnlineStore(ws.path(ws.config.paths.feature_store), preload=False) as store:
            return store.as_of
    except StoreError:
        raise fail(
            "no --date given and no online store to take it from: pass --date YYYY-MM-DD "
            "or run `keepwell features materialize` first"
        ) from None


@app.command("plan")
def plan(
    date: Annotated[
        str | None,
        typer.Option(
            "--date", help="The day to plan (YYYY-MM-DD; default: the online store's snapshot)."
        ),
    ] = None,
    rank_by: Annotated[
        str | None,
        typer.Option(
            "--rank-by",
            help="Risk tasks ranked by value_at_risk (default, config planner.rank_by), risk or "
            "effect (the callback effect model; 'uplift', its old name, still works).",
        ),
    ] = None,
    data: DataOpt = None,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Build each RM's ordered callback list for a day: mandatory policy tasks first, then risk
    tasks by expected value at risk within the RM's capacity; special-care customers are never
    dropped. Writes <workspace>/lists/<date>/ (CSV and Parquet per RM, summary.json)."""
    from serving.planning.job import plan_day
    from serving.planning.planner import PlanError
    from serving.scoring.model import ServingSetupError

    ws = open_workspace(config, workspace)
    if rank_by is not None and rank_by not in RANK_CHOICES:
        raise fail(f"--rank-by must be one of {', '.join(RANK_CHOICES)}, got {rank_by!r}")
    if rank_by is not None:
        rank_by = current_name(rank_by, "--rank-by")
    if date is None:
        day = _default_day(ws)
    else:
        try:
            day = dt.date.fromisoformat(date)
        except ValueError:
            raise fail(f"--date must be a date like 2026-01-05, got {date!r}") from None
    from features.pipeline import AsOfError
    from keepwell.contract import ContractError

    try:
        with Steps() as steps:
            result = plan_day(ws, ws.config, day, data_dir=data, rank_by=rank_by, say=steps)
    except (ServingSetupError, PlanError, AsOfError, ContractError, ValueError) as exc:
        raise fail(str(exc), 1) from None
    s = result.summary
    table = Table(title=f"Callback lists for {day} ({s['rank_by']})", show_header=True)
    table.add_column("tasks by rule")
    table.add_column("count", justify="right")
    for rule, n in s["by_rule"].items():
        table.add_row(rule, f"{n:,}")
    table.add_row("[bold]total[/]", f"[bold]{s['tasks']:,}[/]")
    console.print(table)
    console.print(
        f"{s['rms']:,} RMs, {s['customers']:,} customers; special care {s['special_care']:,}; "
        f"carried over {s['carried_over']:,}; dropped by capacity {s['dropped_by_capacity']:,}; "
        f"held out (risk holdout) {s['held_out']:,}; overloaded RMs {s['overloaded_rms']:,}"
    )
    took = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    console.print(f"[dim]{took}[/]")
    console.print(f"lists: [bold]{result.folder}[/]")
