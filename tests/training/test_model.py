"""The per-target LightGBM model on small synthetic data: calibration, contributions, files,
categories, shape choice and determinism (seconds, no demo bank)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from keepwell.config import ExplainBudget, load_config
from training.fitted import FittedModel
from training.model import (
    Timing,
    choose_shape,
    fit_target,
    lightgbm_params,
    projected_seconds,
    time_booster,
)

FEATURES = ("x1", "x2", "x3", "count", "flag", "segment")
CATEGORICAL = ("segment",)
SHAPES = [
    {"num_leaves": 3, "max_depth": 2, "min_child_samples": 50},
    {"num_leaves": 15, "max_depth": 4, "min_child_samples": 50},
]


def synthetic(rows: int, seed: int) -> pd.DataFrame:
    """Features with a known effect on a binary target; `segment` a string category."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=rows),
            "x2": rng.normal(size=rows),
            "x3": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(size=rows)),
            "count": rng.poisson(3, rows).astype("int64"),
            "flag": rng.random(rows) < 0.3,
            "segment": rng.choice(["retail", "hnw", "institutional"], rows, p=[0.7, 0.2, 0.1]),
        }
    )
    # a three-way interaction that trees of depth 2 cannot fit: the deeper shape wins on AUC
    xor3 = np.sign(frame.x1) * np.sign(frame.x2) * np.sign(frame.x3.fillna(1.0))
    logit = (
        -1.5 + 1.2 * frame.x1 - 0.8 * frame.x2 * (frame.x2 > 0) + 0.5 * frame.flag + 0.8 * xor3
        + frame.segment.map({"retail": 0.0, "hnw": 0.6, "institutional": -0.6})
    )  # fmt: skip
    frame["churn"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype("int64")
    return frame


def _config(**training):
    """The default config with small, fast training settings (and `training` overrides)."""
    base = {"shapes": SHAPES, "max_trees": 300, "early_stopping_rounds": 20,
            "lightgbm": {"learning_rate": 0.1}}  # fmt: skip
    return load_config(overrides={"training": {**base, **training}})


@pytest.fixture(scope="module")
def small_config():
    return _config()


@pytest.fixture(scope="module")
def parts():
    return synthetic(4000, 1), synthetic(2000, 2), synthetic(2000, 3)


@pytest.fixture(scope="module")
def model(parts, small_config) -> FittedModel:
    train, valid, _ = parts
    return fit_target(train, valid, "churn", FEATURES, CATEGORICAL, small_config)


def test_probabilities_are_calibrated_and_monotone_in_the_margin(model, parts):
    test = parts[2]
    margin = model.margin(test)
    proba = model.predict_proba(test)
    assert ((proba >= 0) & (proba <= 1)).all()
    order = np.argsort(margin)
    assert (np.diff(proba[order]) >= -1e-12).all()
    # calibrated on the validation period: the mean score is close to the outcome rate there
    valid = parts[1]
    assert abs(model.predict_proba(valid).mean() - valid["churn"].mean()) < 0.01
    from training.metrics import roc_auc

    assert roc_auc(test["churn"].to_numpy(), margin) > 0.7


def test_isotonic_calibration_is_monotone_too(parts):
    train, valid, test = parts
    fitted = fit_target(train, valid, "churn", FEATURES, CATEGORICAL, _config(
        calibration="isotonic", isotonic_min_rows=0))  # fmt: skip
    assert fitted.calibrator.method == "isotonic" and fitted.extra["calibration"] == "isotonic"
    margin, proba = fitted.margin(test), fitted.predict_proba(test)
    assert ((proba >= 0) & (proba <= 1)).all()
    assert (np.diff(proba[np.argsort(margin)]) >= -1e-12).all()
    # too few validation rows for isotonic steps: Platt instead
    few = fit_target(train, valid, "churn", FEATURES, CATEGORICAL, _config(
        calibration="isotonic", isotonic_min_rows=len(valid) + 1))  # fmt: skip
    assert few.calibrator.method == "platt"


def test_contributions_sum_to_the_margin(model, parts):
    test = parts[2].head(500)
    contrib = model.contributions(test)
    assert contrib.shape == (500, len(FEATURES) + 1)
    np.testing.assert_allclose(contrib.sum(axis=1), model.margin(test), rtol=1e-6, atol=1e-9)


def test_save_and_load_give_identical_predictions(model, parts, tmp_path):
    test = parts[2]
    loaded = FittedModel.load(model.save(tmp_path / "churn"))
    np.testing.assert_array_equal(loaded.predict_proba(test), model.predict_proba(test))
    np.testing.assert_array_equal(loaded.contributions(test), model.contributions(test))
    assert loaded.extra["shape_choice"] == model.extra["shape_choice"]
    assert loaded.categories == {"segment": ["hnw", "institutional", "retail"]}


def test_unseen_category_level_is_treated_as_missing(model, parts):
    rows = parts[2].head(50).copy()
    unseen, missing = rows.copy(), rows.copy()
    unseen["segment"] = "private_banking"
    missing["segment"] = None
    np.testing.assert_array_equal(model.margin(unseen), model.margin(missing))
    hnw = rows.assign(segment="hnw")
    assert not np.array_equal(model.margin(hnw), model.margin(missing))


def test_extra_records_the_shapes_and_the_choice_as_plain_json(model):
    import json

    shapes = model.extra["shapes"]
    assert [s["shape"] for s in shapes] == SHAPES
    for s in shapes:
        assert s["trees"] >= 1 and s["explain_us_per_row"] > 0 and s["predict_us_per_row"] > 0
        assert 0.5 < s["valid_auc"] <= 1
    json.dumps(model.extra)  # plain JSON types only
    assert model.best_iteration == model.booster.num_trees()
    assert model.params["seed"] == 7 and model.params["deterministic"] is True


def _fake_timer(cost_per_leaf_tree: float):
    """Explain cost proportional to trees x leaves, predict a tenth of it."""

    def timer(booster, sample):
        leaves = booster.dump_model()["tree_info"]
        cost = cost_per_leaf_tree * sum(t["num_leaves"] for t in leaves)
        return Timing(predict_us=cost / 10, explain_us=cost)

    return timer


def test_fit_picks_the_cheaper_shape_when_aucs_are_within_tolerance(parts):
    train, valid, _ = parts
    budget = {"customers": 100_000, "seconds": 120, "cores": 2}
    timer = _fake_timer(1.0)
    # no tolerance: the best validation AUC (the deeper shape, see `synthetic`) whatever it costs
    strict = _config(explain_budget={**budget, "auc_tolerance": 0.0})
    best = fit_target(train, valid, "churn", FEATURES, CATEGORICAL, strict, timer=timer)
    aucs = [s["valid_auc"] for s in best.extra["shapes"]]
    costs = [s["explain_us_per_row"] for s in best.extra["shapes"]]
    assert aucs[1] > aucs[0] + 0.01 and costs[0] < costs[1]
    assert best.shape == SHAPES[1]
    # a tolerance wider than the AUC difference: the cheaper shape
    loose = _config(explain_budget={**budget, "auc_tolerance": 0.05})
    cheap = fit_target(train, valid, "churn", FEATURES, CATEGORICAL, loose, timer=timer)
    assert cheap.shape == SHAPES[0]
    choice = cheap.extra["shape_choice"]
    assert choice["budget_met"] is True and choice["auc_cost"] == pytest.approx(aucs[1] - aucs[0])
    # the cheap shape over budget, the deep one far over it: the cheapest, flagged
    tight = _config(explain_budget={**budget, "seconds": 1, "auc_tolerance": 0.05})
    over = fit_target(train, valid, "churn", FEATURES, CATEGORICAL, tight, timer=timer)
    assert over.shape == SHAPES[0] and over.extra["shape_choice"]["budget_met"] is False


BUDGET = ExplainBudget(customers=100_000, seconds=120, cores=2, auc_tolerance=0.005)


def _candidate(auc: float, explain_us: float) -> dict:
    return {
        "shape": {"num_leaves": 7, "max_depth": 3, "min_child_samples": 200},
        "valid_auc": auc,
        "explain_us_per_row": explain_us,
        "explain_seconds": projected_seconds(explain_us, BUDGET),
    }


@pytest.mark.parametrize(
    ("candidates", "chosen", "met"),
    [
        # cheapest within tolerance and budget
        ([_candidate(0.700, 100), _candidate(0.703, 400), _candidate(0.704, 900)], 0, True),
        # the cheap one loses too much AUC: the next cheapest within tolerance
        ([_candidate(0.690, 100), _candidate(0.703, 400), _candidate(0.704, 900)], 1, True),
        # the one within tolerance that fits the budget, not the cheaper one outside it
        ([_candidate(0.690, 100), _candidate(0.704, 3000), _candidate(0.703, 2200)], 2, True),
        # none within tolerance fits the budget (120 s: 2,400 us a row on 2 cores): the
        # cheapest within tolerance, flagged
        ([_candidate(0.690, 100), _candidate(0.704, 6000), _candidate(0.703, 2500)], 2, False),
    ],
)
def test_choose_shape(candidates, chosen, met):
    index, choice = choose_shape(candidates, BUDGET)
    assert index == chosen
    assert choice["budget_met"] is met
    assert ("budget not met" in choice["reason"]) is (not met)
    assert choice["auc_cost"] == pytest.approx(
        max(c["valid_auc"] for c in candidates) - candidates[chosen]["valid_auc"]
    )


def test_deterministic_for_a_seed(parts, small_config, model):
    train, valid, test = parts
    again = fit_target(train, valid, "churn", FEATURES, CATEGORICAL, small_config)
    assert again.booster.model_to_string() == model.booster.model_to_string()
    np.testing.assert_array_equal(again.predict_proba(test), model.predict_proba(test))
    reseeded = fit_target(train, valid, "churn", FEATURES, CATEGORICAL, _config(seed=8))
    assert reseeded.booster.model_to_string() != model.booster.model_to_string()


def test_imbalance_and_tuning_options(parts, small_config):
    train = parts[0]
    y = train["churn"].to_numpy()
    balanced = load_config(overrides={"training": {"imbalance": "balanced"}})
    params = lightgbm_params(balanced, balanced.training.shapes[0], y)
    assert params["scale_pos_weight"] == pytest.approx((y == 0).sum() / y.sum())
    assert "scale_pos_weight" not in lightgbm_params(
        small_config, small_config.training.shapes[0], y
    )
    tuned = load_config(overrides={"training": {"tuning_trials": 5}})
    with pytest.raises(ValueError, match="tuning_trials is 5"):
        fit_target(train, parts[1], "churn", FEATURES, CATEGORICAL, tuned)


def test_time_booster_measures_per_row(model, parts):
    sample = model.matrix(parts[2].head(400))
    timing = time_booster(model.booster, sample)
    assert 0 < timing.predict_us < timing.explain_us


def test_training_rejects_a_single_class(parts, small_config):
    train, valid, _ = parts
    with pytest.raises(ValueError, match="single churn value"):
        fit_target(train.assign(churn=0), valid, "churn", FEATURES, CATEGORICAL, small_config)
