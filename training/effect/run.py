"""`train_effect`: the callback effect model's MLflow job, and `load_effect_model` for its users.

One run: the randomised callback experiment (`training.effect.data`) over monthly as-of dates ->
split by time with the label gap (`training.split.time_split`) -> the learners of
`effect.learner` (T-, X- or the risk-scaled logit learner, `training.effect.logit`) on the train
part, early stopping and the choice of learner on the validation part -> evaluation on the newest
period against risk ranking (the champion churn model's probability when one is registered, else
a LightGBM churn model fitted on the same rows) and random scores, and on the demo bank against
the true effects -> plots, `reports/effect_evaluation.json` -> the model as a pyfunc registered
as `keepwell-callback-effect` with the alias `challenger`, and `champion` when it beats risk
ranking steadily: the 10th percentile of Qini(model) - Qini(risk) over 200 bootstrap samples of
the evaluation period's customers is above 0 (`promotion_rule`; the reason is stored as the
version's `alias_reason` tag).

The estimate is intention to treat: the effect of *scheduling* a policy callback, which includes
the share of calls that never reach the customer (the randomisation is on the assignment).
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from features.loading import monthly_as_of_dates, open_data
from keepwell.io import write_text
from training.dataset import default_last_as_of
from training.effect.data import EffectSettings, build_effect_data, oracle_effects
from training.effect.evaluation import (
    MODEL,
    ORACLE,
    RANDOM,
    RISK,
    effect_figures,
    evaluation_table,
    promotion_rule,
)
from training.effect.model import EffectModel, fit_effect_model, fit_risk_model
from training.effect.pyfunc import example_frame, log_effect_model
from training.plots import save_figures
from training.registered import registered_probabilities
from training.registry import (
    CHALLENGER,
    CHAMPION,
    alias_version,
    model_uri,
    registered_name,
    set_alias,
    setup_mlflow,
)
from training.run import code_version
from training.split import time_split

if TYPE_CHECKING:
    from keepwell.config import Config
    from keepwell.workspace import Workspace
    from training.effect.data import EffectData, EffectSettings
    from training.split import TimeSplit

Progress = Callable[[str], None]
EVALUATION_FILE = "effect_evaluation.json"


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


@dataclass
class EffectResult:
    run_id: str
    tracking_uri: str
    model: EffectModel
    table: dict[str, dict[str, float]]  # scorer -> metrics on the evaluation period
    split: TimeSplit
    arms: dict[str, dict[str, int]]  # part -> treated / control rows
    risk_source: str
    name: str
    version: str
    aliases: list[str]
    alias_reason: str
    evaluation_path: Path
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def effect_dates(loaded: Any, config: Config, settings: EffectSettings) -> list[dt.date]:
    """Up to `settings.snapshots` monthly dates ending at the newest labelled first-of-month,
    each after the data's first event."""

    last = default_last_as_of(loaded.data_end, config.labels.horizon_days)
    dates = monthly_as_of_dates(last, settings.snapshots)
    return [d for d in dates if d > loaded.first_event]


def _learner_inputs(train, valid, data, settings: EffectSettings, config: Config):
    """The arguments the effect model and the risk baseline are both fitted with."""
    args = (train, valid, data.features, data.categorical, settings)
    return args, {"seed": config.training.seed, "threads": config.training.threads}


def _risk_scores(
    data: EffectData,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    test: pd.DataFrame,
    config: Config,
    settings: EffectSettings,
) -> tuple[np.ndarray, str]:
    """The champion churn model's probability when one is registered and scores the rows, else a
    LightGBM churn model fitted on the experiment's train rows (both arms)."""
    from mlflow.exceptions import MlflowException

    name = config.training.registered_models.get("churn") and registered_name(config, "churn")
    version = alias_version(name, CHAMPION) if name else None
    if version is not None:
        try:
            return registered_probabilities(name, version, test), f"{name} v{version} (champion)"
        except (KeyError, ValueError, OSError, MlflowException):
            pass
    args, options = _learner_inputs(train, valid, data, settings, config)
    predict = fit_risk_model(*args, **options)
    return predict(test), "LightGBM churn model fitted on the experiment's train rows"


def _arms(parts: dict[str, pd.DataFrame]) -> dict[str, dict[str, int]]:
    """Treated and control rows of each part of the split."""
    return {
        part: {"treated": int(f["treated"].sum()), "control": int((f["treated"] == 0).sum())}
        for part, f in parts.items()
    }


def _arms_text(arms: dict[str, dict[str, int]]) -> str:
    return ", ".join(
        f"{p} {a['treated']:,} treated / {a['control']:,} control" for p, a in arms.items()
    )


def _run_params(data, model: EffectModel, settings: EffectSettings, risk_source, arms, split):
    """The MLflow run's parameters: the data, the learner, its settings and the split."""
    return {
        "data_first_as_of": data.as_of_dates[0],
        "data_last_as_of": data.as_of_dates[-1],
        "data_snapshots": len(data.as_of_dates),
        "learner": model.learner,
        "learner_setting": settings.learner,
        "propensity": round(model.propensity, 5),
        "risk_baseline": risk_source[:250],
        "dropped_both_arms": data.dropped_both,
        "reasons": ",".join(settings.reasons),
        "num_leaves": settings.num_leaves,
        "max_depth": settings.max_depth,
        "min_child_samples": settings.min_child_samples,
        "learning_rate": settings.learning_rate,
        "lambda_l2": settings.lambda_l2,
        **{f"rows_{p}_{arm}": n for p, a in arms.items() for arm, n in a.items()},
        **split.describe(),
    }


def _log_metrics(model: EffectModel, table, promotion) -> None:
    """Every learner's metrics on the test rows, the validation Qini and deviance, promotion."""
    prefixes = {MODEL: "effect", RISK: "risk", RANDOM: "random", ORACLE: "oracle"}
    mlflow.log_metrics(
        {
            f"{prefixes[s]}_{k}": v
            for s, m in table.items()
            for k, v in m.items()
            if v == v  # NaN metrics are left out
        }
    )
    for learner, q in model.extra["valid_qini"].items():
        mlflow.log_metric(f"valid_qini_{learner}", q)
    for learner, d in model.extra.get("valid_deviance", {}).items():
        mlflow.log_metric(f"valid_deviance_{learner.replace('/', '_')}", d)
    mlflow.log_metrics({f"promotion_{k}": v for k, v in promotion.items()})


def _report(split, arms, table, model: EffectModel, risk_source, alias_reason, promotion):
    """The evaluation report (`reports/evaluation.json`)."""
    return {
        "test_period": [str(d) for d in split.test],
        "arms": arms,
        "table": table,
        "learner": model.extra["learner_choice"],
        "risk_baseline": risk_source,
        "alias": alias_reason,
        "promotion": promotion,
        "logit": model.extra.get("logit_summary"),
        "estimand": "intention to treat: the effect of "
        "scheduling a policy callback, including calls that do not reach",
    }


def _register(model: EffectModel, test, name: str, beats: bool, alias_reason: str):
    """Log and register the model: challenger always, champion when it beats the rule."""
    info = log_effect_model(model, example_frame(model, test), name=name)
    version = str(info.registered_model_version)
    aliases = [CHALLENGER]
    set_alias(name, CHALLENGER, version)
    if beats:
        set_alias(name, CHAMPION, version)
        aliases.append(CHAMPION)
    mlflow.MlflowClient().set_model_version_tag(name, version, "alias_reason", alias_reason)
    return version, aliases


def _fit(train, valid, data, settings: EffectSettings, config: Config, split, progress):
    """The effect model, with what the run records about it in `extra`."""
    _say(progress, f"fitting the callback effect model (learner setting {settings.learner!r})")
    args, options = _learner_inputs(train, valid, data, settings, config)
    model = fit_effect_model(*args, **options)
    _say(progress, model.extra["learner_choice"])
    if "logit_summary" in model.extra:
        _say(progress, model.extra["logit_summary"])
    model.extra.update(
        split=split.describe(),
        spec_version=data.spec.version,
        code_version=code_version(),
        estimand="intention to treat",
    )
    return model


def train_effect(
    data_dir: Path | str,
    config: Config,
    workspace: Workspace,
    progress: Progress | None = None,
) -> EffectResult:
    """One MLflow run that fits, evaluates and registers the callback effect model."""

    started = time.perf_counter()
    settings = EffectSettings.from_config(config)
    setup_mlflow(workspace)
    _say(progress, f"opening {data_dir}")
    loaded = open_data(data_dir, progress=progress)
    dates = effect_dates(loaded, config, settings)
    data = build_effect_data(data_dir, config, dates, loaded=loaded, progress=progress)
    split = time_split(
        data.as_of_dates,
        config.labels.horizon_days,
        settings.valid_snapshots,
        settings.test_snapshots,
    )
    train, valid, test = split.frames(data.frame)
    arms = _arms({"train": train, "valid": valid, "test": test})
    _say(progress, "split by time: " + _arms_text(arms))
    model = _fit(train, valid, data, settings, config, split, progress)
    _say(progress, "baselines: risk ranking and random")
    risk, risk_source = _risk_scores(data, train, valid, test, config, settings)
    rng = np.random.default_rng(config.training.seed)
    scores = {MODEL: model.predict(test), RISK: risk, RANDOM: rng.random(len(test))}
    truth = oracle_effects(data_dir, test)
    if truth is not None:
        scores[ORACLE] = truth
    table = evaluation_table(test, scores, truth, settings.top_shares)
    beats, alias_reason, promotion = promotion_rule(test, scores, settings, config.training.seed)
    alias_reason += f" on {split.test[0]} .. {split.test[-1]}"
    _say(progress, alias_reason)
    name = settings.registered_model
    run_name = f"train-effect {data.as_of_dates[-1]} ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M})"
    with mlflow.start_run(run_name=run_name) as run, tempfile.TemporaryDirectory() as tmp:
        params = _run_params(data, model, settings, risk_source, arms, split)
        mlflow.log_params({k: str(v) for k, v in params.items()})
        mlflow.set_tags(
            {
                "keepwell.job": "train-effect",
                "data_dir": str(data_dir),
                "code_version": model.extra["code_version"],
            }
        )
        _log_metrics(model, table, promotion)

        save_figures(effect_figures(test, scores, truth), Path(tmp) / "plots")
        mlflow.log_artifacts(str(Path(tmp) / "plots"), "plots")
        report = _report(split, arms, table, model, risk_source, alias_reason, promotion)
        evaluation_path = workspace.reports / EVALUATION_FILE
        write_text(evaluation_path, json.dumps(report, indent=2, default=str))
        mlflow.log_artifact(str(evaluation_path))
        _say(progress, f"logging and registering {name}")
        version, aliases = _register(model, test, name, beats, alias_reason)
        result = EffectResult(
            run_id=run.info.run_id,
            tracking_uri=mlflow.get_tracking_uri(),
            model=model,
            table=table,
            split=split,
            arms=arms,
            risk_source=risk_source,
            name=name,
            version=version,
            aliases=aliases,
            alias_reason=alias_reason,
            evaluation_path=evaluation_path,
            seconds=time.perf_counter() - started,
        )
        mlflow.log_metric("seconds", result.seconds)
    return result


def load_effect_model(
    workspace: Workspace, config: Config, *, newest: bool = False
) -> EffectModel | None:
    """The `champion` callback effect model of the workspace's registry (None when there is
    none), or with `newest` the latest registered version whatever its alias (benchmarks: what
    the model does even when it is not promoted; its aliases are in `extra["aliases"]`). Reads
    the boosters directly (no pyfunc, so nothing is put on sys.path)."""
    from mlflow.artifacts import download_artifacts

    setup_mlflow(workspace)
    name = EffectSettings.from_config(config).registered_model
    if newest:
        client = mlflow.MlflowClient()
        try:
            versions = client.search_model_versions(f"name='{name}'")
        except mlflow.exceptions.MlflowException:
            versions = []
        if not versions:
            return None
        latest = max(versions, key=lambda v: int(v.version))
        uri, version = f"models:/{name}/{latest.version}", str(latest.version)
        aliases = sorted(client.get_model_version(name, version).aliases)
    else:
        version = alias_version(name, CHAMPION)
        if version is None:
            return None
        uri, aliases = model_uri(name, CHAMPION), [CHAMPION]
    with tempfile.TemporaryDirectory(prefix="keepwell-effect-") as tmp:
        local = Path(download_artifacts(uri, dst_path=tmp))
        found = sorted(local.rglob("effect.json"))
        if not found:
            raise FileNotFoundError(f"{uri} has no effect.json artifact")
        model = EffectModel.load(found[0].parent)
    model.extra.update(version=version, aliases=aliases or ["none"], registered_model=name)
    return model
