"""The metrics that judge a callback effect model, from the randomised arms of the experiment.

Metrics, from the randomised arms (`y` = churn 0/1, `treated` 0/1, `score` = higher is called
first):

* `qini_curve`: for the top k rows by score, q(k) = (Yc(k) Nt(k) / Nc(k) - Yt(k)) / Nt, the
  churners the calls prevented among the treated of the top k (control churn rate scaled to the
  treated count), per treated customer of the whole set; q(n) is the observed average effect;
* `qini_coefficient`: the area between that curve and the straight line of random targeting,
  over the share of rows targeted (about 0 for random scores, larger is better);
* `uplift_at`: churn rate of the control minus that of the treated within the top share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd


# -- metrics -----------------------------------------------------------------------------------
def _arms(
    y: np.ndarray, treated: np.ndarray, score: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float)
    t = np.asarray(treated, dtype=float)
    s = np.asarray(score, dtype=float)
    if not (y.shape == t.shape == s.shape) or y.ndim != 1:
        raise ValueError(
            f"y, treated and score must be 1-d of one length, got {y.shape}, {t.shape}, {s.shape}"
        )
    bad = ~np.isin(t, (0.0, 1.0))
    if bad.any():
        raise ValueError(f"treated must be 0/1; found {np.unique(t[bad])[:5].tolist()}")
    if np.isnan(s).any():
        raise ValueError(f"score has {int(np.isnan(s).sum())} missing values")
    return y, t, s


def qini_curve(
    y: np.ndarray, treated: np.ndarray, score: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(x, q): x = share of rows targeted (0, 1/n, ..., 1), q = prevented churners per treated
    customer (see the module docstring). Rows are taken by score, highest first, ties in row
    order. q is 0 while the top holds no control row."""
    y, t, s = _arms(y, treated, score)
    n = len(y)
    order = np.argsort(-s, kind="mergesort")
    y, t = y[order], t[order]
    nt = np.concatenate([[0.0], np.cumsum(t)])
    nc = np.concatenate([[0.0], np.cumsum(1 - t)])
    yt = np.concatenate([[0.0], np.cumsum(y * t)])
    yc = np.concatenate([[0.0], np.cumsum(y * (1 - t))])
    total_t = nt[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(nc > 0, yc * nt / nc, 0.0)
    q = (scaled - yt) / total_t if total_t > 0 else np.full(n + 1, math.nan)
    return np.arange(n + 1) / max(n, 1), q


def qini_coefficient(y: np.ndarray, treated: np.ndarray, score: np.ndarray) -> float:
    """Area between the Qini curve and the random-targeting line from (0, 0) to (1, q(n))."""
    x, q = qini_curve(y, treated, score)
    if len(x) < 2 or np.isnan(q).any():
        return math.nan
    return float(np.trapezoid(q - x * q[-1], x))


def uplift_at(y: np.ndarray, treated: np.ndarray, score: np.ndarray, share: float) -> float:
    """Control churn rate minus treated churn rate among the top ceil(share x n) rows by score
    (NaN when an arm is absent there)."""
    y, t, s = _arms(y, treated, score)
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    top = np.argsort(-s, kind="mergesort")[: math.ceil(share * len(y))]
    yt, tt = y[top], t[top]
    if tt.sum() == 0 or (1 - tt).sum() == 0:
        return math.nan
    return float(yt[tt == 0].mean() - yt[tt == 1].mean())


def bootstrap_qini_difference(
    y: np.ndarray,
    treated: np.ndarray,
    score: np.ndarray,
    baseline: np.ndarray,
    groups: np.ndarray,
    *,
    resamples: int = 200,
    seed: int = 7,
) -> np.ndarray:
    """Qini(score) - Qini(baseline) on `resamples` bootstrap samples of the groups (customers:
    a customer's rows are drawn together)."""
    y, t, s = _arms(y, treated, score)
    b = np.asarray(baseline, dtype=float)
    codes, uniques = pd.factorize(pd.Series(np.asarray(groups)).astype(str))
    rows = pd.Series(np.arange(len(y))).groupby(codes).apply(np.asarray).tolist()
    rng = np.random.default_rng(seed)
    out = np.empty(resamples)
    for i in range(resamples):
        pick = np.concatenate([rows[j] for j in rng.integers(0, len(uniques), len(uniques))])
        out[i] = qini_coefficient(y[pick], t[pick], s[pick]) - qini_coefficient(
            y[pick], t[pick], b[pick]
        )
    return out


def top_overlap(estimate: np.ndarray, truth: np.ndarray, share: float) -> float:
    """Share of the top ceil(share x n) rows by `truth` that are also in the top by `estimate`."""
    estimate, truth = np.asarray(estimate, float), np.asarray(truth, float)
    k = math.ceil(share * len(truth))
    if k == 0:
        return math.nan
    a = set(np.argsort(-estimate, kind="mergesort")[:k].tolist())
    b = set(np.argsort(-truth, kind="mergesort")[:k].tolist())
    return len(a & b) / k


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)


def uplift_metrics(
    y: np.ndarray,
    treated: np.ndarray,
    score: np.ndarray,
    *,
    truth: np.ndarray | None = None,
    shares: Sequence[float] = (0.1, 0.2, 0.3),
) -> dict[str, float]:
    """qini, uplift_at_<pct> per share and, with the true effects, spearman and overlap_<pct>."""
    out = {"qini": qini_coefficient(y, treated, score)}
    for share in shares:
        out[f"uplift_at_{round(share * 100)}"] = uplift_at(y, treated, score, share)
    if truth is not None:
        out["spearman"] = spearman(score, truth)
        for share in shares:
            out[f"overlap_at_{round(share * 100)}"] = top_overlap(score, truth, share)
    return out
