"""Evaluation plots, logged as MLflow artifacts: ROC/PR, calibration, cumulative gain, SHAP
summary and the score distribution by risk tier.

Every function returns a matplotlib `Figure` drawn on an Agg canvas of its own, created inside
the function: nothing is registered with pyplot and no global backend is switched, so the
functions work headless, in tests and in notebooks (where a returned figure displays itself).
`save_figures` writes them as PNGs, atomically, and closes them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from keepwell.io import atomic_path
from training.evaluate import NOT_PROBABILITIES
from training.metrics import expected_calibration_error

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TIER_COLOURS = {"High": "#c0392b", "Medium": "#e67e22", "Low": "#27ae60"}


def new_figure(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas (no pyplot, no global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _arrays(y: np.ndarray, scores: Mapping[str, np.ndarray]) -> tuple[np.ndarray, dict]:
    y = np.asarray(y, dtype=float)
    out = {}
    for name, p in scores.items():
        p = np.asarray(p, dtype=float)
        if p.shape != y.shape:
            raise ValueError(f"scorer {name!r} has {p.shape} scores for {len(y)} outcomes")
        out[name] = p
    return y, out


def roc_pr_figure(y: np.ndarray, scores: Mapping[str, np.ndarray], *, title: str = "") -> Figure:
    """ROC curve (left) and precision-recall curve (right), one line per scorer, the area in
    the legend; the random ROC diagonal and the base-rate precision for reference."""
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_curve

    y, scores = _arrays(y, scores)
    fig = new_figure(11, 4.8)
    roc, pr = fig.subplots(1, 2)
    two_classes = 0 < y.sum() < len(y)
    for name, p in scores.items():
        if not two_classes:
            break
        fpr, tpr, _ = roc_curve(y, p)
        auc = float(np.trapezoid(tpr, fpr))
        roc.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
        precision, recall, _ = precision_recall_curve(y, p)
        ap = float(average_precision_score(y, p))
        pr.plot(recall, precision, drawstyle="steps-post", label=f"{name} (AP {ap:.3f})")
    roc.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="random")
    base = float(y.mean()) if len(y) else 0.0
    pr.axhline(base, ls="--", c="grey", lw=1, label=f"base rate {base:.3f}")
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC",
            xlim=(0, 1), ylim=(0, 1.01))  # fmt: skip
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall", xlim=(0, 1),
           ylim=(0, 1.01))  # fmt: skip
    roc.legend(loc="lower right", fontsize="small")
    pr.legend(loc="upper right", fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def reliability_points(
    y: np.ndarray, p: np.ndarray, bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean score, outcome rate, rows) per equal-count bin, binned as
    `training.metrics.expected_calibration_error` bins (ties never split)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if not len(y):
        return np.zeros(0), np.zeros(0), np.zeros(0)
    order = np.argsort(p, kind="mergesort")
    ps, ys = p[order], y[order]
    edges = np.searchsorted(ps, np.quantile(ps, np.linspace(0, 1, bins + 1)[1:-1]), side="right")
    parts = [
        (a, b) for a, b in zip(np.split(ps, edges), np.split(ys, edges), strict=True) if len(a)
    ]
    return (
        np.array([a.mean() for a, _ in parts]),
        np.array([b.mean() for _, b in parts]),
        np.array([len(a) for a, _ in parts]),
    )


def calibration_figure(
    y: np.ndarray, p_by_name: Mapping[str, np.ndarray], *, bins: int = 10, title: str = ""
) -> Figure:
    """Reliability diagram (mean score against outcome rate in `bins` equal-count bins, the
    diagonal being perfect calibration) above a histogram of the scores (log count)."""

    y, p_by_name = _arrays(y, p_by_name)
    fig = new_figure(6.5, 7)
    top, bottom = fig.subplots(2, 1, height_ratios=(3, 1.3))
    points = {name: reliability_points(y, p, bins) for name, p in p_by_name.items()}
    reach = [float(np.max(a)) for m, r, _ in points.values() for a in (m, r) if len(a)]
    limit = min(1.0, max([0.05, *reach]) * 1.15)
    top.plot([0, limit], [0, limit], ls="--", c="grey", lw=1, label="perfectly calibrated")
    highest = max([float(p.max()) for p in p_by_name.values() if len(p)] + [limit])
    for name, p in p_by_name.items():
        mean_p, rate, _ = points[name]
        ece = expected_calibration_error(y, p, bins)
        top.plot(mean_p, rate, marker="o", label=f"{name} (ECE {ece:.3f})")
        bottom.hist(p, bins=50, range=(0, highest), histtype="step", lw=1.5, label=name)
    top.set(xlabel="mean predicted probability", ylabel="observed rate", xlim=(0, limit),
            ylim=(0, limit), title="calibration (equal-count bins)")  # fmt: skip
    top.legend(loc="upper left", fontsize="small")
    bottom.set(xlabel="predicted probability", ylabel="customers", xlim=(0, highest))
    if len(y):
        bottom.set_yscale("log")
    if title:
        fig.suptitle(title)
    return fig


def gain_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(share of customers contacted, share of positives captured), best scores first; starts
    at (0, 0). Ties are taken in row order, as in `training.metrics.top_count`."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    found = np.cumsum(y[np.argsort(-p, kind="mergesort")])
    total = found[-1] if len(found) and found[-1] > 0 else 1.0
    x = np.arange(len(y) + 1) / max(len(y), 1)
    return x, np.concatenate([[0.0], found / total])


def gain_figure(
    y: np.ndarray,
    scores: Mapping[str, np.ndarray],
    *,
    capacity: int | None = None,
    snapshots: int = 1,
    title: str = "",
) -> Figure:
    """Cumulative gain: the share of positives captured against the share of customers
    contacted, one line per scorer, with the random line and the perfect ranking. With a
    `capacity` (calls per day, over `snapshots` as_of dates), a vertical line marks the share
    the first day's calls reach, and a dot where each curve crosses it."""
    y, scores = _arrays(y, scores)
    fig = new_figure(6.5, 5.5)
    ax = fig.subplots()
    share = None
    if capacity is not None and len(y):
        share = min(1.0, capacity * max(snapshots, 1) / len(y))
    for name, p in scores.items():
        x, captured = gain_curve(y, p)
        (line,) = ax.plot(x, captured, label=name)
        if share is not None:
            ax.plot([share], [np.interp(share, x, captured)], "o", c=line.get_color())
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="random")
    rate = float(y.mean()) if len(y) else 1.0
    ax.plot([0, rate, 1], [0, 1, 1], ls=":", c="black", lw=1, label="perfect")
    if share is not None:
        ax.axvline(share, c="purple", lw=1, label=f"daily capacity ({capacity} calls, {share:.1%})")
    ax.set(xlabel="share of customers contacted (best scores first)",
           ylabel="share of positives captured", title=title or "cumulative gain",
           xlim=(0, 1), ylim=(0, 1.01))  # fmt: skip
    ax.legend(loc="lower right", fontsize="small")
    return fig


def tier_distribution_figure(
    p: np.ndarray,
    tiers: np.ndarray,
    *,
    cuts: Mapping[str, float] | None = None,
    title: str = "",
) -> Figure:
    """Scores by risk tier: stacked histogram (left, log count) with the tier cut points
    (`cuts`, e.g. {"high": 0.25, "medium": 0.10}) and the customers per tier (right)."""
    p, tiers = np.asarray(p, dtype=float), np.asarray(tiers).astype(str)
    if p.shape != tiers.shape:
        raise ValueError(f"{p.shape} scores for {tiers.shape} tiers")
    fig = new_figure(11, 4.5)
    hist, bars = fig.subplots(1, 2, width_ratios=(2.2, 1))
    names = [t for t in TIER_COLOURS if (tiers == t).any()] or list(TIER_COLOURS)
    names += sorted(set(tiers) - set(TIER_COLOURS))
    counts = [int((tiers == t).sum()) for t in names]
    total = max(len(p), 1)
    hi = float(p.max()) if len(p) else 1.0
    hi = max(hi, 1e-6)
    inside = [v for v in (cuts or {}).values() if 0 < v < hi]
    edges = np.unique(np.concatenate([np.linspace(0, hi, 41), inside]))  # a bin never spans a cut
    hist.hist(
        [p[tiers == t] for t in names],
        bins=edges,
        stacked=True,
        color=[TIER_COLOURS.get(t, "grey") for t in names],
        label=[f"{t} ({n}, {n / total:.1%})" for t, n in zip(names, counts, strict=True)],
    )
    for cut_name, value in (cuts or {}).items():
        hist.axvline(value, ls="--", c="black", lw=1)
        hist.annotate(f"{cut_name} {value:g}", (value, 1), xycoords=("data", "axes fraction"),
                      rotation=90, va="top", ha="right", fontsize="small")  # fmt: skip
    if len(p):
        hist.set_yscale("log")
    hist.set(xlabel="predicted probability", ylabel="customers", title="scores by risk tier")
    hist.legend(fontsize="small")
    bars.bar(names, counts, color=[TIER_COLOURS.get(t, "grey") for t in names])
    for i, n in enumerate(counts):
        bars.annotate(f"{n / total:.1%}", (i, n), ha="center", va="bottom", fontsize="small")
    bars.set(ylabel="customers", title="customers per tier")
    if title:
        fig.suptitle(title)
    return fig


# -- SHAP --------------------------------------------------------------------------------------
def _numeric(x: pd.DataFrame, feature_names: Sequence[str]) -> pd.DataFrame:
    """Feature values as floats for colouring: categories as their codes, booleans as 0/1."""
    missing = [c for c in feature_names if c not in x.columns]
    if missing:
        raise KeyError(f"the SHAP summary needs feature column(s) {missing} in X")
    out = {}
    for name in feature_names:
        col = x[name]
        if isinstance(col.dtype, pd.CategoricalDtype) or not (
            pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)
        ):
            codes = pd.Categorical(col.astype("object").where(col.notna(), None)).codes
            out[name] = np.where(codes < 0, np.nan, codes).astype(float)
        else:
            out[name] = pd.to_numeric(col.astype("object"), errors="coerce").astype(float)
    return pd.DataFrame(out, index=x.index)


def shap_bar_figure(
    values: np.ndarray, feature_names: Sequence[str], *, max_display: int = 20, note: str = ""
) -> Figure:
    """Mean |SHAP| per feature, largest first (the fallback when the beeswarm cannot draw)."""
    mean = np.abs(np.asarray(values, dtype=float)).mean(axis=0)
    order = np.argsort(-mean, kind="mergesort")[:max_display][::-1]
    fig = new_figure(7, 0.3 * len(order) + 1.5)
    ax = fig.subplots()
    ax.barh([feature_names[i] for i in order], mean[order])
    ax.set(xlabel="mean |SHAP value| (margin units)", title=note or "feature importance (SHAP)")
    return fig


def shap_summary_figure(
    contributions: np.ndarray,
    x: pd.DataFrame,
    feature_names: Sequence[str],
    max_display: int = 20,
    *,
    max_rows: int = 5000,
    seed: int = 0,
) -> Figure:
    """SHAP beeswarm (`shap.summary_plot`) of LightGBM `pred_contrib` output: `contributions`
    is (rows, features + 1) with the bias last, `x` the rows' feature values. At most
    `max_rows` rows (a fixed-seed sample) are drawn. If shap cannot draw it, a bar chart of mean
    |SHAP| is returned instead, its title saying so."""
    values = np.asarray(contributions, dtype=float)
    names = list(feature_names)
    if values.ndim != 2 or values.shape[1] != len(names) + 1:
        raise ValueError(
            f"contributions must be (rows, {len(names)} features + 1 bias), got {values.shape}"
        )
    if len(x) != len(values):
        raise ValueError(f"x has {len(x)} rows, contributions {len(values)}")
    values = values[:, :-1]
    colours = _numeric(x, names)
    if len(values) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(values), max_rows, replace=False))
        values, colours = values[rows], colours.iloc[rows]
    try:
        return _beeswarm(values, colours, names, max_display, seed)
    except Exception as error:  # shap's plotting is not part of our contract
        note = f"mean |SHAP| (beeswarm failed: {type(error).__name__})"
        return shap_bar_figure(values, names, max_display=max_display, note=note)


def _beeswarm(
    values: np.ndarray, colours: pd.DataFrame, names: list[str], max_display: int, seed: int
) -> Figure:
    """shap draws on pyplot's current figure: draw on a fresh one, then detach it from pyplot
    and give it an Agg canvas, like every other figure here."""
    import matplotlib.pyplot as plt
    import shap
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    before = set(plt.get_fignums())
    plt.figure()
    try:
        shap.summary_plot(
            values,
            features=colours,
            feature_names=names,
            max_display=max_display,
            show=False,
            rng=np.random.default_rng(seed),
        )
        fig = plt.gcf()
    finally:
        for number in set(plt.get_fignums()) - before:
            plt.close(number)
    FigureCanvasAgg(fig)
    return fig


def target_figures(
    target: str,
    y: np.ndarray,
    scores: Mapping[str, np.ndarray | None],
    *,
    capacity: int | None = None,
    snapshots: int = 1,
    tiers: np.ndarray | None = None,
    cuts: Mapping[str, float] | None = None,
) -> dict[str, Figure]:
    """One target's evaluation figures, named for `save_figures`: `<target>_roc_pr`,
    `<target>_calibration` (probability scorers only, not the 0/1 seed rule), `<target>_gain`
    and, given the model's `tiers`, `<target>_tiers` (of `scores["model"]`)."""

    present = {name: p for name, p in scores.items() if p is not None}
    probabilities = {n: p for n, p in present.items() if n not in NOT_PROBABILITIES}
    figs = {
        f"{target}_roc_pr": roc_pr_figure(y, present, title=target),
        f"{target}_calibration": calibration_figure(y, probabilities, title=target),
        f"{target}_gain": gain_figure(
            y, present, capacity=capacity, snapshots=snapshots, title=f"{target}: cumulative gain"
        ),
    }
    if tiers is not None and "model" in present:
        figs[f"{target}_tiers"] = tier_distribution_figure(
            present["model"], tiers, cuts=cuts, title=target
        )
    return figs


# -- files -------------------------------------------------------------------------------------
def save_figures(figs: Mapping[str, Figure], folder: Path | str, *, dpi: int = 110) -> list[Path]:
    """Write each figure as `<folder>/<name>.png` (atomically: a PNG appears whole or not at
    all), close all of them (also on error) and return the paths in the order given."""
    import matplotlib.pyplot as plt

    bad = [name for name in figs if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name)]
    if bad:
        raise ValueError(f"figure names must be plain file names (letters, digits, _ . -): {bad}")
    folder = Path(folder)
    written = []
    try:
        for name, fig in figs.items():
            target = folder / f"{name}.png"
            with atomic_path(target) as tmp:
                fig.savefig(tmp, format="png", dpi=dpi)
            written.append(target)
    finally:
        for fig in figs.values():
            plt.close(fig)
    return written
