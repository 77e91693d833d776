"""`keepwell monitor`: drift of the features and scores since the champions' training window,
stability of the RMs' top N, and a retraining recommendation (`reporting.monitoring`).

The recommendation is advice: the command exits 0 whatever it says.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from cli.common import Steps, app, console, fail, known_errors, open_workspace
from cli.options import ConfigOpt, DataOpt, WorkspaceOpt
from features.store import StoreError
from reporting.monitoring.drift import MonitoringError
from reporting.monitoring.stability import monitor_champions
from serving.scoring.model import ServingSetupError
from training.registry import RegistryError

STYLE = {"stable": "green", "watch": "yellow", "retrain": "bold red"}
SHOWN_FEATURES = 10


def _known_errors() -> tuple[type[BaseException], ...]:
    return known_errors(MonitoringError, RegistryError, StoreError, ServingSetupError)


def _table(report: dict[str, Any]) -> Table:
    s = report["settings"]
    table = Table(
        title=f"Population stability, training window -> {report['as_of']} (watch >= "
        f"{s['psi_warn']:g}, retrain >= {s['psi_retrain']:g}; scores retrain >= "
        f"{s['score_psi_retrain']:g})"
    )
    for col, justify in (("", "left"), ("name", "left"), ("PSI", "right"), ("status", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for d in report["scores"]:
        table.add_row(
            "score",
            f"{d['name']} ({d['model']})",
            f"{d['psi']:.3f}",
            f"[{STYLE[d['status']]}]{d['status']}[/]",
        )
    for d in report["features"][:SHOWN_FEATURES]:
        table.add_row(
            "feature", d["name"], f"{d['psi']:.3f}", f"[{STYLE[d['status']]}]{d['status']}[/]"
        )
    return table


def _stability_line(st: dict[str, Any]) -> str:
    if st["status"] != "compared":
        return f"top-{st['n']} stability: {st['note']}"
    return (
        f"top-{st['n']} stability {st['dates'][0]} -> {st['dates'][1]}: mean overlap "
        f"{st['mean_overlap']:.2f}, min {st['min_overlap']:.2f}, {st['share_below_half']:.0%} of "
        f"{st['rms']} RMs below 0.5"
    )


@app.command("monitor")
def monitor(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Compare this day's snapshot, built from the data "
            "(default: the online store's snapshot).",
        ),
    ] = None,
    data: DataOpt = None,
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            help="FIRST..LAST monthly as-of dates of the reference "
            "(default: the churn champion's training window).",
        ),
    ] = None,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Drift of features and scores, stability of the RMs' lists, and whether to retrain.

    Writes reports/monitoring.json and monitoring.png and logs an MLflow run; exits 0 whatever
    the recommendation (it is advice).
    """
    ws = open_workspace(config, workspace)
    try:
        with Steps() as steps:
            result = monitor_champions(ws, as_of, data, reference, steps)
    except _known_errors() as exc:
        raise fail(str(exc), 1) from None
    report = result.report
    console.print(_table(report))
    console.print(_stability_line(report["top_n_stability"]), highlight=False)
    advice = report["recommendation"]
    decision = advice["decision"]
    console.print(f"recommendation: [{STYLE[decision]}]{decision.upper()}[/]", highlight=False)
    for reason in advice["reasons"]:
        console.print(f"  - {reason}", highlight=False)
    for note in report["notes"]:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"report -> {result.path}; plot -> {result.plot}", highlight=False)
    console.print(
        f"MLflow run {result.run_id} in {report['mlflow']['tracking_uri']} "
        f"(experiment {report['mlflow']['experiment']})",
        highlight=False,
    )
