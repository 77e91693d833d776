"""Evaluation plots: the expected axes, lines and legends; PNGs written whole or not at all."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from training import plots

PNG = b"\x89PNG\r\n\x1a\n"
Y = np.array([1, 0, 1, 0, 0])
SCORES = {
    "model": np.array([0.9, 0.7, 0.8, 0.2, 0.1]),
    "logistic": np.array([0.5, 0.6, 0.4, 0.3, 0.2]),
}


def legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


def test_roc_pr_figure_has_one_curve_per_scorer_with_its_area():
    fig = plots.roc_pr_figure(Y, SCORES)
    roc, pr = fig.axes
    assert legend_texts(roc) == ["model (AUC 1.000)", "logistic (AUC 0.667)", "random"]
    # logistic ranks 0.6 (negative), then the positives: precision 1/2 and 2/3, AP 0.583
    assert legend_texts(pr)[:2] == ["model (AP 1.000)", "logistic (AP 0.583)"]
    assert legend_texts(pr)[-1] == "base rate 0.400"
    assert len(roc.get_lines()) == 3  # two scorers and the diagonal
    assert plt.get_fignums() == []  # nothing registered with pyplot


def test_calibration_figure_plots_equal_count_bins_and_a_histogram():
    rng = np.random.default_rng(0)
    p = rng.random(1000) * 0.5
    y = (rng.random(1000) < p).astype(int)
    fig = plots.calibration_figure(y, {"model": p, "flat": np.full(1000, y.mean())}, bins=10)
    top, bottom = fig.axes
    labels = legend_texts(top)
    assert labels[0] == "perfectly calibrated"
    assert labels[1].startswith("model (ECE ") and labels[2].startswith("flat (ECE ")
    model_line = top.get_lines()[1]
    mean_p, rate, rows = plots.reliability_points(y, p, 10)
    assert len(model_line.get_xdata()) == 10 and rows.sum() == 1000
    assert np.allclose(model_line.get_xdata(), mean_p) and np.allclose(model_line.get_ydata(), rate)
    assert len(top.get_lines()[2].get_xdata()) == 1  # ties are never split: one bin
    assert bottom.get_yscale() == "log" and len(bottom.patches) == 2  # one step histogram each


def test_gain_curve_and_figure_mark_the_daily_capacity():
    x, captured = plots.gain_curve(Y, SCORES["model"])
    assert x.tolist() == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert captured.tolist() == [0, 0.5, 1.0, 1.0, 1.0, 1.0]
    fig = plots.gain_figure(Y, SCORES, capacity=1, snapshots=2)
    (ax,) = fig.axes
    labels = legend_texts(ax)
    assert labels == ["model", "logistic", "random", "perfect", "daily capacity (1 calls, 40.0%)"]
    markers = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert [m.get_ydata()[0] for m in markers] == [1.0, 0.5]  # each curve at 40 % contacted
    no_capacity = plots.gain_figure(Y, SCORES)
    assert not any("capacity" in t for t in legend_texts(no_capacity.axes[0]))


def test_tier_distribution_figure_counts_each_tier():
    p = np.array([0.5, 0.3, 0.15, 0.12, 0.05, 0.01, 0.02, 0.03, 0.04, 0.06])
    tiers = np.array(["High", "High", "Medium", "Medium"] + ["Low"] * 6)
    fig = plots.tier_distribution_figure(p, tiers, cuts={"high": 0.25, "medium": 0.1})
    hist, bars = fig.axes
    assert legend_texts(hist) == ["High (2, 20.0%)", "Medium (2, 20.0%)", "Low (6, 60.0%)"]
    assert [b.get_height() for b in bars.patches] == [2, 2, 6]
    assert [t.get_text() for t in bars.get_xticklabels()] == ["High", "Medium", "Low"]
    with pytest.raises(ValueError, match="scores for"):
        plots.tier_distribution_figure(p, tiers[:3])


# -- SHAP --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def explained():
    """A tiny LightGBM with a categorical feature, its pred_contrib and its inputs."""
    import lightgbm as lgb

    rng = np.random.default_rng(5)
    n = 600
    x = pd.DataFrame(
        {
            "txn_count_30d": rng.poisson(5, n).astype(float),
            "segment": pd.Categorical(rng.choice(["retail", "hnw", "institutional"], n)),
            "is_elderly": rng.random(n) < 0.2,
        }
    )
    logit = -1 + 0.3 * (x["txn_count_30d"] - 5) + (x["segment"] == "hnw") + x["is_elderly"]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    matrix = x.assign(is_elderly=x["is_elderly"].astype(float))
    params = {"objective": "binary", "num_leaves": 4, "verbosity": -1, "min_data_in_leaf": 20}
    booster = lgb.train(params, lgb.Dataset(matrix, y), num_boost_round=20)
    contrib = booster.predict(matrix, pred_contrib=True)
    return contrib, x, list(x.columns)


def test_shap_summary_draws_a_beeswarm_of_every_feature(explained):
    contrib, x, names = explained
    assert np.allclose(contrib.sum(axis=1)[:3], contrib[:3].sum(axis=1))
    fig = plots.shap_summary_figure(contrib, x, names, max_display=20)
    ax = fig.axes[0]
    assert not ax.get_title().startswith("mean |SHAP|")  # the beeswarm, not the fallback
    assert sorted(t.get_text() for t in ax.get_yticklabels()) == sorted(names)
    assert len(ax.collections) >= len(names)  # one scatter per feature
    assert plt.get_fignums() == []  # detached from pyplot
    with pytest.raises(ValueError, match=r"\(rows, 3 features \+ 1 bias\)"):
        plots.shap_summary_figure(contrib[:, :-1], x, names)


def test_shap_summary_falls_back_to_mean_abs_bars(explained, monkeypatch):
    import shap

    contrib, x, names = explained

    def broken(*args, **kwargs):
        plt.figure()  # leave a half-drawn figure behind, as a failing plot would
        raise RuntimeError("cannot draw")

    monkeypatch.setattr(shap, "summary_plot", broken)
    fig = plots.shap_summary_figure(contrib, x, names, max_display=2)
    (ax,) = fig.axes
    assert ax.get_title() == "mean |SHAP| (beeswarm failed: RuntimeError)"
    assert len(ax.patches) == 2  # max_display bars
    mean = np.abs(contrib[:, :-1]).mean(axis=0)
    assert ax.get_yticklabels()[-1].get_text() == names[int(np.argmax(mean))]
    assert plt.get_fignums() == []


# -- files -------------------------------------------------------------------------------------
def test_target_figures_and_save_figures_write_whole_pngs(tmp_path):
    figs = plots.target_figures(
        "churn",
        Y,
        {**SCORES, "seed_rule": (SCORES["model"] > 0.5).astype(float), "oracle": None},
        capacity=1,
        tiers=np.array(["High", "Medium", "High", "Low", "Low"]),
    )
    assert list(figs) == ["churn_roc_pr", "churn_calibration", "churn_gain", "churn_tiers"]
    calibration_labels = legend_texts(figs["churn_calibration"].axes[0])
    assert not any(label.startswith("seed_rule") for label in calibration_labels)
    paths = plots.save_figures(figs, tmp_path / "plots")
    assert [p.name for p in paths] == [f"{name}.png" for name in figs]
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG) and len(data) > 1000
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(p.name for p in paths)


def test_save_figures_leaves_no_half_written_file(tmp_path):
    good = plots.roc_pr_figure(Y, SCORES)
    bad = plots.gain_figure(Y, SCORES)

    def fail(path, **kwargs):
        with open(path, "wb") as handle:
            handle.write(PNG)  # a partial file, then the failure
        raise OSError("disk full")

    bad.savefig = fail
    with pytest.raises(OSError, match="disk full"):
        plots.save_figures({"good": good, "bad": bad}, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["good.png"]
    with pytest.raises(ValueError, match="plain file names"):
        plots.save_figures({"../escape": good}, tmp_path)
