"""How the callback effect model is judged on the test rows: the uplift table against the risk
ranking, random order and (demo bank) the true effect, the figures, and the promotion rule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from training.effect.metrics import bootstrap_qini_difference, qini_curve, uplift_metrics
from training.plots import new_figure

if TYPE_CHECKING:
    from training.effect.data import EffectSettings

MODEL, RISK, RANDOM, ORACLE = "effect model", "risk ranking", "random", "oracle (true effect)"


def evaluation_table(
    test: pd.DataFrame,
    scores: dict[str, np.ndarray],
    truth: np.ndarray | None,
    shares: tuple[float, ...],
) -> dict[str, dict[str, float]]:
    y, t = test["churn"].to_numpy(float), test["treated"].to_numpy(int)
    return {name: uplift_metrics(y, t, s, truth=truth, shares=shares) for name, s in scores.items()}


def effect_figures(
    test: pd.DataFrame, scores: dict[str, np.ndarray], truth: np.ndarray | None
) -> dict[str, Any]:
    """Qini curves of every scorer; estimated against true effect on the demo bank."""

    y, t = test["churn"].to_numpy(float), test["treated"].to_numpy(int)
    figs: dict[str, Any] = {}
    fig = new_figure(7, 5)
    ax = fig.subplots()
    for name, s in scores.items():
        x, q = qini_curve(y, t, s)
        ax.plot(x, q, label=name, lw=1.5 if name == MODEL else 1.0)
    if scores:
        x, q = qini_curve(y, t, next(iter(scores.values())))
        ax.plot([0, 1], [0, q[-1]], ls="--", c="grey", lw=1, label="random (expected)")
    ax.set(
        xlabel="share of customers called (by score)",
        ylabel="churners prevented per treated",
        title=f"Qini curves, evaluation period ({len(y):,} rows)",
    )
    ax.legend(fontsize="small")
    figs["effect_qini"] = fig
    if truth is not None and MODEL in scores:
        fig = new_figure(6, 5)
        ax = fig.subplots()
        ax.scatter(truth, scores[MODEL], s=4, alpha=0.3)
        lo = float(min(truth.min(), scores[MODEL].min()))
        hi = float(max(truth.max(), scores[MODEL].max()))
        ax.plot([lo, hi], [lo, hi], ls="--", c="grey", lw=1)
        ax.set(
            xlabel="true effect of a completed call (oracle)",
            ylabel="estimated effect of assigning a call",
            title="estimated vs true effect",
        )
        figs["effect_vs_truth"] = fig
    return figs


def promotion_rule(
    test: pd.DataFrame, scores: dict[str, np.ndarray], settings: EffectSettings, seed: int
) -> tuple[bool, str, dict[str, float]]:
    """(champion?, reason, figures): champion when the `promotion_quantile` (10th percentile) of
    Qini(effect model) - Qini(risk ranking) over `promotion_resamples` bootstrap samples of the
    test period's customers is above 0, so a lucky draw of ~1,000 control rows does not promote."""

    diff = bootstrap_qini_difference(
        test["churn"].to_numpy(float),
        test["treated"].to_numpy(int),
        scores[MODEL],
        scores[RISK],
        test["customer_id"].astype(str).to_numpy(),
        resamples=settings.promotion_resamples,
        seed=seed,
    )
    q = float(np.quantile(diff, settings.promotion_quantile))
    figures = {"qini_difference_mean": float(diff.mean()), "qini_difference_quantile": q}
    pct = round(settings.promotion_quantile * 100)
    reason = (
        f"Qini(effect) - Qini(risk ranking) over {len(diff)} bootstrap samples of customers: mean "
        f"{diff.mean():+.5f}, {pct}th percentile {q:+.5f}: "
        + ("above 0, champion" if q > 0 else "not above 0, challenger only")
    )
    return q > 0, reason, figures
