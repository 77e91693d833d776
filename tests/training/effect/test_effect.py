"""The callback effect model: experiment rows, uplift metrics, the meta-learner, the MLflow job."""

from __future__ import annotations

import datetime as dt
import math
import shutil

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from features.pipeline import build_snapshot_table, monthly_as_of_dates
from keepwell.workspace import Workspace
from training.effect.data import EffectSettings, build_effect_data, month_after, read_callbacks
from training.effect.logit import logit_tau
from training.effect.metrics import (
    bootstrap_qini_difference,
    qini_coefficient,
    qini_curve,
    spearman,
    uplift_at,
)
from training.effect.model import EffectModel, fit_effect_model

DATES = monthly_as_of_dates(dt.date(2025, 6, 1), 3)  # inside the small bank, labelled


# -- metrics by hand ---------------------------------------------------------------------------
# rows in score order: A treated stays, B control churns, C treated stays, D control stays,
# E treated churns, F treated churns; 4 treated in all
TINY_Y = np.array([0, 1, 0, 0, 1, 1])
TINY_T = np.array([1, 0, 1, 0, 1, 1])
TINY_S = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])


def test_qini_curve_and_coefficient_by_hand():
    x, q = qini_curve(TINY_Y, TINY_T, TINY_S[::-1][::-1])
    # k=2: Yc Nt/Nc - Yt = 1*1/1 - 0 = 1; k=3: 1*2/1 = 2; k=4: 1*2/2 = 1; k=5: 1*3/2 - 1 = 0.5;
    # k=6: 1*4/2 - 2 = 0; each divided by the 4 treated
    np.testing.assert_allclose(q, [0, 0, 0.25, 0.5, 0.25, 0.125, 0])
    np.testing.assert_allclose(x, np.arange(7) / 6)
    # q(n) = 0, so the random line is flat: the area is the trapezoid sum (0.25+.5+.25+.125)/6
    assert qini_coefficient(TINY_Y, TINY_T, TINY_S) == pytest.approx(1.125 / 6)
    # shuffled rows, same scores: same curve
    perm = np.array([3, 0, 5, 1, 4, 2])
    assert qini_coefficient(TINY_Y[perm], TINY_T[perm], TINY_S[perm]) == pytest.approx(1.125 / 6)


def test_uplift_at_k_by_hand():
    assert uplift_at(TINY_Y, TINY_T, TINY_S, 0.5) == pytest.approx(1.0)  # A,B,C: 1/1 - 0/2
    assert uplift_at(TINY_Y, TINY_T, TINY_S, 1.0) == pytest.approx(1 / 2 - 2 / 4)
    assert math.isnan(uplift_at(TINY_Y, TINY_T, TINY_S, 0.1))  # top 1 row: no control there
    with pytest.raises(ValueError, match="treated must be 0/1"):
        qini_curve(TINY_Y, TINY_T * 2, TINY_S)


# -- the learner on a synthetic experiment with a known effect ---------------------------------
FEATURES = [f"x{i}" for i in range(5)]


def synthetic(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Randomised (90 % treated) churn: base risk from x1, effect 0.25 * x0 where x2 > 0.5.

    (0.1 * x0 is too faint for 2,000 control rows: measured Spearman 0.2-0.3 for either learner
    over five tree settings.)"""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 5))
    effect = np.where(x[:, 2] > 0.5, 0.25 * x[:, 0], 0.0)
    risk = 1 / (1 + np.exp(-(-1.5 + 1.5 * x[:, 1])))
    treated = (rng.random(n) < 0.9).astype(int)
    churn = (rng.random(n) < risk - treated * effect).astype(int)
    frame = pd.DataFrame(x, columns=FEATURES).assign(treated=treated, churn=churn)
    return frame, effect, risk


@pytest.fixture(scope="module")
def synthetic_fit():
    train, _, _ = synthetic(20_000, 1)
    valid, _, _ = synthetic(5_000, 2)
    test, effect, risk = synthetic(20_000, 3)
    model = fit_effect_model(train, valid, FEATURES, [], EffectSettings(learner="x"), seed=7)
    return model, test, effect, risk


def test_learner_ranks_by_the_true_effect_and_beats_risk(synthetic_fit):
    model, test, effect, risk = synthetic_fit
    estimate = model.predict(test)
    y, t = test["churn"].to_numpy(), test["treated"].to_numpy()
    rho = spearman(estimate, effect)
    assert rho > 0.5, (rho, model.extra["learner_choice"])
    assert qini_coefficient(y, t, estimate) > qini_coefficient(y, t, risk)
    # the average estimate is about the average effect (0.0625)
    assert 0.03 < estimate.mean() < 0.1


def test_qini_of_random_scores_is_about_zero(synthetic_fit):
    _, test, effect, _ = synthetic_fit
    y, t = test["churn"].to_numpy(), test["treated"].to_numpy()
    ceiling = qini_coefficient(y, t, effect)
    rng = np.random.default_rng(0)
    randoms = [qini_coefficient(y, t, rng.random(len(y))) for _ in range(20)]
    assert ceiling > 0.003
    assert abs(np.mean(randoms)) < 0.15 * ceiling, (np.mean(randoms), ceiling)


def test_effect_model_saves_and_loads_without_pickle(synthetic_fit, tmp_path):
    model, test, _, _ = synthetic_fit
    folder = model.save(tmp_path / "effect")
    assert {p.name for p in folder.iterdir()} == {
        "effect.json",
        *(f"{n}.txt" for n in model.boosters),
    }
    loaded = EffectModel.load(folder)
    np.testing.assert_allclose(loaded.predict(test), model.predict(test))
    assert loaded.learner == model.learner and loaded.propensity == model.propensity


def logit_synthetic(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Randomised (90 % treated) churn on the log-odds: base -2 + 1.5 x1, a call lowers it by
    tau = 0.2 + 1.2 x0 - 0.6 x2 (the structure the logit learner assumes); returns the frame and
    the true reduction of the churn probability from a call."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 5))
    base = -2.0 + 1.5 * x[:, 1]
    tau = 0.2 + 1.2 * x[:, 0] - 0.6 * x[:, 2]
    treated = (rng.random(n) < 0.9).astype(int)
    p = 1 / (1 + np.exp(-(base - treated * tau)))
    churn = (rng.random(n) < p).astype(int)
    frame = pd.DataFrame(x, columns=FEATURES).assign(
        treated=treated, churn=churn, customer_id=[f"c{seed}_{i}" for i in range(n)]
    )
    effect = 1 / (1 + np.exp(-base)) - 1 / (1 + np.exp(-(base - tau)))
    return frame, effect


def test_logit_learner_recovers_a_log_odds_effect_and_saves_as_json(tmp_path):
    train, _ = logit_synthetic(30_000, 1)
    valid, _ = logit_synthetic(5_000, 2)
    test, effect = logit_synthetic(10_000, 3)
    settings = EffectSettings(learner="auto", max_trees=100)
    model = fit_effect_model(train, valid, FEATURES, [], settings, seed=7)
    assert model.learner == "logit", model.extra["learner_choice"]  # lower validation deviance
    m = model.boosters["m"].predict(model.matrix(test), raw_score=True)
    tau = logit_tau(model.extra["logit"], test, m)
    true_tau = 0.2 + 1.2 * test["x0"] - 0.6 * test["x2"]
    assert np.corrcoef(tau, true_tau)[0, 1] > 0.8
    assert abs(tau.mean() - true_tau.mean()) < 0.15, (tau.mean(), true_tau.mean())
    estimate = model.predict(test)
    assert spearman(estimate, effect) > 0.8
    y, t = test["churn"].to_numpy(), test["treated"].to_numpy()
    assert qini_coefficient(y, t, estimate) > qini_coefficient(y, t, test["x1"].to_numpy())
    folder = model.save(tmp_path / "logit")
    assert {p.name for p in folder.iterdir()} == {"effect.json", "m.txt"}  # no pickle
    np.testing.assert_allclose(EffectModel.load(folder).predict(test), estimate)


def test_promotion_bootstrap_needs_a_steady_win():
    test, effect = logit_synthetic(20_000, 4)
    y, t, ids = test["churn"].to_numpy(), test["treated"].to_numpy(), test["customer_id"]
    risk = test["x1"].to_numpy()
    better = bootstrap_qini_difference(y, t, effect, risk, ids, resamples=50)
    assert np.quantile(better, 0.1) > 0  # the true effect beats risk ranking steadily
    same = bootstrap_qini_difference(y, t, risk, risk, ids, resamples=20)
    assert not (np.quantile(same, 0.1) > 0)  # a tie never promotes
    noise = np.random.default_rng(0).random(len(y))
    coin = bootstrap_qini_difference(y, t, noise, risk, ids, resamples=50)
    assert not (np.quantile(coin, 0.1) > 0)


# -- experiment rows on the small demo bank ----------------------------------------------------
@pytest.fixture(scope="module")
def effect_data(small_bank, config):
    return build_effect_data(small_bank, config, DATES)


def test_arms_come_from_the_callbacks_of_the_as_of_month(effect_data, small_bank):
    frame = effect_data.frame
    assert set(frame["as_of"]) == set(DATES)
    assert not frame.duplicated(["customer_id", "as_of"]).any()
    cb = read_callbacks(small_bank)
    cb = cb[cb["reason"].isin(["post_sale", "quarterly"])]
    expected, both = [], 0
    lead = pd.Timedelta(days=EffectSettings().lead_days)
    for day in DATES:
        start, end = pd.Timestamp(day, tz="UTC"), pd.Timestamp(month_after(day), tz="UTC")
        month = cb[(cb["due_at"] >= start + lead) & (cb["due_at"] < end + lead)]
        assert not (month["done_at"] < start).any()  # the lead keeps early calls out
        per = month.groupby("customer_id")["outcome"].agg(
            held=lambda s: (s == "holdout").any(), made=lambda s: (s != "holdout").any()
        )
        both += int((per["held"] & per["made"]).sum())
        clean = per[per["held"] != per["made"]]
        expected.append(
            pd.DataFrame(
                {
                    "customer_id": clean.index,
                    "as_of": day,
                    "want": clean["made"].astype(int).to_numpy(),
                }
            )
        )
    want = pd.concat(expected)
    got = frame[["customer_id", "as_of", "treated"]].merge(
        want, on=["customer_id", "as_of"], how="left"
    )
    assert got["want"].notna().all()  # every row has a policy callback in its month
    assert (got["treated"] == got["want"]).all()
    assert effect_data.dropped_both == both > 0  # both-arm customers exist and are dropped
    assert len(frame) + effect_data.unlabelled + effect_data.done_before == len(want)
    counts = effect_data.arm_counts()
    assert 0.05 < counts["control"] / len(frame) < 0.2  # the ~10 % holdout
    assert set(frame["churn"].unique()) <= {0, 1}


def test_a_callback_is_not_in_its_own_rows_features(effect_data, small_bank, config, tmp_path):
    """The rows' features equal those of a bank whose callbacks of the as_of's window (due from
    as_of + lead) and later never happened: nothing of the row's own callback leaks into it.
    (Without the lead it did: calls are made up to 5 days before they are due.)"""
    day = DATES[0]
    lead = pd.Timedelta(days=EffectSettings().lead_days)
    bank = tmp_path / "bank"
    shutil.copytree(small_bank, bank)
    table = pq.read_table(bank / "callbacks.parquet")
    due = table.column("due_at").to_pandas()
    keep = (due < pd.Timestamp(day, tz="UTC") + lead).to_numpy()
    assert (~keep).sum() > 0
    pq.write_table(table.filter(keep), bank / "callbacks.parquet")
    build = build_snapshot_table(bank, [day], config, labels=True)
    blind = build.to_pyarrow().to_pandas()
    rows = effect_data.frame[effect_data.frame["as_of"] == day]
    cols = [c for c in effect_data.features if "callback" in c or "satisfaction" in c]
    assert len(cols) >= 4, cols
    merged = rows[["customer_id", *cols, "churn"]].merge(
        blind[["customer_id", *cols, "churn"]], on="customer_id", suffixes=("", "_blind")
    )
    assert len(merged) == len(rows)
    for c in [*cols, "churn"]:
        pd.testing.assert_series_equal(
            merged[c].astype(float), merged[f"{c}_blind"].astype(float), check_names=False
        )


# -- the MLflow job end to end on the small bank -----------------------------------------------
@pytest.fixture(scope="module")
def effect_run(small_bank, config, tmp_path_factory):
    from training.effect.run import train_effect

    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    # the logit learner only (no T-/X-learner boosters), short boosters, one LightGBM thread and
    # 30 bootstrap samples keep the test fast; the 18 monthly snapshots stay (with 14 the ~400
    # control rows gave a negative average effect and a reversed ranking)
    fast = {"learner": "logit", "max_trees": 80, "promotion_resamples": 30}
    config = config.model_copy(
        update={
            "effect": config.effect.model_copy(update=fast),
            "training": config.training.model_copy(update={"threads": 1}),
        }
    )
    ws = Workspace.open(tmp_path_factory.mktemp("effect_ws"), config)
    steps: list[str] = []
    result = train_effect(small_bank, config, ws, progress=steps.append)
    yield ws, result, steps, config
    mlflow.set_tracking_uri(before[0])
    mlflow.set_registry_uri(before[1])


def test_train_effect_logs_registers_and_loads(effect_run, small_bank):
    from training.effect.run import MODEL, RANDOM, RISK, load_effect_model
    from training.registry import CHAMPION, alias_version, set_alias

    ws, result, steps, config = effect_run
    assert any("experiment:" in s for s in steps)
    assert any("bootstrap samples of customers" in s for s in steps)
    run = mlflow.MlflowClient().get_run(result.run_id)
    for key in (
        "effect_qini",
        "risk_qini",
        "random_qini",
        "effect_uplift_at_20",
        "effect_spearman",
        "risk_spearman",
    ):
        assert key in run.data.metrics, key
    assert run.data.params["learner"] in ("x", "t", "logit")
    assert "promotion_qini_difference_quantile" in run.data.metrics
    assert int(run.data.params["rows_test_control"]) > 50
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id, "plots")}
    assert artifacts == {"plots/effect_qini.png", "plots/effect_vs_truth.png"}
    assert {MODEL, RISK, RANDOM} <= set(result.table)
    assert result.evaluation_path.exists()
    name = result.name
    assert alias_version(name, "challenger") == result.version
    beats = run.data.metrics["promotion_qini_difference_quantile"] > 0
    assert (alias_version(name, CHAMPION) == result.version) == beats
    assert ("champion" in result.aliases) == beats and "bootstrap" in result.alias_reason
    newest = load_effect_model(ws, config, newest=True)  # whatever its alias
    assert newest.extra["version"] == result.version
    assert ("champion" in newest.extra["aliases"]) == beats
    print(
        f"small bank: spearman vs truth {result.table[MODEL]['spearman']:.3f}, "
        f"qini {result.table[MODEL]['qini']:.5f} vs risk {result.table[RISK]['qini']:.5f}"
    )
    assert result.table[MODEL]["spearman"] > 0  # measured 0.19 (risk ranking 0.16)
    if not beats:
        assert load_effect_model(ws, config) is None
        set_alias(name, CHAMPION, result.version)
    model = load_effect_model(ws, config)
    frame = build_snapshot_table(small_bank, [DATES[-1]], config).to_pyarrow().to_pandas()
    estimate = model.predict(frame)
    assert estimate.shape == (len(frame),) and np.isfinite(estimate).all()
    np.testing.assert_allclose(estimate, result.model.predict(frame))
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{result.version}")
    out = pyfunc.predict(frame[list(model.features)].head(50))
    np.testing.assert_allclose(out["effect"].to_numpy(), estimate[:50])


def test_no_champion_loads_none(config, tmp_path):
    from training.effect.run import load_effect_model

    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    try:
        assert load_effect_model(Workspace.open(tmp_path, config), config) is None
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
