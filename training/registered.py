"""The jobs on registered models: `evaluate_registered` scores the models of an alias on the
newest held-out period, `promote` makes each challenger the champion unless it is worse on the
same rows (`training.registry.decide_promotion`). Both score through the registered pyfunc,
as a deployment would (`registered_probabilities`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from training.evaluate import evaluate, write_evaluation
from training.metrics import expected_calibration_error, roc_auc
from training.registry import (
    CHALLENGER,
    CHAMPION,
    Promotion,
    alias_version,
    apply_promotion,
    decide_promotion,
    registered_name,
    require_alias,
    setup_mlflow,
    stored_location,
    workspace_location,
)

if TYPE_CHECKING:
    from keepwell.config import Config
    from keepwell.workspace import Workspace
    from training.evaluate import Evaluation

from training.run import baseline_scores, prepare, say

Progress = Callable[[str], None]


def registered_probabilities(
    name: str, version: str, frame: pd.DataFrame, workspace: Workspace | None = None
) -> np.ndarray:
    """The logged pyfunc's probabilities; with `workspace`, from that workspace's own copy of the
    model's files (a copied workspace never reads the original's)."""
    import mlflow

    uri = f"models:/{name}/{version}"
    if workspace is not None:
        uri = str(workspace_location(workspace, stored_location(name, version)))
    model = mlflow.pyfunc.load_model(uri)
    inputs = model.metadata.get_input_schema().input_names()
    return model.predict(frame[inputs])["probability"].to_numpy(float)


def evaluate_registered(
    data_dir: Path | str,
    config: Config,
    workspace: Workspace,
    *,
    alias: str = CHAMPION,
    engine: str = "duckdb",
    mapping: Any = None,
    progress: Progress | None = None,
) -> tuple[Evaluation, Path, dict[str, str]]:
    """Score the `alias` version of each target's registered model on the test period of the
    data with the same baselines; writes `reports/evaluation.json`. Returns the evaluation, its
    path and the versions used."""

    setup_mlflow(workspace)
    versions = {t: require_alias(registered_name(config, t), alias)
                for t in config.training.targets}  # fmt: skip
    prep = prepare(data_dir, config, engine=engine, mapping=mapping, progress=progress)
    scores = {}
    for target, version in versions.items():
        say(progress, f"{target}: scoring {registered_name(config, target)} v{version}")
        p = registered_probabilities(registered_name(config, target), version, prep.test, workspace)
        scores[target] = {"model": p, **baseline_scores(prep, target, config)}
    evaluation = evaluate(prep.test, scores, capacity=prep.capacity)
    path = write_evaluation(workspace.reports / "evaluation.json", evaluation)
    return evaluation, path, versions


def promote(
    data_dir: Path | str,
    config: Config,
    workspace: Workspace,
    *,
    engine: str = "duckdb",
    mapping: Any = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> list[Promotion]:
    """Compare `challenger` with `champion` per target on the test period of the data; move
    `champion` where the rules allow (not with `dry_run`)."""

    setup_mlflow(workspace)
    names = {t: registered_name(config, t) for t in config.training.targets}
    challengers = {t: require_alias(n, CHALLENGER) for t, n in names.items()}
    prep = prepare(data_dir, config, engine=engine, mapping=mapping, progress=progress)
    decisions = []
    for target, name in names.items():
        y = prep.test[target].to_numpy(float)

        def metrics(version: str, name: str = name, y: np.ndarray = y) -> dict[str, float]:
            p = registered_probabilities(name, version, prep.test, workspace)
            return {"roc_auc": roc_auc(y, p), "ece": expected_calibration_error(y, p)}

        say(progress, f"{target}: comparing challenger and champion on {len(y):,} test rows")
        champion_version = alias_version(name, CHAMPION)
        champion = (champion_version, metrics(champion_version)) if champion_version else None
        decision = decide_promotion(
            target, name, (challengers[target], metrics(challengers[target])), champion,
            config.training.promotion,
        )  # fmt: skip
        if not dry_run:
            apply_promotion(decision)
        decisions.append(decision)
    return decisions
