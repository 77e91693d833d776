"""The callback effect model: a meta-learner on LightGBM.

`EffectModel.predict(frame)` is the estimated reduction of the 90-day churn probability from
assigning a policy callback (positive = the call helps), learnt from the randomised holdout
(`training.effect.data`). Two learners, both on small regularised LightGBM trees (the control arm
is ~10 % of the rows):

* T-learner: churn models mu0 (control) and mu1 (treated); effect = mu0(x) - mu1(x);
* X-learner (Kuenzel et al. 2019): the imputed effects D1 = mu0(x) - y on the treated and
  D0 = y - mu1(x) on the control are regressed on x (tau1, tau0) and combined as
  e * tau0(x) + (1 - e) * tau1(x), with e the treated share: the propensity is that constant
  because the assignment is randomised.

`fit_effect_model` fits both and keeps the X-learner unless the T-learner has the larger Qini
coefficient on the validation period. Hand-written rather than causalml (its dependencies pin
black, forestci and xgboost and its models pickle) or scikit-uplift (no release since 2022).
The metrics that judge it (Qini, uplift@k) are `training.effect.metrics`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.effect.logit import (
    OFFSET_FOLDS,
    arm_deviance,
    fit_logit,
    folds_of,
    logit_effect,
    sigmoid,
    top_coefficients,
)
from training.effect.metrics import qini_coefficient
from training.fitted import save_model_files
from training.model import categories_of, encoder, train_booster

MODEL_FILE = "effect.json"
BOOSTERS = ("mu0", "mu1", "tau0", "tau1")
LEARNERS = ("x", "t", "logit", "auto")


# -- the model ---------------------------------------------------------------------------------
@dataclass
class EffectModel:
    """A fitted T- or X-learner. `boosters` holds mu0, mu1 and, for the X-learner, tau0, tau1
    (lightgbm.Booster); `propensity` is the treated share of the training rows."""

    learner: str
    boosters: dict[str, Any]
    features: tuple[str, ...]
    categories: dict[str, list[str]]
    propensity: float
    extra: dict[str, Any] = field(default_factory=dict)

    def matrix(self, frame: pd.DataFrame) -> pd.DataFrame:

        return encoder("callback_effect", self.features, self.categories).matrix(frame)

    def _raw(self, name: str, x: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.boosters[name].predict(x, num_threads=1), dtype=float)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Estimated reduction of the 90-day churn probability from assigning a call."""
        x = self.matrix(frame)
        if self.learner == "logit":
            m = self.boosters["m"].predict(x, raw_score=True, num_threads=1)
            return logit_effect(self.extra["logit"], frame, np.asarray(m, dtype=float))
        if self.learner == "t":
            return self._raw("mu0", x) - self._raw("mu1", x)
        e = self.propensity
        return e * self._raw("tau0", x) + (1 - e) * self._raw("tau1", x)

    def churn_without_call(self, frame: pd.DataFrame) -> np.ndarray:
        """The churn probability if no call is assigned (mu0, or the logit learner's l0)."""
        if self.learner == "logit":
            c = self.extra["logit"]
            m = self.boosters["m"].predict(self.matrix(frame), raw_score=True, num_threads=1)
            return sigmoid(c["a0"] + c["a1"] * np.asarray(m, dtype=float)) + self.predict(frame)
        return self._raw("mu0", self.matrix(frame))

    def meta(self) -> dict[str, Any]:
        return {
            "learner": self.learner,
            "features": list(self.features),
            "categories": self.categories,
            "propensity": self.propensity,
            "boosters": sorted(self.boosters),
            "extra": self.extra,
        }

    def save(self, folder: Path | str) -> Path:
        """LightGBM text boosters (`<name>.txt`) and `effect.json`; no pickle."""
        boosters = {f"{name}.txt": booster for name, booster in self.boosters.items()}
        return save_model_files(folder, boosters, MODEL_FILE, self.meta())

    @classmethod
    def load(cls, folder: Path | str) -> EffectModel:
        import lightgbm as lgb

        folder = Path(folder)
        meta = json.loads((folder / MODEL_FILE).read_text("utf-8"))
        boosters = {n: lgb.Booster(model_file=str(folder / f"{n}.txt")) for n in meta["boosters"]}
        return cls(
            learner=meta["learner"],
            boosters=boosters,
            features=tuple(meta["features"]),
            categories={k: list(v) for k, v in meta["categories"].items()},
            propensity=float(meta["propensity"]),
            extra=meta.get("extra", {}),
        )


def lgb_params(settings: Any, objective: str, seed: int, threads: int) -> dict[str, Any]:
    """Small, regularised trees (`training.effect.data.EffectSettings`)."""
    return {
        "objective": objective,
        "metric": "binary_logloss" if objective == "binary" else "l2",
        "num_leaves": settings.num_leaves,
        "max_depth": settings.max_depth,
        "min_child_samples": settings.min_child_samples,
        "learning_rate": settings.learning_rate,
        "lambda_l2": settings.lambda_l2,
        "feature_fraction": settings.feature_fraction,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "verbosity": -1,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": threads,
    }


def _booster(
    x: pd.DataFrame,
    y: np.ndarray,
    xv: pd.DataFrame,
    yv: np.ndarray,
    params: Mapping[str, Any],
    settings: Any,
) -> Any:

    return train_booster(x, y, xv, yv, params, settings.max_trees, settings.early_stopping_rounds)


def _check_frames(train, valid, settings, outcome: str, treatment: str) -> None:
    if settings.learner not in LEARNERS:
        raise ValueError(f"effect.learner must be one of {LEARNERS}, got {settings.learner!r}")
    for part, frame in (("train", train), ("valid", valid)):
        for col in (outcome, treatment):
            if col not in frame.columns:
                raise KeyError(f"the {part} frame has no column {col!r}")
        arms = set(frame[treatment].unique().tolist())
        if arms != {0, 1}:
            raise ValueError(f"the {part} frame needs both arms in {treatment!r}; it has {arms}")


def _fit_meta_learners(train, valid, base, settings, binary, seed: int, threads: int):
    """The T-learner (one booster per arm) and the X-learner (plus the imputed effects' boosters)
    from (matrix, outcome, treated) of the training and validation rows."""
    x, y, t = train
    xv, yv, tv = valid
    categories = base.categories
    regression = lgb_params(settings, "regression", seed, threads)
    mu0 = _booster(x[~t], y[~t], xv[~tv], yv[~tv], binary, settings)
    mu1 = _booster(x[t], y[t], xv[tv], yv[tv], binary, settings)
    boosters = {"mu0": mu0, "mu1": mu1}
    t_learner = EffectModel("t", boosters, base.features, categories, base.propensity)

    def imputed(xx: pd.DataFrame, yy: np.ndarray, tt: np.ndarray) -> np.ndarray:
        m0, m1 = np.asarray(mu0.predict(xx)), np.asarray(mu1.predict(xx))
        return np.where(tt, m0 - yy, yy - m1)  # positive = the call prevented churn

    d, dv = imputed(x, y, t), imputed(xv, yv, tv)
    tau0 = _booster(x[~t], d[~t], xv[~tv], dv[~tv], regression, settings)
    tau1 = _booster(x[t], d[t], xv[tv], dv[tv], regression, settings)
    x_learner = EffectModel(
        "x", {**boosters, "tau0": tau0, "tau1": tau1}, base.features, categories,
        base.propensity,
    )  # fmt: skip
    return {"t": t_learner, "x": x_learner}


def fit_effect_model(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    features: Sequence[str],
    categorical: Sequence[str],
    settings: Any,
    *,
    seed: int = 7,
    threads: int = 1,
    outcome: str = "churn",
    treatment: str = "treated",
) -> EffectModel:
    """Fit the learners of `settings.learner` on `train` (early stopping on `valid`) and keep one:
    `x`, `t`, `logit` (`training.effect.logit`), or `auto`: the logit learner unless the T-/X-
    learner's arm probabilities have the lower deviance on the validation rows (a proper score
    on every row, far steadier than a Qini on ~1,000 control rows), then the X-learner unless
    the T-learner's validation Qini is larger. Validation figures travel in `extra`."""

    _check_frames(train, valid, settings, outcome, treatment)
    categories = categories_of(train, categorical)
    base = EffectModel("t", {}, tuple(features), categories, float(train[treatment].mean()))
    x, xv = base.matrix(train), base.matrix(valid)
    y, yv = train[outcome].to_numpy(float), valid[outcome].to_numpy(float)
    t, tv = train[treatment].to_numpy(int) == 1, valid[treatment].to_numpy(int) == 1
    tv_i = tv.astype(int)
    binary = lgb_params(settings, "binary", seed, threads)
    candidates: dict[str, EffectModel] = {}
    valid_qini: dict[str, float] = {}
    valid_deviance: dict[str, float] = {}
    if settings.learner in ("x", "t", "auto"):
        candidates |= _fit_meta_learners((x, y, t), (xv, yv, tv), base, settings, binary,
                                         seed, threads)  # fmt: skip
        for name in ("x", "t"):
            valid_qini[name] = qini_coefficient(yv, tv_i, candidates[name].predict(valid))
        mu0, mu1 = candidates["t"].boosters["mu0"], candidates["t"].boosters["mu1"]
        valid_deviance["x/t"] = arm_deviance(
            np.asarray(mu1.predict(xv)), np.asarray(mu0.predict(xv)), yv, tv_i
        )
    if settings.learner in ("logit", "auto"):
        candidates["logit"] = _fit_logit_model(
            train, valid, x, xv, base, settings, binary, outcome=outcome, treatment=treatment
        )
        valid_qini["logit"] = qini_coefficient(yv, tv_i, candidates["logit"].predict(valid))
        valid_deviance["logit"] = candidates["logit"].extra["logit"]["valid_deviance"]
    if settings.learner != "auto":
        chosen = settings.learner
    elif valid_deviance["logit"] <= valid_deviance["x/t"]:
        chosen = "logit"
    else:
        chosen = "t" if valid_qini["t"] > valid_qini["x"] else "x"
    model = candidates[chosen]
    label = {"x": "X-learner", "t": "T-learner", "logit": "risk-scaled logit learner"}[chosen]
    model.extra.update(
        valid_qini=valid_qini,
        valid_deviance=valid_deviance,
        learner_choice=(
            f"{label}: validation deviance "
            + ", ".join(f"{k} {v:.1f}" for k, v in valid_deviance.items())
            + "; validation Qini "
            + ", ".join(f"{k} {v:.5f}" for k, v in valid_qini.items())
            + f" (setting {settings.learner!r})"
        ),
        trees={name: b.current_iteration() for name, b in model.boosters.items()},
        rows={
            "train_treated": int(t.sum()),
            "train_control": int((~t).sum()),
            "valid_treated": int(tv.sum()),
            "valid_control": int((~tv).sum()),
        },
    )
    return model


def _fit_logit_model(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    x: pd.DataFrame,
    xv: pd.DataFrame,
    base: EffectModel,
    settings: Any,
    binary: Mapping[str, Any],
    *,
    outcome: str,
    treatment: str,
) -> EffectModel:
    """The risk-scaled logit learner: m(x) on all rows, out-of-fold offsets, then the logistic
    effect fit (`training.effect.logit.fit_logit`)."""

    y, yv = train[outcome].to_numpy(float), valid[outcome].to_numpy(float)
    baseline = _booster(x, y, xv, yv, binary, settings)
    folds = folds_of(train["customer_id"], OFFSET_FOLDS) if "customer_id" in train else None
    if folds is None:
        folds = np.arange(len(train)) % OFFSET_FOLDS
    offset = np.empty(len(train))
    for k in range(OFFSET_FOLDS):
        fit, held = folds != k, folds == k
        booster = _booster(x[fit], y[fit], xv, yv, binary, settings)
        offset[held] = booster.predict(x[held], raw_score=True, num_threads=1)
    tau_columns = list(getattr(settings, "tau_features", ()) or base.features)
    coef = fit_logit(
        train, valid, baseline, offset, base.matrix, tau_columns, base.categories,
        outcome=outcome, treatment=treatment,
    )  # fmt: skip
    model = EffectModel("logit", {"m": baseline}, base.features, base.categories, base.propensity)
    model.extra["logit"] = coef
    model.extra["logit_summary"] = (
        f"tau = {coef['b0']:+.3f} + beta.z (penalty {coef['penalty']:g} by 5-fold CV deviance "
        f"over {len(coef['cv_deviance'])} penalties); largest: {top_coefficients(coef)}"
    )
    return model


def fit_risk_model(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    features: Sequence[str],
    categorical: Sequence[str],
    settings: Any,
    *,
    seed: int = 7,
    threads: int = 1,
    outcome: str = "churn",
) -> Any:
    """A churn model on the same rows (both arms), for the risk-ranking baseline: returns a
    function frame -> churn probability."""

    enc = EffectModel("t", {}, tuple(features), categories_of(train, categorical), 0.0)
    params = lgb_params(settings, "binary", seed, threads)
    booster = _booster(
        enc.matrix(train),
        train[outcome].to_numpy(float),
        enc.matrix(valid),
        valid[outcome].to_numpy(float),
        params,
        settings,
    )

    def predict(frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(booster.predict(enc.matrix(frame), num_threads=1), dtype=float)

    return predict
