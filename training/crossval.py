"""Stratified K-fold cross-validation for data without a time axis (one snapshot per customer).

Keepwell's own evaluation splits by time (`training.split`). A mapped snapshot table such as the
IBM telco churn file has a single as-of date, so its benchmark is 5-fold stratified
cross-validation instead:

    data = load_mapped_snapshot("../shared/data", "conf/mappings/telco.yaml", config)
    result = cross_validate(data.frame, "churn", data.features, data.categorical, config, seed=7)
    result.summary("model")    # ModelScores: mean and std ROC-AUC and the per-fold values

Per fold, three models are trained on the other folds and scored on the held-out fold:

* `model`: Keepwell's LightGBM, trained by the product's own trainer
  (`training.model.fit_target`: the configured LightGBM parameters, one early-stopped booster
  per candidate shape, the cheapest shape to explain within `explain_budget.auc_tolerance` of
  the best, calibrated with `training.calibration`, or Platt when the validation rows are fewer
  than `training.isotonic_min_rows`). Its validation part is an inner stratified 20 % of the
  training folds; the held-out fold is only ever scored. Its score is the calibrated
  probability the product serves (`FittedModel.predict_proba`).
* `logistic`: the plain logistic regression of `training.baselines.fit_logistic`, fitted on
  the whole training folds.
* `lightgbm_default`: `lightgbm.LGBMClassifier()` with its default settings (only the seed and
  thread count set), fitted on the whole training folds, for the record.

Everything is seeded: `seed` shuffles the folds, splits the inner validation part and seeds
LightGBM, so the same frame, config and seed give the same folds and the same scores. The
baselines run on one thread by default (`threads`): on a few thousand rows and shared cores,
more threads only contend.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.mapping import load_mapping
from features.pipeline import build_snapshot_table
from training import baselines
from training.fitted import FittedModel
from training.metrics import roc_auc
from training.model import categories_of, encoder, fit_target

if TYPE_CHECKING:
    from keepwell.config import Config

MODELS = ("model", "logistic", "lightgbm_default")
INNER_VALID_SHARE = 0.2  # of each training fold: early stopping, shape choice, calibration
KEYS = ("customer_id", "as_of")


# -- the data ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SnapshotData:
    """A mapped data set's labelled feature frame and what the feature build kept and skipped."""

    frame: pd.DataFrame  # customer_id, as_of, features, the target (0/1)
    target: str
    features: tuple[str, ...]
    categorical: tuple[str, ...]  # string features: LightGBM categories, one-hot for the logistic
    skipped: tuple[str, ...]  # "feature: needs table.column" for every feature the data cannot fill
    unlabeled: int  # rows dropped because their label was unknown
    skipped_summary: tuple[str, ...] = ()  # the skipped features, one line per missing input


def categorical_columns(frame: pd.DataFrame, features: Sequence[str]) -> tuple[str, ...]:
    """The features held as text (string, object or category dtype): categorical inputs."""
    return tuple(
        name
        for name in features
        if isinstance(frame[name].dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(frame[name].dtype)
    )


def load_mapped_snapshot(
    data_dir: Path | str, mapping: Any, config: Config, target: str = "churn"
) -> SnapshotData:
    """Build a mapped snapshot data set's features and labels through its mapping.

    `mapping` is a path or a loaded `features.mapping` mapping with a `snapshot` (its single
    nominal as-of date is used). Rows with an unknown label are dropped (and counted); the
    label becomes 0/1.
    """

    loaded = load_mapping(mapping) if isinstance(mapping, (str, Path)) else mapping
    if loaded.snapshot is None:
        raise ValueError(
            f"mapping {loaded.name!r} has no snapshot section; cross-validation needs a "
            "one-snapshot data set (use the time-split trainer for event data)"
        )
    build = build_snapshot_table(
        data_dir, [loaded.snapshot.as_of], config, mapping=loaded, labels=True
    )
    if target not in build.label_columns:
        raise KeyError(
            f"mapping {loaded.name!r} provides label(s) {build.label_columns}, not {target!r}"
        )
    raw = build.to_pyarrow().to_pandas()
    known = raw[target].notna()
    if "labeled" in raw.columns:
        known &= raw["labeled"].fillna(False).astype(bool)
    features = tuple(build.feature_columns)
    frame = raw.loc[known, [*KEYS, *features]].reset_index(drop=True)
    frame[target] = raw.loc[known, target].astype(bool).astype(int).to_numpy()
    return SnapshotData(
        frame=frame,
        target=target,
        features=features,
        categorical=categorical_columns(frame, features),
        skipped=tuple(build.skipped),
        skipped_summary=tuple(build.skipped_summary),
        unlabeled=int((~known).sum()),
    )


# -- the result --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelScores:
    """One model's held-out ROC-AUC per fold, and its out-of-fold scores (one per row)."""

    name: str
    fold_auc: tuple[float, ...]
    oof: np.ndarray = field(repr=False)
    seconds: float = 0.0  # fit + predict time over all folds

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_auc))

    @property
    def std(self) -> float:
        """Sample standard deviation over the folds (ddof = 1)."""
        return float(np.std(self.fold_auc, ddof=1)) if len(self.fold_auc) > 1 else 0.0


@dataclass(frozen=True)
class CrossValResult:
    """Per-model scores, the fold of every row, and how the LightGBM model was chosen per fold."""

    target: str
    folds: int
    seed: int
    rows: int
    positives: int
    features: tuple[str, ...]
    categorical: tuple[str, ...]
    fold_of: np.ndarray = field(repr=False)  # the held-out fold of each row, 0 .. folds-1
    models: dict[str, ModelScores] = field(default_factory=dict)
    shapes: tuple[dict[str, int], ...] = ()  # chosen shape per fold
    best_iterations: tuple[int, ...] = ()
    margin_auc: tuple[float, ...] = ()  # the model's uncalibrated margin, per fold
    calibration: tuple[str, ...] = ()  # the model's calibration method, per fold
    shape_choices: tuple[dict[str, Any], ...] = ()  # why that shape (fit_target's record)

    def summary(self, name: str) -> ModelScores:
        if name not in self.models:
            raise KeyError(f"no model {name!r} in the result; it has {list(self.models)}")
        return self.models[name]

    @property
    def positive_rate(self) -> float:
        return self.positives / self.rows if self.rows else float("nan")


# -- the models --------------------------------------------------------------------------------
def fit_model(
    fit: pd.DataFrame,
    valid: pd.DataFrame,
    target: str,
    features: Sequence[str],
    categorical: Sequence[str],
    config: Config,
    *,
    seed: int,
) -> FittedModel:
    """Keepwell's LightGBM for `target`, trained exactly as the product trains it
    (`training.model.fit_target`: one booster per configured shape early-stopped on `valid`,
    the shape chosen on `valid`, calibrated on `valid`), with LightGBM seeded by `seed`."""

    seeded = config.model_copy(
        update={"training": config.training.model_copy(update={"seed": seed})}
    )
    return fit_target(fit, valid, target, features, categorical, seeded)


def fit_default_lightgbm(
    train: pd.DataFrame,
    target: str,
    features: Sequence[str],
    categorical: Sequence[str],
    *,
    seed: int,
    threads: int = 1,
) -> tuple[FittedModel, Any]:
    """`lightgbm.LGBMClassifier()` with default settings on the same encoded inputs (categories
    natively); returns the encoder and the fitted classifier."""
    import lightgbm as lgb

    enc = encoder(target, features, categories_of(train, categorical))
    clf = lgb.LGBMClassifier(random_state=seed, n_jobs=threads, verbosity=-1)
    clf.fit(enc.matrix(train), train[target].to_numpy(int))
    return enc, clf


# -- the cross-validation ----------------------------------------------------------------------
def fold_assignment(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The held-out fold of every row: stratified by `y`, shuffled with `seed`."""
    from sklearn.model_selection import StratifiedKFold

    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {folds}")
    counts = np.bincount(np.asarray(y, dtype=int), minlength=2)
    if counts.min() < folds:
        raise ValueError(
            f"{folds}-fold stratified cross-validation needs at least {folds} rows of each class; "
            f"the target has {counts[0]} negatives and {counts[1]} positives"
        )
    fold_of = np.full(len(y), -1, dtype=int)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
        fold_of[test] = k
    return fold_of


def _check_frame(
    frame: pd.DataFrame, target: str, features: Sequence[str], categorical: Sequence[str]
) -> np.ndarray:
    """The target as 0/1 ints; errors name missing columns and bad label values."""
    missing = [c for c in (target, *features) if c not in frame.columns]
    if missing:
        raise KeyError(f"the frame lacks column(s) {missing}; it has {list(frame.columns)}")
    stray = [c for c in categorical if c not in features]
    if stray:
        raise ValueError(f"categorical column(s) {stray} are not among the features")
    values = frame[target]
    if values.isna().any():
        raise ValueError(f"target {target!r} has {int(values.isna().sum())} null label(s)")
    y = pd.to_numeric(values.astype("object"), errors="raise").to_numpy()
    bad = sorted({int(v) if float(v).is_integer() else float(v) for v in np.unique(y)} - {0, 1})
    if bad:
        raise ValueError(f"target {target!r} must be 0/1, found values {bad[:5]}")
    return y.astype(int)


def cross_validate(
    frame: pd.DataFrame,
    target: str,
    features: Sequence[str],
    categorical: Sequence[str],
    config: Config,
    *,
    folds: int = 5,
    seed: int,
    threads: int = 1,
) -> CrossValResult:
    """Stratified `folds`-fold cross-validation of the three models (see the module docstring).

    Each row is scored exactly once, by models that never saw it; ROC-AUC is computed per fold
    on the held-out rows.
    """
    from sklearn.model_selection import train_test_split

    y = _check_frame(frame, target, features, categorical)
    training = config.training.model_copy(update={"threads": threads})
    config = config.model_copy(update={"training": training})
    data = frame.reset_index(drop=True).assign(**{target: y})
    fold_of = fold_assignment(y, folds, seed)
    oof = {name: np.full(len(data), np.nan) for name in MODELS}
    fold_auc: dict[str, list[float]] = {name: [] for name in MODELS}
    seconds = dict.fromkeys(MODELS, 0.0)
    shapes, iterations, margin_auc, calibration, choices = [], [], [], [], []
    for k in range(folds):
        train_rows, test_rows = np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)
        train, test = data.iloc[train_rows], data.iloc[test_rows]
        fit_rows, valid_rows = train_test_split(
            train_rows, test_size=INNER_VALID_SHARE, stratify=y[train_rows], random_state=seed
        )
        start = time.perf_counter()
        model = fit_model(
            data.iloc[fit_rows], data.iloc[valid_rows], target, features, categorical, config,
            seed=seed,
        )  # fmt: skip
        oof["model"][test_rows] = model.predict_proba(test, threads=threads)
        margin_auc.append(roc_auc(y[test_rows], model.margin(test, threads=threads)))
        shapes.append(dict(model.shape))
        calibration.append(model.calibrator.method)
        iterations.append(model.best_iteration)
        choices.append(model.extra.get("shape_choice", {}))
        seconds["model"] += time.perf_counter() - start

        start = time.perf_counter()
        logistic = baselines.fit_logistic(train, target, features, categorical, seed=seed)
        oof["logistic"][test_rows] = logistic.predict_proba(test)
        seconds["logistic"] += time.perf_counter() - start

        start = time.perf_counter()
        encoder, clf = fit_default_lightgbm(
            train, target, features, categorical, seed=seed, threads=threads
        )
        oof["lightgbm_default"][test_rows] = clf.predict_proba(encoder.matrix(test))[:, 1]
        seconds["lightgbm_default"] += time.perf_counter() - start

        for name in MODELS:
            fold_auc[name].append(roc_auc(y[test_rows], oof[name][test_rows]))
    return CrossValResult(
        target=target,
        folds=folds,
        seed=seed,
        rows=len(data),
        positives=int(y.sum()),
        features=tuple(features),
        categorical=tuple(categorical),
        fold_of=fold_of,
        models={
            name: ModelScores(name, tuple(fold_auc[name]), oof[name], seconds[name])
            for name in MODELS
        },
        shapes=tuple(shapes),
        best_iterations=tuple(iterations),
        margin_auc=tuple(margin_auc),
        calibration=tuple(calibration),
        shape_choices=tuple(choices),
    )
