"""`keepwell train | evaluate | promote`: the model jobs of `training.run` and
`training.registered` on the command line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from cli.common import (
    Steps,
    app,
    console,
    engine_choice,
    err_console,
    fail,
    known_errors,
    open_workspace,
)
from cli.options import ConfigOpt, DataOpt, EngineOpt, MappingOpt, WorkspaceOpt
from keepwell.workspace import Workspace

T = TypeVar("T")


def training_data(ws: Workspace, data: Path | None, steps: Steps) -> Path:
    """The folder to train on: `--data`, else the workspace's demo bank (generated when absent,
    so that `keepwell train` and `mlflow run . -e train` work on a fresh clone)."""
    folder = ws.demo_data
    if data is not None and data.resolve() != folder:
        return data
    if not (folder / "customers.parquet").exists():
        from keepwell.demo import generate

        steps(f"no demo bank in {folder}: generating one ({ws.config.demo.customers:,} customers)")
        generate(ws.config.demo, ws.config, folder, console=console)
    return folder


def _known_errors() -> tuple[type[BaseException], ...]:
    from features.mapping import MappingError
    from training.dataset import TrainingDataError
    from training.registry import RegistryError
    from training.split import SplitError

    return known_errors(MappingError, RegistryError, SplitError, TrainingDataError)


def model_job(job: Callable[[Steps], T]) -> T:
    """Run a model job with step-by-step progress; its known errors exit 1 with the message."""
    try:
        with Steps() as steps:
            return job(steps)
    except _known_errors() as exc:
        raise fail(str(exc), 1) from None


@app.command("train")
def train(
    data: DataOpt = None,
    engine: EngineOpt = None,
    mapping: MappingOpt = None,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Train, evaluate and register the churn and complaint models (one MLflow run).

    Each model is registered as a new version with the alias `challenger`; `keepwell promote`
    decides whether it becomes the `champion` the service loads.
    """
    from training.evaluate import render_table
    from training.run import train as run_train

    ws = open_workspace(config, workspace)
    result = model_job(
        lambda steps: run_train(
            training_data(ws, data, steps), ws.config, ws, engine=engine_choice(ws, engine),
            mapping=mapping, progress=steps,
        )
    )  # fmt: skip
    for table in render_table(result.evaluation):
        console.print(table)
    for target, shapes in result.shapes.items():
        chosen = next((s for s in shapes if s.get("chosen")), None)
        if chosen:
            console.print(
                f"{target}: shape {chosen.get('num_leaves')} leaves / depth "
                f"{chosen.get('max_depth')}, {chosen.get('trees')} trees; explains "
                f"{ws.config.training.explain_budget.customers:,} customers in about "
                f"{chosen.get('projected_explain_seconds', float('nan')):.0f} s",
                highlight=False,
            )
    for target, reg in result.models.items():
        console.print(f"{target}: registered {reg.name} v{reg.version} as challenger",
                      highlight=False)  # fmt: skip
    console.print(f"evaluation -> {result.evaluation_path}", highlight=False)
    console.print(f"MLflow run {result.run_id} in {result.tracking_uri}", highlight=False)


@app.command("evaluate")
def evaluate(
    alias: Annotated[str, typer.Option(help="Model alias to evaluate.")] = "champion",
    data: DataOpt = None,
    engine: EngineOpt = None,
    mapping: MappingOpt = None,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Evaluate the registered models (by alias) on the newest held-out period of the data."""
    from training.evaluate import render_table
    from training.registered import evaluate_registered

    ws = open_workspace(config, workspace)
    evaluation, path, versions = model_job(
        lambda steps: evaluate_registered(
            data or ws.demo_data, ws.config, ws, alias=alias, engine=engine_choice(ws, engine),
            mapping=mapping, progress=steps,
        )
    )  # fmt: skip
    for table in render_table(evaluation):
        console.print(table)
    used = ", ".join(f"{t} v{v}" for t, v in versions.items())
    console.print(f"{alias}: {used}; evaluation -> {path}", highlight=False)


@app.command("promote")
def promote(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Decide and explain, but move no alias.")
    ] = False,
    data: DataOpt = None,
    engine: EngineOpt = None,
    mapping: MappingOpt = None,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Make each challenger the champion unless it is worse on the same held-out period."""
    from training.registered import promote as run_promote

    ws = open_workspace(config, workspace)
    decisions = model_job(
        lambda steps: run_promote(
            data or ws.demo_data, ws.config, ws, engine=engine_choice(ws, engine), mapping=mapping,
            dry_run=dry_run, progress=steps,
        )
    )  # fmt: skip
    for d in decisions:
        verdict = "PROMOTED" if d.promote and not dry_run else (
            "would promote" if d.promote else "kept")  # fmt: skip
        out = console if d.promote else err_console
        out.print(f"{d.model}: {verdict} - {d.reason}", highlight=False)
