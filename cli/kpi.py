"""`keepwell kpi --from D1 --to D2`: the KPI report (HTML and JSON) of a period."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import Steps, app, console, fail, open_workspace
from cli.options import ConfigOpt, DataOpt, WorkspaceOpt


@app.command("kpi")
def kpi(
    start: Annotated[
        dt.datetime,
        typer.Option("--from", formats=["%Y-%m-%d"], help="First day of the period, YYYY-MM-DD."),
    ],
    end: Annotated[
        dt.datetime,
        typer.Option("--to", formats=["%Y-%m-%d"], help="Day after the period (exclusive)."),
    ],
    data: DataOpt = None,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """KPIs against the targets of the source documents, per month and by branch, RM and
    segment: callback completion, complaint SLA compliance, complaint and churn rates against
    the prior period, satisfaction. Writes kpi.html and kpi.json under the workspace's
    reports/kpi/<from>_<to>/."""
    from keepwell.contract import ContractError
    from reporting.kpi.compute import compute_kpis
    from reporting.kpi.inputs import load_kpi_inputs
    from reporting.kpi.model import KpiError
    from reporting.kpi.report import write_kpi_report

    ws = open_workspace(config, workspace)
    first, after = start.date(), end.date()
    if first >= after:
        raise fail(escape(f"--from {first} must be before --to {after} (the period is [from, to))"))
    folder = Path(data) if data is not None else ws.demo_data
    out_dir = ws.reports / "kpi" / f"{first}_{after}"
    try:
        with Steps() as steps:
            steps(f"reading customers, complaints and callbacks from {folder}")
            inputs = load_kpi_inputs(folder, ws, first, after, ws.config)
            found = "no daily lists" if inputs.lists is None else f"{len(inputs.lists):,} tasks"
            steps(f"daily lists in {inputs.lists_folder}: {found}")
            steps(f"computing the KPIs of {first} to {after}")
            report = compute_kpis(inputs.tables, first, after, ws.config, lists=inputs.lists,
                                  outcomes=inputs.outcomes)  # fmt: skip
            steps("writing the report (plots, HTML, JSON)")
            html_path, json_path = write_kpi_report(
                report, out_dir, monitoring_file=ws.reports / "monitoring.json"
            )
    except (KpiError, ContractError) as exc:
        raise fail(escape(str(exc))) from None
    console.print(_headline(report))
    for note in report.notes:
        console.print(f"[dim]note:[/] {escape(note)}", highlight=False)
    console.print(f"KPI report -> {html_path}", highlight=False, soft_wrap=True)
    console.print(f"KPI data   -> {json_path}", highlight=False, soft_wrap=True)


def _headline(report) -> Table:
    from reporting.kpi.model import RATES
    from reporting.kpi.report import LABELS

    table = Table(title=f"KPIs {report.start} to {report.end} (exclusive)")
    for column in ("KPI", "value", "target", "status", "numerator / denominator", "change"):
        table.add_column(column, justify="left" if column == "KPI" else "right")
    for name, m in report.overall.items():
        rate = name in RATES
        value = "–" if m.value is None else f"{m.value:.2%}" if rate else f"{m.value:.1%}"
        target = f"change ≤ {m.target:+.0%}" if rate else f"≥ {m.target:.0%}"
        status = {True: "[green]met[/]", False: "[bold red]missed[/]"}.get(m.met, "[dim]n/a[/]")
        change = "–" if m.change is None else f"{m.change:+.1%}"
        counts = f"{m.numerator:,} / {m.denominator:,}"
        table.add_row(LABELS[name], value, target, status, counts, change)
    return table
