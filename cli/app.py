"""The `keepwell` Typer application: the one edge that loads the configuration and calls every
package (`cli.main` runs it; each `cli.<group>` module registers its commands on `app`).

Every command takes `--config FILE` and `--workspace DIR` (through the top-level callback, so
`keepwell --workspace W demo-data` and `keepwell demo-data --workspace W` both work).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import app, console, engine_choice, open_workspace, run_feature_job
from cli.options import ConfigOpt, DataOpt, EngineOpt, MappingOpt, WorkspaceOpt


@app.command("demo-data")
def demo_data(
    customers: Annotated[
        int | None, typer.Option(help="Number of customers (config: demo.customers).")
    ] = None,
    months: Annotated[
        int | None, typer.Option(help="Months of history (config: demo.months).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (config: demo.seed).")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: <workspace>/data/demo).")
    ] = None,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Generate the demo bank: Parquet tables that pass the data contract, plus the oracle."""
    from keepwell.demo import generate

    ws = open_workspace(config, workspace)
    demo = ws.config.demo.model_copy(
        update={
            k: v
            for k, v in {"customers": customers, "months": months, "seed": seed}.items()
            if v is not None
        }
    )
    target = out or ws.demo_data
    summary = generate(demo, ws.config, target, console=console)
    console.print(summary.render())


@app.command("validate")
def validate(
    data: Annotated[
        Path, typer.Argument(help="Folder of Parquet or CSV tables, one file per table.")
    ],
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Check a folder of bank tables against the data contract; exit 1 on any violation."""
    from keepwell.contract import validate_folder

    open_workspace(config, workspace)
    report = validate_folder(data)
    console.print(report.render())
    if not report.ok:
        raise typer.Exit(1)


features_app = typer.Typer(
    help="Point-in-time features: build snapshots, materialize the online store."
)
app.add_typer(features_app, name="features")


@features_app.command("build")
def features_build(
    as_of: Annotated[str, typer.Option("--as-of", help="The newest as-of date, YYYY-MM-DD.")],
    months: Annotated[
        int, typer.Option(help="Monthly snapshots ending at --as-of.", min=1, max=120)
    ] = 1,
    out: Annotated[
        Path | None,
        typer.Option(help="Parquet file (default: <workspace>/features/features.parquet)."),
    ] = None,
    data: DataOpt = None,
    engine: EngineOpt = None,
    mapping: MappingOpt = None,
    labels: Annotated[bool, typer.Option(help="Add the churn and complaint labels.")] = True,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Build one row per (customer, as_of) for monthly snapshots, with labels, into Parquet."""
    from features.pipeline import monthly_as_of_dates, write_features

    ws = open_workspace(config, workspace)
    target = out or ws.path(ws.config.paths.features) / "features.parquet"
    summary = run_feature_job(
        lambda steps: write_features(
            data or ws.demo_data,
            monthly_as_of_dates(as_of, months),
            ws.config,
            target,
            engine=engine_choice(ws, engine),
            mapping=mapping,
            progress=steps,
            labels=labels,
            workdir=ws.scratch("engine"),
        )
    )
    console.print(
        f"{summary.rows:,} rows x {summary.columns} columns for {len(summary.as_of_dates)} as-of "
        f"date(s) ({summary.as_of_dates[0]} .. {summary.as_of_dates[-1]}) on {summary.engine} "
        f"in {summary.seconds:.1f} s -> {summary.path}",
        highlight=False,
    )


@features_app.command("materialize")
def features_materialize(
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Snapshot date (default: the day after the newest event)."),
    ] = None,
    data: DataOpt = None,
    engine: EngineOpt = None,
    mapping: MappingOpt = None,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Write the latest snapshot to the online store, the DuckDB file the service reads."""
    from features.pipeline import materialize_latest

    ws = open_workspace(config, workspace)
    target = ws.path(ws.config.paths.feature_store)
    summary = run_feature_job(
        lambda steps: materialize_latest(
            data or ws.demo_data,
            target,
            ws.config,
            as_of=as_of,
            engine=engine_choice(ws, engine),
            mapping=mapping,
            progress=steps,
            workdir=ws.scratch("engine"),
        )
    )
    console.print(
        f"{summary.rows:,} customers as of {summary.as_of} (feature spec {summary.spec_version}) "
        f"in {summary.seconds:.1f} s -> {summary.path}",
        highlight=False,
    )


# The other command groups register themselves on `app` when imported.
import cli.effect  # noqa: E402
import cli.kpi  # noqa: E402
import cli.monitor  # noqa: E402
import cli.plan  # noqa: E402
import cli.records  # noqa: E402
import cli.serve  # noqa: E402
import cli.simulate  # noqa: E402
import cli.training  # noqa: E402, F401
