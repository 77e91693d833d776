"""The training, evaluation and promotion jobs, as the CLI and the MLproject entry points run them.

`train` is one MLflow run: labelled monthly snapshots -> split by time -> per target a LightGBM
model (shape chosen for explanation cost), calibrated on the validation period -> evaluation on
the test period against a logistic regression, the seed rule and (on the demo bank) the oracle ->
plots, model cards, `workspace/reports/evaluation.json` -> one self-contained pyfunc per target,
registered as a new version with the alias `challenger`.

`evaluate` scores a registered model (by alias) on the test period of the data, with the same
baselines. `promote` compares `challenger` with `champion` on the same held-out rows and moves
`champion` only when the rules in `training.registry.decide_promotion` allow it.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from keepwell.io import write_text
from training import dataset
from training.baselines import fit_logistic, oracle_scores, seed_rule
from training.card import model_card
from training.evaluate import daily_capacity, evaluate, flat_metrics, risk_tier, write_evaluation
from training.model import fit_target
from training.plots import save_figures, shap_summary_figure, target_figures
from training.pyfunc import log_model
from training.reasons import reference_values
from training.registry import (
    CHALLENGER,
    model_uri,
    registered_name,
    set_alias,
    setup_mlflow,
)
from training.split import SplitError, time_split

if TYPE_CHECKING:
    from keepwell.config import Config
    from keepwell.workspace import Workspace
    from training.dataset import TrainingData
    from training.evaluate import Evaluation
    from training.fitted import FittedModel
    from training.split import TimeSplit

Progress = Callable[[str], None]
REPO = Path(__file__).resolve().parents[1]
SHAP_SAMPLE_ROWS = 5000  # test rows behind the SHAP summary plot


def say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def code_version() -> str:
    """The git commit of the code (with "-dirty" for uncommitted changes), else the package
    version."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        from importlib.metadata import version

        return f"keepwell-{version('keepwell')}"


@dataclass
class Prepared:
    """The labelled snapshots of a data folder, split by time, with what evaluation needs."""

    data: TrainingData
    split: TimeSplit
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    data_dir: Path | None
    capacity: int | None


def prepare(
    data_dir: Path | str,
    config: Config,
    *,
    engine: str = "duckdb",
    mapping: Any = None,
    last_as_of: dt.date | str | None = None,
    progress: Progress | None = None,
) -> Prepared:

    split_cfg = config.training.split
    data = dataset.load_training_data(
        data_dir, config, last_as_of=last_as_of, engine=engine, mapping=mapping,
        progress=progress,
    )  # fmt: skip
    if len(data.as_of_dates) == 1:
        raise SplitError(
            f"the data has a single snapshot (as_of {data.as_of_dates[0]}) and no time axis, so "
            "it cannot be split by time into train, validation and test periods; cross-validate "
            "it instead: python -m bench.crossval_bench --data-dir DIR --mapping FILE"
        )
    split = time_split(
        data.as_of_dates, config.labels.horizon_days, split_cfg.valid_snapshots,
        split_cfg.test_snapshots,
    )  # fmt: skip
    train, valid, test = split.frames(data.frame)
    say(
        progress,
        f"split by time: train {len(train):,} rows ({split.train[0]}..{split.train[-1]}), "
        f"valid {len(valid):,} ({split.valid[0]}..{split.valid[-1]}), "
        f"test {len(test):,} ({split.test[0]}..{split.test[-1]})",
    )
    folder = Path(data_dir) if mapping is None else None
    capacity = daily_capacity(folder) if folder is not None else None
    return Prepared(data, split, train, valid, test, folder, capacity)


def baseline_scores(prep: Prepared, target: str, config: Config) -> dict[str, np.ndarray | None]:
    """The logistic regression (trained on the train part), the seed rule and the oracle."""

    d = prep.data
    logistic = fit_logistic(prep.train, target, d.features, d.categorical,
                            seed=config.training.seed)  # fmt: skip
    try:
        rule = seed_rule(prep.test)
    except KeyError:  # mapped data without the rule's features
        rule = None
    oracle = oracle_scores(prep.data_dir, prep.test, target) if prep.data_dir else None
    return {"logistic": logistic.predict_proba(prep.test), "seed_rule": rule, "oracle": oracle}


@dataclass
class RegisteredModel:
    target: str
    name: str
    version: str
    uri: str


@dataclass
class TrainResult:
    run_id: str
    evaluation: Evaluation
    evaluation_path: Path
    split: TimeSplit
    models: dict[str, RegisteredModel] = field(default_factory=dict)
    fitted: dict[str, FittedModel] = field(default_factory=dict)
    cards: dict[str, Path] = field(default_factory=dict)
    shapes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    prepared: Prepared | None = None  # the data and its split, for notebooks and follow-up work
    tracking_uri: str = ""  # the store the run went to


def _run_params(prep: Prepared, config: Config, engine: str) -> dict[str, Any]:
    d = prep.data
    t = config.training
    params: dict[str, Any] = {
        "data_first_as_of": d.as_of_dates[0],
        "data_last_as_of": d.as_of_dates[-1],
        "data_snapshots": len(d.as_of_dates),
        "data_end": d.data_end,
        "data_rows": len(d.frame),
        "data_hash": d.data_hash,
        "feature_spec_version": d.spec.version,
        "features": len(d.features),
        "engine": engine,
        "horizon_days": config.labels.horizon_days,
        "calibration": t.calibration,
        "imbalance": t.imbalance,
        "max_trees": t.max_trees,
        "early_stopping_rounds": t.early_stopping_rounds,
        "seed": t.seed,
        **{f"lgb_{k}": v for k, v in t.lightgbm.items()},
        **prep.split.describe(),
    }
    return {k: str(v) for k, v in params.items()}


def train(
    data_dir: Path | str,
    config: Config,
    workspace: Workspace,
    *,
    engine: str = "duckdb",
    mapping: Any = None,
    progress: Progress | None = None,
) -> TrainResult:
    """One MLflow run that trains, evaluates and registers a model per target (see module doc)."""
    import mlflow

    setup_mlflow(workspace)
    prep = prepare(data_dir, config, engine=engine, mapping=mapping, progress=progress)
    d = prep.data
    targets = [t for t in config.training.targets if t in d.targets]
    if not targets:
        raise ValueError(f"the data has none of the targets {config.training.targets} as labels")
    version = code_version()
    run_name = f"train {d.as_of_dates[-1]} ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M})"
    with mlflow.start_run(run_name=run_name) as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params(_run_params(prep, config, engine))
        mlflow.set_tags({"code_version": version, "data_dir": str(data_dir),
                         "keepwell.job": "train"})  # fmt: skip
        mlflow.log_dict({"features": d.spec.records(), "params": list(d.spec.params)},
                        "feature_spec.json")  # fmt: skip
        fitted: dict[str, FittedModel] = {}
        scores: dict[str, dict[str, np.ndarray | None]] = {}
        for target in targets:
            say(progress, f"{target}: fitting LightGBM shapes on {len(prep.train):,} rows")
            model = fit_target(prep.train, prep.valid, target, d.features, d.categorical, config,
                               progress=progress)  # fmt: skip
            model.extra.update(
                reference=reference_values(prep.train, d.features),
                data_window={k: str(v) for k, v in d.window().items()},
                split=prep.split.describe(),
                data_hash=d.data_hash,
                code_version=version,
            )
            fitted[target] = model
            say(progress, f"{target}: baselines and test-period scores")
            scores[target] = {"model": model.predict_proba(prep.test),
                              **baseline_scores(prep, target, config)}  # fmt: skip
        evaluation = evaluate(prep.test, scores, capacity=prep.capacity)
        reports = workspace.reports
        reports.mkdir(parents=True, exist_ok=True)
        evaluation_path = write_evaluation(reports / "evaluation.json", evaluation)
        mlflow.log_artifact(str(evaluation_path))
        mlflow.log_metrics(flat_metrics(evaluation))
        say(progress, "plots")
        _log_plots(prep, fitted, scores, config, Path(tmp) / "plots")
        result = TrainResult(run.info.run_id, evaluation, evaluation_path, prep.split,
                             tracking_uri=mlflow.get_tracking_uri())  # fmt: skip
        for target, model in fitted.items():
            result.shapes[target] = shapes_table(model)
            result.cards[target] = _log_card(target, model, evaluation, prep, config, version,
                                             reports)  # fmt: skip
            say(progress, f"{target}: logging and registering the model")
            result.models[target] = _register(target, model, prep, config, run.info.run_id)
        result.fitted = fitted
        result.prepared = prep
    return result


def _log_plots(
    prep: Prepared,
    fitted: dict[str, FittedModel],
    scores: dict[str, dict[str, np.ndarray | None]],
    config: Config,
    folder: Path,
) -> None:
    import mlflow

    test = prep.test
    sample = test.sample(min(SHAP_SAMPLE_ROWS, len(test)), random_state=config.training.seed)
    snapshots = len(prep.split.test)
    for target, model in fitted.items():
        y = test[target].to_numpy(float)
        cuts = config.tiers.risk_cut_points
        figs = target_figures(
            target, y, scores[target], capacity=prep.capacity, snapshots=snapshots,
            tiers=risk_tier(scores[target]["model"], target, config),
            cuts={"high": getattr(cuts.high, target), "medium": getattr(cuts.medium, target)},
        )  # fmt: skip
        contributions = model.contributions(sample)
        figs[f"{target}_shap_summary"] = shap_summary_figure(
            contributions, model.matrix(sample), list(model.features)
        )
        save_figures(figs, folder)
    mlflow.log_artifacts(str(folder), "plots")


def shapes_table(model: FittedModel) -> list[dict[str, Any]]:
    """The candidate shapes of `fit_target` as rows for the model card and the CLI."""
    chosen = model.extra.get("shape_choice", {}).get("chosen")
    rows = []
    for i, c in enumerate(model.extra.get("shapes", [])):
        rows.append({
            **c.get("shape", {}),
            "valid_roc_auc": c.get("valid_auc"),
            "trees": c.get("trees"),
            "predict_us_per_row": c.get("predict_us_per_row"),
            "explain_us_per_row": c.get("explain_us_per_row"),
            "projected_explain_seconds": c.get("explain_seconds"),
            "chosen": i == chosen,
        })  # fmt: skip
    return rows


def data_window(prep: Prepared, target: str) -> dict[str, Any]:
    """Rows, positives and base rate of each part for `target`, plus the data's identity."""
    out: dict[str, Any] = {}
    for part, frame in (("train", prep.train), ("valid", prep.valid), ("test", prep.test)):
        y = frame[target].to_numpy(float)
        out[part] = {"rows": len(y), "positives": int(y.sum()),
                     "base_rate": float(y.mean()) if len(y) else None}  # fmt: skip
    out |= {k: str(v) for k, v in prep.data.window().items()}
    out["data_hash"] = prep.data.data_hash
    return out


def _log_card(
    target: str,
    model: FittedModel,
    evaluation: Evaluation,
    prep: Prepared,
    config: Config,
    version: str,
    reports: Path,
) -> Path:
    import mlflow

    card = model_card(
        target, model, evaluation.targets[target], prep.split.describe(),
        data_window(prep, target), prep.data.spec.version, version, shapes_table(model), config,
    )  # fmt: skip
    mlflow.log_text(card, f"model_card_{target}.md")
    path = reports / f"model_card_{target}.md"
    write_text(path, card)
    return path


def _register(
    target: str, model: FittedModel, prep: Prepared, config: Config, run_id: str
) -> RegisteredModel:
    from mlflow import MlflowClient

    name = registered_name(config, target)
    example = prep.test[list(model.features)].head(5)
    info = log_model(model, prep.data.spec, config, name=f"{target}_model",
                     registered_model_name=name, input_example=example)  # fmt: skip
    version = str(info.registered_model_version)
    set_alias(name, CHALLENGER, version)
    client = MlflowClient()
    client.set_model_version_tag(name, version, "data_hash", prep.data.data_hash)
    client.set_model_version_tag(name, version, "test_period", json.dumps(
        [str(d) for d in prep.split.test]))  # fmt: skip
    client.set_model_version_tag(name, version, "run_id", run_id)
    return RegisteredModel(target, name, version, model_uri(name, CHALLENGER))
