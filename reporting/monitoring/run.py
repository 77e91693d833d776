"""The monitoring job behind `keepwell monitor`: inputs, the report, the plot and the MLflow run.

Reference: the champion churn model's training window - the param `split_train`
("first..last" monthly as-of dates) of the MLflow run that logged it (else the same value in the
model's own `extra["split"]`, else `reference=` given by the caller) - rebuilt from the data
folder with `features.pipeline.build_snapshot_table` and scored by every champion. Current: the
online store's snapshot, or the snapshot of `as_of` built from the data. The arithmetic is in
`reporting.monitoring.drift`. The champions and the `top_n_stability` section come from the caller:
the CLI loads the champions and reads the daily list folders through `serving`, which
`training` does not import (`cli.monitor.list_stability`).

`<workspace>/<paths.reports>/monitoring.json` (written atomically):

    {"schema": "keepwell.monitoring/1", "generated_at": ISO UTC, "as_of": current as-of date,
     "settings": {bins, psi_warn, psi_retrain, score_psi_retrain, min_features_drifted, top_n},
     "reference": {"dates": [...], "rows": n, "source": where the window came from,
                   "run_id": the training run or null, "feature_spec_version", "data_end",
                   "model_versions": {target: "name vN"}},
     "current": {"as_of", "rows", "source": "online store <path>" | "built from <folder>"},
     "data": data folder,
     "features": [{"name", "kind", "psi", "status", "bins", "reference_null_share",
                   "current_null_share"}, ...] highest PSI first (every model feature),
     "scores": [same fields plus "model", "reference_mean", "current_mean"] (calibrated
                probability of each champion),
     "top_n_stability": {"status": compared | no_lists | one_list_day | no_consecutive_days,
                         "dates", "n", "rms", "mean_overlap", "min_overlap", "share_below_half",
                         "rms_below_half", "per_rm": [{"rm_id", "overlap", "common",
                         "first_size", "second_size"}], "note"},
     "recommendation": {"decision": stable | watch | retrain, "reasons": [sentences],
                        "retrain_features", "watch_features", "retrain_scores", "watch_scores"},
     "summary": {"as_of", "recommendation", "max_feature_psi", "drifted_features" (PSI >=
                 psi_warn, by PSI), "score_psi": {target: psi}, "top_n_mean_overlap"},
     "notes": [...], "plot": PNG path, "mlflow": {"run_id", "experiment", "tracking_uri"},
     "seconds": wall time}

The MLflow run goes to the experiment `<mlflow.experiment>-monitoring` of the workspace's store:
metrics `psi.feature.<name>`, `psi.score.<target>` and the summary numbers, the tag
`recommendation`, the JSON and the plot as artifacts.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from features.dates import parse_day
from features.pipeline import build_snapshot_table, open_data
from features.store import OnlineStore, StoreError
from keepwell.io import write_text
from reporting.monitoring.drift import (
    Drift,
    MonitoringError,
    MonitoringSettings,
    drift_table,
    no_stability,
    recommend,
    summary,
    window_dates,
)
from training.plots import save_figures
from training.registry import setup_mlflow

if TYPE_CHECKING:
    from keepwell.config import Config
    from keepwell.workspace import Workspace
    from training.fitted import FittedModel

Progress = Callable[[str], None]
SCHEMA = "keepwell.monitoring/1"
REPORT_FILE = "monitoring.json"
PLOT_NAME = "monitoring"
REFERENCE_PARAM = "split_train"
PLOT_FEATURES = 20
METRIC_UNSAFE = re.compile(r"[^A-Za-z0-9_\-./ ]")


class Champion(Protocol):
    """What the job needs of a loaded champion (`serving.scoring.scorer.ServedModel` fits)."""

    target: str
    name: str
    version: str
    fitted: FittedModel


@dataclass(frozen=True)
class Window:
    dates: list[dt.date]
    source: str
    run_id: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass
class MonitorResult:
    report: dict[str, Any]
    path: Path
    plot: Path
    run_id: str


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def _day(value: Any, what: str) -> dt.date:

    return parse_day(value, MonitoringError, what)


# -- inputs ------------------------------------------------------------------------------------
def training_window(model: Champion, reference: str | None = None) -> Window:
    """The reference window: `reference` ("first..last") when given, else the `split_train`
    param of the run that logged `model`, else the split the fitted model carries."""
    if reference:
        return Window(window_dates(reference, what="reference"), "given as --reference")
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    run_id, params = None, {}
    try:
        run_id = client.get_model_version(model.name, model.version).run_id
        if run_id:
            params = dict(client.get_run(run_id).data.params)
    except MlflowException:
        run_id = None
    if params.get(REFERENCE_PARAM):
        dates = window_dates(params[REFERENCE_PARAM], params.get("split_train_snapshots"))
        return Window(dates, f"param {REFERENCE_PARAM} of MLflow run {run_id}", run_id, params)
    split = model.fitted.extra.get("split") or {}
    if split.get(REFERENCE_PARAM):
        dates = window_dates(split[REFERENCE_PARAM], split.get("split_train_snapshots"))
        return Window(dates, f"{model.name} v{model.version} (its recorded split)", run_id, params)
    raise MonitoringError(
        f"the {model.target} champion {model.name} v{model.version} records no training window "
        f"(no param {REFERENCE_PARAM!r} on its MLflow run {run_id}, none in the model): retrain "
        "it with `keepwell train`, or pass --reference FIRST..LAST (monthly as-of dates)"
    )


def _store(workspace: Workspace, config: Config, preload: bool | None = None) -> Any:

    try:
        return OnlineStore(workspace.path(config.paths.feature_store), preload=preload)
    except StoreError as exc:
        raise MonitoringError(
            f"{exc}; or pass --as-of D to build the snapshot from the data"
        ) from None


def _folder(workspace: Workspace, store_data: Any, data_dir: Path | str | None) -> Path:
    if data_dir is not None:
        if not Path(data_dir).is_dir():
            raise MonitoringError(f"the data folder {data_dir} does not exist")
        return Path(data_dir)
    for candidate in (store_data, workspace.demo_data):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise MonitoringError(
        "no data folder to rebuild the training window from: pass --data DIR with the bank's "
        f"tables (neither the online store's source nor {workspace.demo_data} exists)"
    )


def _current(
    workspace: Workspace, config: Config, as_of: dt.date | None, data_dir: Path | str | None
) -> tuple[pd.DataFrame | None, dt.date | None, str, Path, str | None]:
    """(store frame or None, as_of, source, data folder, store spec version)."""
    if as_of is not None:
        try:
            with _store(workspace, config, preload=False) as store:
                origin = store.metadata.get("data")
        except MonitoringError:  # no store: the data folder comes from --data or the demo bank
            origin = None
        return None, as_of, "", _folder(workspace, origin, data_dir), None
    with _store(workspace, config) as store:
        frame = store.lookup(store.customer_ids()).drop(columns=["found"])
        folder = _folder(workspace, store.metadata.get("data"), data_dir)
        return frame, store.as_of, f"online store {store.path}", folder, store.spec_version


# -- the job -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    """The drift of the features and scores, with the scores behind the plot."""

    features: list[Drift]
    scores: list[Drift]
    ref_scores: pd.DataFrame
    cur_scores: pd.DataFrame
    settings: MonitoringSettings


def _frame(data: Any, dates: list[dt.date], config: Config) -> tuple[pd.DataFrame, str]:

    build = build_snapshot_table(data, dates, config)
    return build.to_pyarrow().to_pandas(), build.spec.version


def compare(
    models: Mapping[str, Champion],
    reference: pd.DataFrame,
    current: pd.DataFrame,
    settings: MonitoringSettings,
) -> Comparison:
    """PSI of every model feature (categoricals as the models encode them) and of each
    champion's calibrated probability, reference against current."""
    names = list(dict.fromkeys(f for m in models.values() for f in m.fitted.features))
    categorical = {c for m in models.values() for c in m.fitted.categories}
    features = drift_table(reference, current, names, settings, categorical=categorical)
    ref_scores, cur_scores = (
        pd.DataFrame({t: m.fitted.predict_proba(f, threads=1) for t, m in models.items()})
        for f in (reference, current)
    )
    bound = settings.score_psi_retrain
    scores = drift_table(ref_scores, cur_scores, list(models), settings, retrain_bound=bound)
    return Comparison(features, scores, ref_scores, cur_scores, settings)


def monitor(
    workspace: Workspace,
    config: Config,
    models: Mapping[str, Champion],
    *,
    as_of: dt.date | str | None = None,
    data_dir: Path | str | None = None,
    reference: str | None = None,
    stability: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> MonitorResult:
    """Compare the current snapshot with the churn champion's training window, check the RMs'
    top N, recommend, write the report and the plot, log an MLflow run (see the module doc)."""

    started = time.perf_counter()
    settings = MonitoringSettings.from_config(config)
    setup_mlflow(workspace)  # the registry behind the models: their runs hold the window
    if "churn" not in models:
        raise MonitoringError(f"the churn champion is needed for the reference, got {list(models)}")
    window = training_window(models["churn"], reference)
    day = _day(as_of, "--as-of") if as_of is not None else None
    store_frame, day, source, folder, store_spec = _current(workspace, config, day, data_dir)
    span = f"{window.dates[0]}..{window.dates[-1]}"
    _say(progress, f"reference {span} ({window.source}); current {day}")
    data = open_data(folder, progress=progress)
    ref, spec = _frame(data, window.dates, config)
    if store_frame is None:
        _say(progress, f"building the snapshot of {day} from {folder}")
        current, source = _frame(data, [day], config)[0], f"built from {folder}"
    elif store_spec != spec:
        raise MonitoringError(
            f"the online store holds feature spec {store_spec}, the reference snapshots were "
            f"built with {spec}: re-run `keepwell features materialize`, or pass --as-of D"
        )
    else:
        current = store_frame
    notes = [f"{m.name} v{m.version} was trained on feature spec {m.fitted.spec_version}, the "
             f"snapshots use {spec}" for m in models.values()
             if m.fitted.spec_version and m.fitted.spec_version != spec]  # fmt: skip
    _say(progress, f"PSI: {len(ref):,} reference rows, {len(current):,} current rows")
    comparison = compare(models, ref, current, settings)
    features, scores = comparison.features, comparison.scores
    if stability is None:
        stability = no_stability("no_lists", "no list folders were given", [], settings.top_n)
    advice = recommend(features, scores, settings)
    versions = {t: f"{m.name} v{m.version}" for t, m in models.items()}
    means = {t: (comparison.ref_scores[t].mean(), comparison.cur_scores[t].mean()) for t in models}
    report = {
        "schema": SCHEMA,
        "generated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "as_of": day.isoformat(),
        "settings": settings.to_dict(),
        "reference": {"dates": [d.isoformat() for d in window.dates], "rows": len(ref),
                      "source": window.source, "run_id": window.run_id,
                      "feature_spec_version": spec, "data_end": window.params.get("data_end"),
                      "model_versions": versions},
        "current": {"as_of": day.isoformat(), "rows": len(current), "source": source},
        "data": str(folder),
        "features": [d.to_dict() for d in features],
        "scores": [{**d.to_dict(), "model": versions[d.name],
                    "reference_mean": round(float(means[d.name][0]), 6),
                    "current_mean": round(float(means[d.name][1]), 6)} for d in scores],
        "top_n_stability": stability,
        "recommendation": advice.to_dict(),
        "summary": summary(day, features, scores, stability, advice, settings),
        "notes": notes,
    }  # fmt: skip
    return _publish(workspace, config, report, comparison, started, progress)


# -- outputs -----------------------------------------------------------------------------------
def metric_name(prefix: str, name: str) -> str:
    """An MLflow metric name: letters, digits and `_-./ ` only."""
    return f"{prefix}.{METRIC_UNSAFE.sub('_', name)}"


def plot(comparison: Comparison) -> Any:
    """The top feature PSIs as bars with the two bounds, and each score's distribution,
    reference against current. A figure on its own Agg canvas (nothing global)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    s, features, scores = comparison.settings, comparison.features, comparison.scores
    fig = Figure(figsize=(11, 7.5), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, max(len(scores), 1), height_ratios=[1.4, 1])
    ax = fig.add_subplot(grid[0, :])
    top = features[:PLOT_FEATURES][::-1]
    colours = {"stable": "#7f8c8d", "watch": "#e67e22", "retrain": "#c0392b"}
    ax.barh([d.name for d in top], [d.psi for d in top], color=[colours[d.status] for d in top])
    ax.axvline(s.psi_warn, color=colours["watch"], ls="--", label=f"watch {s.psi_warn:g}")
    ax.axvline(s.psi_retrain, color=colours["retrain"], ls="--", label=f"retrain {s.psi_retrain:g}")
    ax.set_xlabel("population stability index (training window -> current)")
    ax.set_title(f"The {len(top)} most moved of {len(features)} features")
    ax.legend(loc="lower right")
    for i, d in enumerate(scores):
        sub = fig.add_subplot(grid[1, i])
        r = comparison.ref_scores[d.name].to_numpy(float)
        c = comparison.cur_scores[d.name].to_numpy(float)
        hi = float(np.nanquantile(np.concatenate([r, c]), 0.995)) or 1.0
        edges = np.linspace(0, hi, 41)
        sub.hist(r, bins=edges, density=True, histtype="step", lw=1.6, label="training window")
        sub.hist(c, bins=edges, density=True, histtype="step", lw=1.6, label="current")
        sub.set_title(f"{d.name} probability: PSI {d.psi:.3f} ({d.status})")
        sub.set_xlabel("calibrated probability")
        sub.legend()
    return fig


def _experiment(workspace: Workspace, config: Config) -> tuple[str, str]:
    """(name, id) of `<mlflow.experiment>-monitoring`, created beside the training one."""
    import mlflow

    name = f"{config.mlflow.experiment}-monitoring"
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return name, experiment.experiment_id
    artifacts = workspace.path(config.mlflow.artifact_root)
    artifacts.mkdir(parents=True, exist_ok=True)
    return name, mlflow.create_experiment(name, artifact_location=artifacts.as_uri())


def _publish(
    workspace: Workspace,
    config: Config,
    report: dict[str, Any],
    comparison: Comparison,
    started: float,
    progress: Progress | None,
) -> MonitorResult:
    import mlflow

    name, experiment_id = _experiment(workspace, config)
    path, summ, ref = workspace.reports / REPORT_FILE, report["summary"], report["reference"]
    _say(progress, f"writing {path} and logging the MLflow run ({name})")
    run_name = f"monitor {report['as_of']} ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M})"
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        figure = save_figures({PLOT_NAME: plot(comparison)}, workspace.reports)[0]
        uri = mlflow.get_tracking_uri()
        report["plot"] = str(figure)
        report["mlflow"] = {"run_id": run.info.run_id, "experiment": name, "tracking_uri": uri}
        report["seconds"] = round(time.perf_counter() - started, 2)
        write_text(path, json.dumps(report, indent=2, allow_nan=False) + "\n")
        metrics = {metric_name("psi.feature", d.name): d.psi for d in comparison.features}
        metrics |= {metric_name("psi.score", d.name): d.psi for d in comparison.scores}
        metrics["max_feature_psi"] = summ["max_feature_psi"]
        metrics["drifted_features"] = len(summ["drifted_features"])
        if summ["top_n_mean_overlap"] is not None:
            metrics["top_n_mean_overlap"] = summ["top_n_mean_overlap"]
        mlflow.log_metrics(metrics)
        params = {"as_of": report["as_of"], "reference": f"{ref['dates'][0]}..{ref['dates'][-1]}",
                  "reference_rows": ref["rows"], "current_rows": report["current"]["rows"],
                  **{f"model_{t}": v for t, v in ref["model_versions"].items()},
                  **comparison.settings.to_dict()}  # fmt: skip
        mlflow.log_params(params)
        mlflow.set_tags({"recommendation": report["recommendation"]["decision"],
                         "keepwell.job": "monitor"})  # fmt: skip
        mlflow.log_artifact(str(path))
        mlflow.log_artifact(str(figure))
    return MonitorResult(report, path, figure, run.info.run_id)
