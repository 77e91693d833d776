"""What every `keepwell` command shares: the Typer app, consoles, options, errors, progress."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cli.options import ConfigOpt, WorkspaceOpt
from keepwell.config import Config, ConfigError, load_config
from keepwell.workspace import Workspace

app = typer.Typer(
    help="Keepwell: churn and complaint risk, reasons and callback lists for banks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(log_path=False)
err_console = Console(stderr=True)


state: dict[str, Path | None] = {"config": None, "workspace": None}


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def open_workspace(config: Path | None, workspace: Path | None) -> Workspace:
    """Load the configuration once, at the edge; options on the command beat the global ones."""
    config_file = config or state["config"]
    root = workspace or state["workspace"] or Path("workspace")
    try:
        cfg: Config = load_config(config_file)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    return Workspace.open(root, cfg)


@app.callback()
def _main(config: ConfigOpt = None, workspace: WorkspaceOpt = None) -> None:
    state["config"] = config
    state["workspace"] = workspace


class Steps:
    """A rich status line that shows each step of a long job, with the time since it began."""

    def __init__(self) -> None:
        import time

        self._time = time.perf_counter
        self._began = self._time()
        self._status = console.status("starting")

    def __enter__(self):
        self._status.__enter__()
        return self

    def __exit__(self, *exc):
        self._status.__exit__(*exc)

    def __call__(self, message: str) -> None:
        elapsed = self._time() - self._began
        console.log(f"[dim]{elapsed:6.1f} s[/] {message}", highlight=False)
        self._status.update(message)


def run_feature_job(job):
    """Run a feature job with step-by-step progress; its known errors exit 1 with the message,
    and its warnings (skipped features, mapping notes) go to stderr."""
    from features.engines import EngineError
    from features.mapping import MappingError
    from features.pipeline import AsOfError
    from features.store import StoreError
    from keepwell.contract import ContractError

    known = (AsOfError, MappingError, ContractError, EngineError, StoreError, FileNotFoundError)
    try:
        with Steps() as steps:
            summary = job(steps)
    except (*known, ValueError) as exc:
        raise fail(str(exc), 1) from None
    for w in summary.warnings:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False)
    return summary


def engine_choice(ws: Workspace, engine: str | None) -> str:
    chosen = engine or ws.config.features.engine
    if chosen not in ("duckdb", "spark"):
        raise fail(f"--engine must be duckdb or spark, got {chosen!r}")
    return chosen


def known_errors(*extra: type[BaseException]) -> tuple[type[BaseException], ...]:
    """The errors a data or model job reports as a message (exit 1) rather than a traceback:
    bad as-of dates, contract violations, engine failures, missing files or keys, bad values,
    plus the job's own `extra` ones."""
    from features.engines import EngineError
    from features.pipeline import AsOfError
    from keepwell.contract import ContractError

    return (AsOfError, ContractError, EngineError, *extra, FileNotFoundError, KeyError, ValueError)
