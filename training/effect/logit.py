"""The risk-scaled callback effect learner (`effect.learner: logit`): how a call works, as a model.

A completed callback lowers the churn log-odds (the demo bank's process, and the usual reading of
a retention contact): so the learner fits

    churn logit = a0 + a1 * m(x) + (1 - treated) * tau(x),    tau(x) = b0 + beta . z(x)

* m(x): a LightGBM churn model on *every* row of both arms (log-odds), the baseline; the logistic
  fit uses its out-of-fold values on the training rows (3 folds by customer), so the offset is
  not overfitted;
* z(x): the effect features (`effect.tau_features`, empty = every spec feature) standardised,
  categoricals one-hot, plus m(x) and m(x)^2 (the effect may depend on how far gone a customer is);
* tau(x): the log-odds reduction from assigning a call, learnt from the randomised contrast only
  (a0, a1 are pinned by the treated rows). beta has an L2 penalty whose strength is chosen by
  5-fold cross-validated deviance over customers (a proper score on every training row; a
  Qini coefficient on ~1,000 held-out rows is mostly noise, see the module docstring of
  `training.effect.model`). With too little signal the penalty wins and tau is about constant: the
  learner then ranks by risk scaled through the logistic curve, never worse than that.

The estimate for ranking is the reduction of the churn probability,
sigmoid(l0) - sigmoid(l0 - tau(x)), l0 = a0 + a1 m(x) + tau(x) the no-call log-odds.
Coefficients are saved in `effect.json` (the model's `extra["logit"]`), m(x) as a text booster.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

PENALTIES = (1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 1.0)  # L2 strength per row on standardised beta
CV_FOLDS = 5
OFFSET_FOLDS = 3


def folds_of(customer_ids: pd.Series, k: int) -> np.ndarray:
    """A stable fold 0..k-1 per row from its customer id (a customer's rows share a fold)."""
    return np.fromiter(
        (zlib.crc32(str(c).encode()) % k for c in customer_ids),
        dtype=np.int64,
        count=len(customer_ids),
    )


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def design_spec(
    train: pd.DataFrame, columns: Sequence[str], categories: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """One entry per z column: numeric (name, fill, mean, sd) or a categorical level."""
    spec: list[dict[str, Any]] = []
    for col in columns:
        if col not in train.columns:
            raise KeyError(f"effect.tau_features: the experiment has no feature {col!r}")
        if col in categories:
            for level in categories[col]:
                spec.append({"column": col, "level": level})
            continue
        v = pd.to_numeric(train[col], errors="coerce").astype(float)
        fill = float(v.median()) if v.notna().any() else 0.0
        spec.append({"column": col, "fill": fill})
    return spec


def raw_design(frame: pd.DataFrame, spec: list[dict[str, Any]], m: np.ndarray) -> np.ndarray:
    """The unstandardised z matrix of `frame` (spec columns, then m and m^2)."""
    cols = []
    for item in spec:
        if "level" in item:
            cols.append((frame[item["column"]].astype(str) == item["level"]).to_numpy(float))
        else:
            v = pd.to_numeric(frame[item["column"]], errors="coerce").astype(float)
            cols.append(v.fillna(item["fill"]).to_numpy(float))
    cols += [np.asarray(m, float), np.asarray(m, float) ** 2]
    return np.column_stack(cols)


def standardise(z: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return (z - mean) / sd


def _fit(a: np.ndarray, m: np.ndarray, t: np.ndarray, y: np.ndarray, penalty: float) -> np.ndarray:
    """w = (a0, a1, b0, beta...) by penalised maximum likelihood (L-BFGS)."""
    from scipy.optimize import minimize

    c = 1.0 - t
    n = len(y)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        beta = w[3:]
        logit = w[0] + w[1] * m + c * (w[2] + a @ beta)
        g = sigmoid(logit) - y
        value = float((np.logaddexp(0.0, logit) - y * logit).sum() + penalty * n / 2 * beta @ beta)
        grad = np.concatenate(
            [[g.sum(), (g * m).sum(), (g * c).sum()], a.T @ (g * c) + penalty * n * beta]
        )
        return value, grad

    w0 = np.zeros(3 + a.shape[1])
    w0[1] = 1.0
    return minimize(loss, w0, jac=True, method="L-BFGS-B").x


def deviance(w: np.ndarray, a: np.ndarray, m: np.ndarray, t: np.ndarray, y: np.ndarray) -> float:
    logit = w[0] + w[1] * m + (1.0 - t) * (w[2] + a @ w[3:])
    return float(2 * (np.logaddexp(0.0, logit) - y * logit).sum())


def fit_logit(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    baseline: Any,
    offset: np.ndarray,
    matrix: Any,
    tau_columns: Sequence[str],
    categories: dict[str, list[str]],
    *,
    outcome: str = "churn",
    treatment: str = "treated",
) -> dict[str, Any]:
    """The logistic effect fit (see the module docstring). `baseline` is m's booster (valid rows
    are scored with it), `offset` m's out-of-fold log-odds on the train rows, `matrix` the
    encoder (frame -> LightGBM matrix). Returns the JSON-able coefficients and diagnostics."""
    y, t = train[outcome].to_numpy(float), train[treatment].to_numpy(float)
    spec = design_spec(train, tau_columns, categories)
    z = raw_design(train, spec, offset)
    mean, sd = z.mean(axis=0), z.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    a = standardise(z, mean, sd)
    folds = folds_of(train["customer_id"], CV_FOLDS)
    cv = {}
    for penalty in PENALTIES:
        total = 0.0
        for k in range(CV_FOLDS):
            fit, held = folds != k, folds == k
            w = _fit(a[fit], offset[fit], t[fit], y[fit], penalty)
            total += deviance(w, a[held], offset[held], t[held], y[held])
        cv[penalty] = total
    best = min(cv, key=lambda p: (cv[p], -p))  # ties: the stronger penalty
    w = _fit(a, offset, t, y, best)
    m_valid = np.asarray(baseline.predict(matrix(valid), raw_score=True, num_threads=1), float)
    a_valid = standardise(raw_design(valid, spec, m_valid), mean, sd)
    names = [f"{s['column']}={s['level']}" if "level" in s else s["column"] for s in spec] + [
        "m",
        "m^2",
    ]
    return {
        "a0": float(w[0]),
        "a1": float(w[1]),
        "b0": float(w[2]),
        "beta": [float(v) for v in w[3:]],
        "names": names,
        "spec": spec,
        "mean": [float(v) for v in mean],
        "sd": [float(v) for v in sd],
        "penalty": best,
        "cv_deviance": {f"{p:g}": round(v, 3) for p, v in cv.items()},
        "valid_deviance": deviance(
            w, a_valid, m_valid, valid[treatment].to_numpy(float), valid[outcome].to_numpy(float)
        ),
    }


def logit_tau(coef: dict[str, Any], frame: pd.DataFrame, m: np.ndarray) -> np.ndarray:
    """tau(x): the estimated reduction of the churn log-odds from assigning a call. (With m in z
    the coefficients of the raw features are not the effect's own: read tau, not beta.)"""
    z = raw_design(frame, coef["spec"], m)
    a = standardise(z, np.asarray(coef["mean"]), np.asarray(coef["sd"]))
    return coef["b0"] + a @ np.asarray(coef["beta"], float)


def logit_effect(coef: dict[str, Any], frame: pd.DataFrame, m: np.ndarray) -> np.ndarray:
    """Estimated reduction of the churn probability from assigning a call."""
    tau = logit_tau(coef, frame, m)
    treated = coef["a0"] + coef["a1"] * np.asarray(m, float)
    return sigmoid(treated + tau) - sigmoid(treated)


def arm_deviance(
    p_treated: np.ndarray, p_control: np.ndarray, y: np.ndarray, t: np.ndarray
) -> float:
    """Deviance of arm-specific churn probabilities on rows with outcome y and arm t."""
    p = np.clip(np.where(t == 1, p_treated, p_control), 1e-9, 1 - 1e-9)
    return float(-2 * (y * np.log(p) + (1 - y) * np.log(1 - p)).sum())


def top_coefficients(coef: dict[str, Any], k: int = 5) -> str:
    """The k largest |beta| as 'name +0.123' for the learner's description."""
    pairs = sorted(zip(coef["names"], coef["beta"], strict=True), key=lambda p: -abs(p[1]))[:k]
    return ", ".join(f"{n} {b:+.3f}" for n, b in pairs if not math.isnan(b))
