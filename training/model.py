"""One LightGBM model per target, with its tree shape chosen for the cost of explaining it.

`fit_target(train, valid, "churn", features, categorical, config)`:

1. encodes the frames as the model will see them in serving (`FittedModel.matrix`: string
   features as pandas categories with the training levels, sorted; an unseen level is missing);
2. trains one booster per shape in `config.training.shapes` (num_leaves, max_depth,
   min_child_samples) with early stopping on the validation part;
3. measures, for each, the validation ROC-AUC, the trees kept, and the CPU microseconds per row
   to predict and to explain (`pred_contrib`, exact TreeSHAP) on a fixed sample, and projects
   the seconds to explain `explain_budget.customers` customers on `explain_budget.cores` cores;
4. keeps the cheapest shape to explain whose validation AUC is within
   `explain_budget.auc_tolerance` of the best shape and whose projection fits
   `explain_budget.seconds` (if none fits: the cheapest within the tolerance, recorded as
   over budget);
5. calibrates the chosen booster's validation margin (`Calibrator`, isotonic or Platt).

The candidates table and the reason for the choice travel in `FittedModel.extra` ("shapes",
"shape_choice"), as plain JSON types, for the model card and the MLflow run.

Hyper-parameter search (`training.tuning_trials`) is not implemented because it did not pay:
on two 20,000-customer demo banks, the best of 8 seeded random trials (learning rate 0.02-0.1,
feature fraction 0.4-1, L2 0.1-100, minimum leaf size 50-800; judged on validation AUC) moved
test ROC-AUC by -0.0001 to +0.0013 against the defaults, well inside its noise (about 0.006),
for 9 times the training time. The option must stay 0; a positive value is an error rather
than a silent no-op.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from training.fitted import Calibrator, FittedModel
from training.metrics import roc_auc

if TYPE_CHECKING:
    from keepwell.config import Config, ExplainBudget, ModelShape

Progress = Callable[[str], None]
TIMING_ROWS = 1000  # rows of the fixed sample the predict / explain timings run on
TIMING_REPEATS = 3  # repetitions; the minimum is kept
TIMING_SECONDS = 0.5  # ... stopping early once the repetitions took this much CPU time
# Early stopping on the validation log loss, unless training.lightgbm.metric says otherwise:
# measured on three 20,000-customer demo banks, stopping on AUC kept the same trees for churn
# and lost up to 0.005 test ROC-AUC for complaint (it stops too early on a noisy curve).
DEFAULT_METRIC = "binary_logloss"


@dataclass(frozen=True)
class Timing:
    """CPU microseconds per row on one core to predict (raw margin) and to explain
    (pred_contrib). Rows are independent, so `cores` cores take 1 / cores of it."""

    predict_us: float
    explain_us: float


Timer = Callable[[Any, pd.DataFrame], Timing]


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


# -- inputs ------------------------------------------------------------------------------------
def categories_of(train: pd.DataFrame, categorical: Sequence[str]) -> dict[str, list[str]]:
    """The levels of each categorical feature seen in training, sorted (stable codes)."""
    return {c: sorted(str(v) for v in train[c].dropna().unique()) for c in categorical}


def encoder(
    target: str, features: Sequence[str], categories: Mapping[str, list[str]]
) -> FittedModel:
    """A booster-less FittedModel: its `matrix` is the encoding training and serving share."""
    return FittedModel(
        target=target,
        booster=None,
        calibrator=Calibrator("platt"),
        features=tuple(features),
        categories={k: list(v) for k, v in categories.items()},
    )


def _labels(frame: pd.DataFrame, target: str, part: str) -> np.ndarray:
    if target not in frame.columns:
        raise KeyError(f"the {part} frame has no label column {target!r}")
    y = frame[target]
    if y.isna().any():
        raise ValueError(
            f"the {part} frame has {int(y.isna().sum())} rows without a {target} label"
        )
    y = y.astype("int64").to_numpy()
    if len(np.unique(y)) < 2:
        raise ValueError(
            f"the {part} frame ({len(y)} rows) has a single {target} value; training needs "
            "both positive and negative examples"
        )
    return y


# -- parameters --------------------------------------------------------------------------------
def lightgbm_params(config: Config, shape: ModelShape, y_train: np.ndarray) -> dict[str, Any]:
    """The parameters of one training run: config defaults, the shape, seed and imbalance."""
    training = config.training
    params: dict[str, Any] = {"objective": "binary", "metric": DEFAULT_METRIC, "verbosity": -1}
    if training.imbalance == "balanced":
        # weighted positives push every probability up, so the unweighted validation log loss
        # worsens from the first tree (measured: early stopping kept 1 tree); AUC does not care
        params["metric"] = "auc"
    params.update(training.lightgbm)
    params.update(
        num_leaves=shape.num_leaves,
        max_depth=shape.max_depth,
        min_child_samples=shape.min_child_samples,
        seed=training.seed,
        deterministic=True,
        force_row_wise=True,  # faster than col-wise here (many rows, ~60 features)
        num_threads=training.threads,
    )
    params.pop("force_col_wise", None)
    if training.imbalance == "balanced":
        positives = int(y_train.sum())
        params["scale_pos_weight"] = (len(y_train) - positives) / max(positives, 1)
    return params


def shape_record(shape: ModelShape) -> dict[str, int]:
    return {
        "num_leaves": shape.num_leaves,
        "max_depth": shape.max_depth,
        "min_child_samples": shape.min_child_samples,
    }


def calibration_method(config: Config, valid_rows: int) -> Literal["isotonic", "platt"]:
    """`training.calibration`, except Platt when isotonic would have fewer validation rows than
    `training.isotonic_min_rows` (its steps would tie many scores)."""
    training = config.training
    if training.calibration == "isotonic" and valid_rows < training.isotonic_min_rows:
        return "platt"
    return training.calibration


# -- training ----------------------------------------------------------------------------------
def train_booster(
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_valid: pd.DataFrame,
    y_valid: np.ndarray,
    params: Mapping[str, Any],
    max_trees: int,
    early_stopping_rounds: int,
) -> Any:
    """A booster early-stopped on the validation part, cut to its best iteration (so the
    in-memory model, its timings and the saved file hold the same trees)."""
    import lightgbm as lgb

    categorical = [c for c in x_train.columns if isinstance(x_train[c].dtype, pd.CategoricalDtype)]
    train_set = lgb.Dataset(
        x_train, y_train, categorical_feature=categorical or "auto", free_raw_data=False
    )
    valid_set = lgb.Dataset(x_valid, y_valid, reference=train_set)
    booster = lgb.train(
        dict(params),
        train_set,
        num_boost_round=max_trees,
        valid_sets=[valid_set],
        valid_names=["valid"],
        callbacks=[
            lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False)
        ],
    )
    best = booster.best_iteration or booster.current_iteration()
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))


def time_booster(booster: Any, sample: pd.DataFrame) -> Timing:
    """CPU microseconds per row to predict and to explain `sample` on one thread, the minimum
    of a few runs.

    CPU time of one thread, not wall-clock time on `cores` threads: on a machine shared with
    other work the wall clock measures the neighbours (measured: the same booster's explain
    time varied 3x between runs, enough to rank shapes wrongly), while a thread's CPU time
    does not; `pred_contrib` splits rows across threads, so `cores` cores divide it by `cores`.
    """

    def per_row(**kwargs: Any) -> float:
        best, spent = math.inf, 0.0
        for _ in range(TIMING_REPEATS):
            started = time.thread_time()
            booster.predict(sample, num_threads=1, **kwargs)
            took = time.thread_time() - started
            best, spent = min(best, took), spent + took
            if spent > TIMING_SECONDS:  # CPU time is steady: a slow model needs no repeat
                break
        return best / len(sample) * 1e6

    return Timing(per_row(raw_score=True), per_row(pred_contrib=True))


def projected_seconds(explain_us: float, budget: ExplainBudget) -> float:
    """Seconds to explain `budget.customers` rows on `budget.cores` cores."""
    return explain_us * budget.customers / budget.cores / 1e6


def timing_sample(frame: pd.DataFrame, rows: int = TIMING_ROWS, seed: int = 0) -> pd.DataFrame:
    """A fixed sample of `rows` rows (all of them when fewer), the same for every shape."""
    if len(frame) <= rows:
        return frame
    return frame.sample(n=rows, random_state=seed)


# -- shape choice ------------------------------------------------------------------------------
def choose_shape(
    candidates: Sequence[Mapping[str, Any]], budget: ExplainBudget
) -> tuple[int, dict[str, Any]]:
    """Index of the shape to keep, and why, from candidate records with `valid_auc`,
    `explain_us_per_row` and `explain_seconds` (the projection for `budget.customers`).

    The cheapest to explain among the shapes within `budget.auc_tolerance` of the best
    validation AUC that explain `budget.customers` within `budget.seconds`; when none fits
    the budget, the cheapest within the tolerance, with `budget_met` false.
    """
    if not candidates:
        raise ValueError("no candidate shapes to choose from")
    best_auc = max(c["valid_auc"] for c in candidates)
    best_index = max(range(len(candidates)), key=lambda i: candidates[i]["valid_auc"])
    close = [
        i for i, c in enumerate(candidates) if c["valid_auc"] >= best_auc - budget.auc_tolerance
    ]
    fits = [i for i in close if candidates[i]["explain_seconds"] <= budget.seconds]
    pool = fits or close
    chosen = min(pool, key=lambda i: (candidates[i]["explain_us_per_row"], i))
    c = candidates[chosen]
    met = bool(fits)
    reason = (
        f"cheapest to explain of {len(close)} shape(s) within {budget.auc_tolerance} validation "
        f"ROC-AUC of the best ({best_auc:.4f})"
        + (
            f"; explains {budget.customers:,} customers in {c['explain_seconds']:.1f} s on "
            f"{budget.cores} core(s), within the {budget.seconds:g} s budget"
            if met
            else f"; no such shape explains {budget.customers:,} customers within "
            f"{budget.seconds:g} s (this one takes {c['explain_seconds']:.1f} s): budget not met"
        )
    )
    return chosen, {
        "chosen": chosen,
        "shape": dict(c["shape"]),
        "best": best_index,
        "best_valid_auc": float(best_auc),
        "valid_auc": float(c["valid_auc"]),
        "auc_cost": float(best_auc - c["valid_auc"]),
        "explain_seconds": float(c["explain_seconds"]),
        "best_explain_seconds": float(candidates[best_index]["explain_seconds"]),
        "budget_seconds": float(budget.seconds),
        "budget_customers": int(budget.customers),
        "budget_cores": int(budget.cores),
        "auc_tolerance": float(budget.auc_tolerance),
        "budget_met": met,
        "reason": reason,
        "timing": (
            "CPU time of one thread on a fixed sample of validation rows (minimum of repeats); "
            f"projected for {budget.customers:,} customers on {budget.cores} core(s)"
        ),
    }


# -- the model ---------------------------------------------------------------------------------
def _train_shape(data, target, shape, params, config, sample, clock, progress):
    """One candidate shape: its booster and the record of its ROC-AUC, size and speed."""
    training = config.training
    x_train, y_train, x_valid, y_valid = data
    _say(progress, f"{target}: training shape {shape_record(shape)}")
    started = time.perf_counter()
    booster = train_booster(
        x_train, y_train, x_valid, y_valid, params,
        training.max_trees, training.early_stopping_rounds,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    margin = booster.predict(x_valid, raw_score=True, num_threads=training.threads)
    timing = clock(booster, sample)
    record = {
        "shape": shape_record(shape),
        "valid_auc": roc_auc(y_valid, margin),
        "trees": int(booster.num_trees()),
        "train_seconds": round(seconds, 3),
        "predict_us_per_row": round(timing.predict_us, 3),
        "explain_us_per_row": round(timing.explain_us, 3),
        "explain_seconds": round(projected_seconds(timing.explain_us, training.explain_budget), 3),
    }
    _say(
        progress,
        f"{target}: {record['trees']} trees, valid ROC-AUC {record['valid_auc']:.4f}, "
        f"explain {record['explain_us_per_row']:.0f} us/row",
    )
    return booster, record


def fit_target(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    target: str,
    features: Sequence[str],
    categorical: Sequence[str],
    config: Config,
    *,
    progress: Progress | None = None,
    timer: Timer | None = None,
) -> FittedModel:
    """Train, choose the shape, calibrate: the `FittedModel` for `target` (see module doc).

    `timer(booster, sample)` replaces the CPU timing (tests).
    """
    training = config.training
    if training.tuning_trials:
        raise ValueError(
            f"training.tuning_trials is {training.tuning_trials}: the hyper-parameter search "
            "did not pay off when measured and is not implemented; set it to 0"
        )
    unknown = [c for c in categorical if c not in features]
    if unknown:
        raise KeyError(f"categorical feature(s) {unknown} are not among the features")
    y_train = _labels(train, target, "train")
    y_valid = _labels(valid, target, "validation")
    categories = categories_of(train, categorical)
    enc = encoder(target, features, categories)
    x_train, x_valid = enc.matrix(train), enc.matrix(valid)
    sample = timing_sample(x_valid, seed=training.seed)
    budget = training.explain_budget
    clock = timer or time_booster

    boosters, candidates, params_used = [], [], []
    for shape in training.shapes:
        params = lightgbm_params(config, shape, y_train)
        booster, record = _train_shape(
            (x_train, y_train, x_valid, y_valid), target, shape, params, config,
            sample, clock, progress,
        )  # fmt: skip
        boosters.append(booster)
        candidates.append(record)
        params_used.append(params)

    chosen, choice = choose_shape(candidates, budget)
    _say(progress, f"{target}: {choice['reason']}")
    booster = boosters[chosen]
    valid_margin = booster.predict(x_valid, raw_score=True, num_threads=training.threads)
    method = calibration_method(config, len(y_valid))
    calibrator = Calibrator.fit(valid_margin, y_valid, method)
    params = _plain(params_used[chosen])
    return FittedModel(
        target=target,
        booster=booster,
        calibrator=calibrator,
        features=tuple(features),
        categories=categories,
        shape=dict(candidates[chosen]["shape"]),
        params=params,
        best_iteration=int(booster.num_trees()),
        extra={
            "shapes": candidates,
            "shape_choice": choice,
            "best_iteration": int(booster.num_trees()),
            "params": params,
            "early_stopping_metric": str(params.get("metric", DEFAULT_METRIC)),
            "calibration": method,
            "train_rows": len(train),
            "valid_rows": len(valid),
            "train_positive_rate": float(y_train.mean()),
            "valid_positive_rate": float(y_valid.mean()),
        },
    )


def _plain(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as JSON types (numpy scalars become Python numbers)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        out[key] = value.item() if isinstance(value, np.generic) else value
    return out
