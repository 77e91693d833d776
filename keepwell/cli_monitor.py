"""`keepwell monitor`: drift of the features and scores since the champions' training window,
stability of the RMs' top N, and a retraining recommendation (`training.monitor_run`).

The edge loads what `training` may not import: the champions through `serving.loading` (with its
`ServingSetupError` messages) and the daily list folders through `serving.plan_run` /
`serving.plan_write`. The recommendation is advice: the command exits 0 whatever it says.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from keepwell.cli_common import (
    ConfigOpt,
    DataOpt,
    WorkspaceOpt,
    _fail,
    _Steps,
    app,
    console,
    known_errors,
    open_workspace,
)
from keepwell.workspace import Workspace

if TYPE_CHECKING:
    from keepwell.config import Config

STYLE = {"stable": "green", "watch": "yellow", "retrain": "bold red"}
SHOWN_FEATURES = 10


def read_top_lists(folder: Path, rm_ids: Sequence[str], n: int) -> dict[str, list[str]]:
    """The customer ids of each RM's top `n` (by `rank`) in a day's list folder."""
    import pyarrow.parquet as pq

    from training.monitoring import MonitoringError

    out = {}
    for rm in rm_ids:
        path = folder / f"{rm}.parquet"
        try:
            table = pq.read_table(path, columns=["rank", "customer_id"]).to_pandas()
        except (KeyError, ValueError, OSError) as exc:
            raise MonitoringError(f"cannot read rank and customer_id from {path}: {exc}") from None
        top = table.sort_values("rank", kind="stable").head(n)
        out[rm] = top["customer_id"].astype(str).tolist()
    return out


def list_stability(lists_root: Path, config: Config, n: int) -> dict[str, Any]:
    """The `top_n_stability` section of the monitoring report: each RM's top `n` on the newest
    two list days that are consecutive working days (`serving.plan_run.list_dates` finds the
    days, `serving.plan_write.rm_lists` the RMs' files); says why when there are none."""
    from serving.plan_run import list_dates
    from serving.plan_write import rm_lists
    from training.monitoring import pick_list_days, stability_summary, top_n_overlap

    policy = config.policy
    pair, section = pick_list_days(list_dates(lists_root), policy.working_days,
                                   policy.holidays, n)  # fmt: skip
    if pair is None:
        return section or {}
    tops = []
    for day in pair:
        folder = lists_root / day.isoformat()
        tops.append(read_top_lists(folder, rm_lists(folder), n))
    return stability_summary(top_n_overlap(tops[0], tops[1], n), pair, n)


def _known_errors() -> tuple[type[BaseException], ...]:
    from features.store import StoreError
    from serving.scoring import ServingSetupError
    from training.monitoring import MonitoringError
    from training.registry import RegistryError

    return known_errors(MonitoringError, RegistryError, StoreError, ServingSetupError)


def _run(
    ws: Workspace, as_of: str | None, data: Path | None, reference: str | None, steps: _Steps
) -> Any:
    from serving.loading import _registry, load_champion
    from serving.scoring import TARGETS
    from training.monitor_run import monitor
    from training.monitoring import MonitoringSettings

    uri = _registry(ws)
    models = {t: load_champion(t, ws.config, uri) for t in TARGETS}
    steps("champions: " + ", ".join(f"{m.name} v{m.version}" for m in models.values()))
    n = MonitoringSettings.from_config(ws.config).top_n
    stability = list_stability(ws.path(ws.config.paths.lists), ws.config, n)
    return monitor(ws, ws.config, models, as_of=as_of, data_dir=data, reference=reference,
                   stability=stability, progress=steps)  # fmt: skip


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
        with _Steps() as steps:
            result = _run(ws, as_of, data, reference, steps)
    except _known_errors() as exc:
        raise _fail(str(exc), 1) from None
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
