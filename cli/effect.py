"""`keepwell train-effect`: the callback effect model's job (`training.effect.run.train_effect`)."""

from __future__ import annotations

import math

from cli.common import app, console, open_workspace
from cli.options import ConfigOpt, DataOpt, WorkspaceOpt
from cli.training import model_job, training_data

COLUMNS = (
    ("Qini", "qini", 5),
    ("uplift@10%", "uplift_at_10", 4),
    ("uplift@20%", "uplift_at_20", 4),
    ("uplift@30%", "uplift_at_30", 4),
    ("Spearman vs truth", "spearman", 3),
    ("top-20% overlap", "overlap_at_20", 3),
)


def _fmt(value: float | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


@app.command("train-effect")
def train_effect(
    data: DataOpt = None, config: ConfigOpt = None, workspace: WorkspaceOpt = None
) -> None:
    """Train, evaluate and register the callback effect model (uplift) from the randomised
    holdout of policy callbacks (one MLflow run).

    It becomes the `champion` when it beats ranking by churn risk steadily on the evaluation
    period (the 10th percentile of the Qini difference over bootstrap samples of customers is
    above 0); otherwise it is registered as `challenger` only.
    """
    from rich.table import Table

    from training.effect.run import train_effect as run_train_effect

    ws = open_workspace(config, workspace)
    result = model_job(
        lambda steps: run_train_effect(
            training_data(ws, data, steps), ws.config, ws, progress=steps
        )
    )
    test = result.split.test
    arms = result.arms["test"]
    table = Table(
        title=f"callback effect: evaluation period {test[0]} .. {test[-1]}, "
        f"{arms['treated']:,} treated / {arms['control']:,} held out (uplift = churn rate "
        "held out - churn rate called)",
        title_justify="left",
    )
    table.add_column("ranking")
    for header, _, _ in COLUMNS:
        table.add_column(header, justify="right")
    for name, metrics in result.table.items():
        table.add_row(name, *(_fmt(metrics.get(key), d) for _, key, d in COLUMNS))
    console.print(table)
    console.print(f"learner: {result.model.extra.get('learner_choice')}", highlight=False)
    if result.model.extra.get("logit_summary"):
        console.print(result.model.extra["logit_summary"], highlight=False)
    console.print(f"risk ranking: {result.risk_source}", highlight=False)
    console.print(
        f"registered {result.name} v{result.version} as {', '.join(result.aliases)} - "
        f"{result.alias_reason}",
        highlight=False,
    )
    console.print(f"evaluation -> {result.evaluation_path}", highlight=False)
    console.print(
        f"MLflow run {result.run_id} in {result.tracking_uri} ({result.seconds:.0f} s)",
        highlight=False,
    )
