"""`keepwell simulate`: which ranking of risk calls retains the most customers, on the demo bank's
recorded truth (`reporting.simulation.run`, `reporting.simulation.core`).

The callback effect model (`training.effect.model`, loaded through a guarded import:
`reporting.simulation.run.load_effect`) is optional: without it the `effect` policy is left out with
a note that says how to train it.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from cli.common import Steps, app, console, fail, known_errors, open_workspace
from cli.options import ConfigOpt, DataOpt, WorkspaceOpt
from keepwell.words import current_name


def _known_errors() -> tuple[type[BaseException], ...]:
    from reporting.simulation.core import SimulationError
    from serving.scoring.model import ServingSetupError

    return known_errors(ServingSetupError, SimulationError)


def _table(report: dict[str, Any]) -> Table:
    from reporting.simulation.core import report_rows

    s = report["settings"]
    table = Table(
        title=f"Risk calls over {len(s['months'])} month(s) ({s['months'][0]} .. "
        f"{s['months'][-1]}), {s['calls_per_rm']} calls per RM a month, reach {s['reach_rate']:.0%}"
    )
    for col in ("policy", "calls", "retained", "per 1,000 calls", "value retained", "per 1,000"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for name, r in report_rows(report["policies"]):
        table.add_row(
            name,
            f"{r['calls']:,}",
            f"{r['retained']:.1f}",
            f"{r['retained_per_1000_calls']:.1f}",
            f"{r['value_retained']:.1f}",
            f"{r['value_retained_per_1000_calls']:.1f}",
        )
    table.caption = "expected customers (reach x true callback effect), no Monte Carlo noise"
    return table


@app.command("simulate")
def simulate(
    months: Annotated[
        int | None,
        typer.Option("--months", help="Labelled monthly as-of dates to simulate (default 6)."),
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            help="none, random, seed_rule, risk, value_at_risk, effect or oracle; repeat for "
            "several (default: all; 'uplift' is the old name of effect).",
        ),
    ] = None,
    calls_per_rm: Annotated[
        int | None,
        typer.Option("--calls-per-rm", help="Risk calls per RM a month (default 40)."),
    ] = None,
    data: DataOpt = None,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Customers and value retained per 1,000 risk calls for each ranking policy.

    Writes reports/simulation.json and simulation.png.
    """
    from reporting.simulation.run import load_effect, run_simulation, write_report

    ws = open_workspace(config, workspace)
    try:
        with Steps() as steps:
            report = run_simulation(
                ws,
                ws.config,
                data_dir=data,
                months=months,
                policies=[current_name(p, "--policy") for p in policy] if policy else None,
                calls_per_rm=calls_per_rm,
                effect_model=load_effect(ws, ws.config),
                say=steps,
            )
            json_path, png_path = write_report(report, ws.reports)
    except _known_errors() as exc:
        raise fail(str(exc), 1) from None
    console.print(_table(report))
    for note in report["notes"]:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"report -> {json_path}; plot -> {png_path}", highlight=False)
