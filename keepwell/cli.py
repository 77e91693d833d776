"""`keepwell`: the one edge that loads the configuration and calls every package.

Every command takes `--config FILE` and `--workspace DIR` (through the top-level callback, so
`keepwell --workspace W demo-data` and `keepwell demo-data --workspace W` both work).
"""

from __future__ import annotations

import os

# Nothing leaves the machine: set before MLflow or BentoML can be imported anywhere.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from keepwell.config import Config, ConfigError, load_config
from keepwell.workspace import Workspace

app = typer.Typer(
    help="Keepwell: churn and complaint risk, reasons and callback lists for banks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="YAML file merged over conf/keepwell.yaml.", dir_okay=False),
]
WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace", help="Folder for everything Keepwell writes [default: ./workspace]."
    ),
]

_state: dict[str, Path | None] = {"config": None, "workspace": None}


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def open_workspace(config: Path | None, workspace: Path | None) -> Workspace:
    """Load the configuration once, at the edge; options on the command beat the global ones."""
    config_file = config or _state["config"]
    root = workspace or _state["workspace"] or Path("workspace")
    try:
        cfg: Config = load_config(config_file)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    return Workspace.open(root, cfg)


@app.callback()
def _main(config: ConfigOpt = None, workspace: WorkspaceOpt = None) -> None:
    _state["config"] = config
    _state["workspace"] = workspace


@app.command("demo-data")
def demo_data(
    customers: Annotated[
        int | None, typer.Option(help="Number of customers [config: demo.customers].")
    ] = None,
    months: Annotated[
        int | None, typer.Option(help="Months of history [config: demo.months].")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed [config: demo.seed].")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder [default: <workspace>/data/demo].")
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
