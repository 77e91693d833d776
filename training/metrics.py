"""Metrics of a probability score against binary outcomes; pure numpy/scikit-learn functions.

Every function takes `y` (0/1, or booleans) and `p` (scores; probabilities where the metric
needs them) of the same length and returns a float (NaN when undefined, e.g. one class only).
"""

from __future__ import annotations

import math

import numpy as np


def _arrays(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"y and p must be 1-d of the same length, got {y.shape} and {p.shape}")
    if np.isnan(y).any():
        raise ValueError("y has missing outcomes; drop unlabeled rows first")
    return y, p


def _two_classes(y: np.ndarray) -> bool:
    return 0 < y.sum() < len(y)


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    y, p = _arrays(y, p)
    return float(roc_auc_score(y, p)) if _two_classes(y) else math.nan


def pr_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision (the step-wise area under the precision-recall curve)."""
    from sklearn.metrics import average_precision_score

    y, p = _arrays(y, p)
    return float(average_precision_score(y, p)) if _two_classes(y) else math.nan


def brier(y: np.ndarray, p: np.ndarray) -> float:
    y, p = _arrays(y, p)
    return float(np.mean((p - y) ** 2)) if len(y) else math.nan


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Sum over `bins` equal-count bins of (bin share) x |mean score - outcome rate|.

    Equal-count bins, because with rare events equal-width bins put nearly everyone in the first
    one. Ties in `p` are kept together (a bin boundary never splits equal scores).
    """
    y, p = _arrays(y, p)
    n = len(y)
    if n == 0:
        return math.nan
    order = np.argsort(p, kind="mergesort")
    ps, ys = p[order], y[order]
    edges = np.searchsorted(ps, np.quantile(ps, np.linspace(0, 1, bins + 1)[1:-1]), side="right")
    total = 0.0
    for chunk_p, chunk_y in zip(np.split(ps, edges), np.split(ys, edges), strict=True):
        if len(chunk_p):
            total += len(chunk_p) / n * abs(chunk_p.mean() - chunk_y.mean())
    return float(total)


def top_share(y: np.ndarray, p: np.ndarray, share: float) -> tuple[float, float]:
    """(lift, capture) of the top `share` of rows by score.

    Capture: the share of all positives found there; lift: their positive rate over the base
    rate. Ties at the cut are broken by row order (stable), so the top holds exactly
    ceil(share x n) rows.
    """
    return top_count(y, p, math.ceil(share * len(np.asarray(y))))


def top_count(y: np.ndarray, p: np.ndarray, count: int) -> tuple[float, float]:
    """(lift, capture) of the `count` highest-scored rows (see `top_share`)."""
    y, p = _arrays(y, p)
    n, positives = len(y), y.sum()
    count = max(0, min(int(count), n))
    if n == 0 or positives == 0 or count == 0:
        return math.nan, math.nan
    top = np.argsort(-p, kind="mergesort")[:count]
    found = y[top].sum()
    return float((found / count) / (positives / n)), float(found / positives)
