"""Evaluation and baselines: hand-computed metrics, per-day capacity, the oracle join, the seed
rule, the logistic baseline, the JSON shape, tables and MLflow metric names."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from training.baselines import fit_logistic, oracle_scores, seed_rule
from training.evaluate import (
    METRICS,
    Evaluation,
    capacity_mask,
    daily_capacity,
    evaluate,
    evaluate_target,
    flat_metrics,
    read_evaluation,
    render_table,
    risk_tier,
    score_metrics,
    write_evaluation,
)
from training.metrics import expected_calibration_error

JAN, FEB = dt.date(2025, 1, 1), dt.date(2025, 2, 1)

# Ten rows, two snapshots of five. Positives at scores 0.9, 0.7 (January) and 0.4 (February).
Y = np.array([1, 0, 1, 0, 0, 1, 0, 0, 0, 0])
P = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
AS_OF = np.array([JAN] * 5 + [FEB] * 5, dtype=object)


def ten_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(5)] * 2,
            "as_of": AS_OF,
            "segment": ["retail", "hnw", "retail", "hnw", "retail"] * 2,
            "is_elderly": [True, False, False, False, False] * 2,
            "is_disabled": [False, True, False, False, False] * 2,  # rows 1 and 6: negatives
            "churn": Y,
            "complaint": Y[::-1].copy(),
        }
    )


# -- metrics -----------------------------------------------------------------------------------
def test_score_metrics_hand_computed():
    m = score_metrics(Y, P, capacity=2, as_of=AS_OF)
    assert set(m) == set(METRICS)
    assert m["roc_auc"] == pytest.approx(17 / 21)  # 7 + 6 + 4 pairs won of 3 x 7
    assert m["pr_auc"] == pytest.approx((1 + 2 / 3 + 3 / 6) / 3)  # precision at each positive
    assert m["brier"] == pytest.approx(1.8525 / 10)
    assert m["ece"] == pytest.approx(expected_calibration_error(Y, P))
    # top 5 % and top 10 % of 10 rows are both the single best row (0.9, a positive)
    assert m["capture_top_5pct"] == pytest.approx(1 / 3)
    assert m["lift_top_5pct"] == pytest.approx(1 / 0.3)
    assert m["capture_top_10pct"] == pytest.approx(1 / 3)
    assert m["lift_top_10pct"] == pytest.approx(1 / 0.3)
    # two calls a day: January calls 0.9 (positive) and 0.8; February 0.4 (positive) and 0.3
    assert m["capture_at_capacity"] == pytest.approx(2 / 3)
    assert (m["base_rate"], m["rows"], m["positives"]) == (0.3, 10.0, 3.0)


def test_capacity_applies_per_snapshot_not_pooled():
    pooled = score_metrics(Y, P, capacity=2)  # one day: 0.9 and 0.8 only
    assert pooled["capture_at_capacity"] == pytest.approx(1 / 3)
    assert capacity_mask(P, AS_OF, 2).tolist() == [1, 1, 0, 0, 0, 1, 1, 0, 0, 0]
    assert math.isnan(score_metrics(Y, P, capacity=None)["capture_at_capacity"])


def test_capacity_ties_are_broken_by_row_order():
    flags = np.array([1.0, 0, 1, 1, 0, 1])
    assert capacity_mask(flags, None, 2).tolist() == [True, False, True, False, False, False]


def test_binary_rule_has_no_calibration_metrics_and_nan_scores_are_refused():
    m = score_metrics(Y, (P > 0.5).astype(float), capacity=2, probability=False)
    assert math.isnan(m["brier"]) and math.isnan(m["ece"])
    assert m["roc_auc"] == pytest.approx(((2 / 3) + (1 - 2 / 7)) / 2)  # one cut: (TPR + TNR) / 2
    with pytest.raises(ValueError, match="1 of 10 scores are NaN"):
        score_metrics(Y, np.where(P == 0.5, np.nan, P), capacity=2)


def test_groups_rank_within_and_count_the_whole_books_calls():
    frame = ten_rows()
    result = evaluate_target(frame, Y, {"model": P, "oracle": None}, capacity=2)
    assert list(result) == ["model", "by_group"]  # no oracle: left out
    assert list(result["by_group"]) == ["hnw", "retail", "elderly", "disabled"]
    retail = result["by_group"]["retail"]["model"]  # rows 0, 2, 4, 5, 7, 9
    assert retail["rows"] == 6 and retail["positives"] == 3
    # the book's calls reach rows 0, 1, 5, 6: retail positives 0 and 5 of 0, 2, 5
    assert retail["capture_at_capacity"] == pytest.approx(2 / 3)
    # within retail the best row (0.9) is a positive; top 10 % of 6 rows is one row
    assert retail["capture_top_10pct"] == pytest.approx(1 / 3)
    hnw = result["by_group"]["hnw"]["model"]  # rows 1, 3, 6, 8: no positive
    assert hnw["positives"] == 0 and math.isnan(hnw["roc_auc"])
    elderly = result["by_group"]["elderly"]["model"]  # rows 0 and 5, both positive
    assert elderly["rows"] == 2 and math.isnan(elderly["roc_auc"])
    assert elderly["capture_at_capacity"] == 1.0  # both are among the day's calls
    disabled = result["by_group"]["disabled"]["model"]
    assert disabled["rows"] == 2 and disabled["positives"] == 0
    empty = ten_rows().assign(is_disabled=False)
    assert "disabled" not in evaluate_target(empty, Y, {"model": P}, capacity=2)["by_group"]


def test_missing_group_columns_are_skipped_and_lengths_checked():
    frame = ten_rows().drop(columns=["segment", "is_disabled"])
    result = evaluate_target(frame, Y, {"model": P}, capacity=1)
    assert list(result["by_group"]) == ["elderly"]
    with pytest.raises(ValueError, match="scorer 'model' has"):
        evaluate_target(frame, Y, {"model": P[:5]}, capacity=1)


def test_daily_capacity_from_frame_folder_and_missing(tmp_path):
    rms = pd.DataFrame({"rm_id": ["R1", "R2", "R3"], "capacity_per_day": [25, 12, 6]})
    assert daily_capacity(rms) == 43
    pq.write_table(pa.Table.from_pandas(rms), tmp_path / "rms.parquet")
    assert daily_capacity(tmp_path) == 43
    assert daily_capacity(tmp_path / "rms.parquet") == 43
    assert daily_capacity(tmp_path / "elsewhere") is None
    with pytest.raises(KeyError, match=r"rms\.capacity_per_day"):
        daily_capacity(rms.drop(columns="capacity_per_day"))
    with pytest.raises(ValueError, match=r"\[-1\]"):
        daily_capacity(rms.assign(capacity_per_day=[1, -1, 2]))


def test_risk_tier_uses_the_targets_cut_points(config):
    high, medium = config.tiers.risk_cut_points.high, config.tiers.risk_cut_points.medium
    p = np.array([high.churn, high.churn - 1e-9, medium.churn, medium.churn - 1e-9, 0.0])
    assert risk_tier(p, "churn", config).tolist() == ["High", "Medium", "Medium", "Low", "Low"]
    assert risk_tier(np.array([medium.complaint]), "complaint", config).tolist() == ["Medium"]
    with pytest.raises(KeyError, match="'loyalty'"):
        risk_tier(p, "loyalty", config)


# -- seed rule ---------------------------------------------------------------------------------
def test_seed_rule_on_hand_made_rows():
    frame = pd.DataFrame(
        {
            "txn_rate_30d_vs_90d": pd.array(
                [0.5, 1.0, None, 1.2, 1.2, 1.2, None, 0.99], dtype="Float64"
            ),
            "complaint_count_90d": [0, 0, 0, 1, 1, 1, 2, 0],
            "complaint_count_180d": [0, 0, 0, 1, 2, 3, 3, 0],
        }
    )
    # down | not down (=1) | null is not down | 1 vs 0 up | 1 vs 1 | 1 vs 2 | 2 vs 1 up | down
    assert seed_rule(frame).tolist() == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0]


def test_seed_rule_names_missing_columns():
    with pytest.raises(KeyError, match=r"complaint_count_180d"):
        seed_rule(pd.DataFrame({"txn_rate_30d_vs_90d": [1.0], "complaint_count_90d": [0]}))


# -- oracle ------------------------------------------------------------------------------------
def write_oracle(folder) -> None:
    oracle = pa.table(
        {
            "customer_id": ["C2", "C1", "C1", "C2", "C3"],
            "as_of": pa.array([JAN, FEB, JAN, FEB, dt.date(2024, 12, 1)], pa.date32()),
            "p_churn": [0.2, 0.11, 0.1, 0.22, 0.9],
            "p_complaint": [0.02, 0.011, 0.01, 0.022, 0.09],
            "callback_effect": [0.0] * 5,
        }
    )
    pq.write_table(oracle, folder / "oracle.parquet")


def test_oracle_join_follows_the_frames_row_order(tmp_path):
    write_oracle(tmp_path)
    frame = pd.DataFrame(
        {"customer_id": ["C1", "C2", "C2", "C1"], "as_of": [FEB, JAN, FEB, JAN], "x": range(4)}
    )
    assert oracle_scores(tmp_path, frame, "churn").tolist() == [0.11, 0.2, 0.22, 0.1]
    assert oracle_scores(tmp_path, frame, "complaint").tolist() == [0.011, 0.02, 0.022, 0.01]
    as_timestamps = frame.assign(as_of=pd.to_datetime(frame["as_of"]))
    assert oracle_scores(tmp_path, as_timestamps, "churn").tolist() == [0.11, 0.2, 0.22, 0.1]


def test_oracle_missing_pairs_and_missing_file(tmp_path):
    assert oracle_scores(tmp_path, pd.DataFrame({"customer_id": [], "as_of": []}), "churn") is None
    write_oracle(tmp_path)
    frame = pd.DataFrame({"customer_id": ["C1", "C3", "C9"], "as_of": [JAN, JAN, FEB]})
    with pytest.raises(ValueError, match=r"2 of 3 rows.*\(C3, 2025-01-01\), \(C9, 2025-02-01\)"):
        oracle_scores(tmp_path, frame, "churn")
    with pytest.raises(KeyError, match="p_loyalty"):
        oracle_scores(tmp_path, frame, "loyalty")


# -- logistic baseline -------------------------------------------------------------------------
def synthetic(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    segment = rng.choice(["retail", "hnw", "institutional"], size=n)
    flag = rng.random(n) < 0.3
    logit = -2 + 1.5 * signal + 1.0 * (segment == "hnw") + 0.8 * flag
    frame = pd.DataFrame(
        {
            "signal": signal,
            "noise": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            "count": rng.poisson(3, size=n).astype("int64"),
            "flag": pd.array(flag, dtype="boolean"),
            "segment": pd.array(segment, dtype="str"),
            "churn": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int64"),
        }
    )
    frame.loc[rng.random(n) < 0.05, "segment"] = None
    return frame


FEATURES = ["signal", "noise", "count", "flag", "segment"]


def test_logistic_beats_chance_and_handles_unseen_levels_and_nulls():
    from training.metrics import roc_auc

    train, test = synthetic(3000, 1), synthetic(2000, 2)
    model = fit_logistic(train, "churn", FEATURES, ["segment"], seed=7)
    p = model.predict_proba(test)
    assert roc_auc(test["churn"].to_numpy(), p) > 0.75
    assert ((p > 0) & (p < 1)).all()
    odd = test.head(4).copy()
    odd["segment"] = ["private_bank", None, "retail", "retail"]
    odd.loc[odd.index[2], ["signal", "count"]] = np.nan
    odd["flag"] = pd.array([None, True, None, False], dtype="boolean")
    q = model.predict_proba(odd)
    assert np.isfinite(q).all() and q.shape == (4,)
    again = fit_logistic(train, "churn", FEATURES, ["segment"], seed=7).predict_proba(test)
    assert np.array_equal(p, again)  # deterministic


def test_logistic_errors_name_the_problem():
    train = synthetic(200, 3)
    with pytest.raises(KeyError, match="missing_feature"):
        fit_logistic(train, "churn", [*FEATURES, "missing_feature"], ["segment"], seed=0)
    with pytest.raises(ValueError, match="both classes"):
        fit_logistic(train.assign(churn=0), "churn", FEATURES, ["segment"], seed=0)


# -- the evaluation: JSON, tables, MLflow metrics ----------------------------------------------
def full_evaluation() -> Evaluation:
    frame = ten_rows()
    scores = {
        "model": P,
        "logistic": P[::-1].copy(),
        "seed_rule": (P > 0.5).astype(float),
        "oracle": np.linspace(0.5, 0.05, 10),
    }
    return evaluate(frame, {"churn": scores, "complaint": scores}, capacity=2)


def test_json_has_exactly_the_issues_keys_and_nan_becomes_null(tmp_path):
    path = write_evaluation(tmp_path / "reports" / "evaluation.json", full_evaluation())
    data = json.loads(path.read_text())
    assert set(data) == {"test_period", "targets"}
    assert data["test_period"]["as_of"] == ["2025-01-01", "2025-02-01"]
    assert data["test_period"]["capacity_per_day"] == 2 and data["test_period"]["rows"] == 10
    assert set(data["targets"]) == {"churn", "complaint"}
    for result in data["targets"].values():
        assert list(result) == ["model", "logistic", "seed_rule", "oracle", "by_group"]
        for scorer in ("model", "logistic", "seed_rule", "oracle"):
            assert set(result[scorer]) == set(METRICS)
        assert set(result["by_group"]) == {"retail", "hnw", "elderly", "disabled"}
    churn = data["targets"]["churn"]
    assert churn["model"]["roc_auc"] == pytest.approx(17 / 21)
    assert churn["seed_rule"]["brier"] is None  # a 0/1 rule has no Brier score
    assert churn["by_group"]["disabled"]["model"]["roc_auc"] is None  # no positives: NaN -> null
    assert "NaN" not in path.read_text()
    back = read_evaluation(path)
    assert math.isnan(back.targets["churn"]["by_group"]["disabled"]["model"]["roc_auc"])
    assert [p.name for p in path.parent.iterdir()] == ["evaluation.json"]  # no temp file left


def test_render_table_shows_scorers_and_numbers():
    console = Console(record=True, width=200)
    for table in render_table(full_evaluation()):
        console.print(table)
    text = console.export_text()
    for name in ("model", "logistic", "seed_rule", "oracle", "retail", "elderly"):
        assert name in text
    assert f"{17 / 21:.3f}" in text  # model ROC-AUC, three decimals
    assert "capture@capacity" in text and "2025-01-01 .. 2025-02-01" in text


def test_flat_metrics_names_and_no_nan():
    flat = flat_metrics(full_evaluation())
    assert flat["churn.model.roc_auc"] == pytest.approx(17 / 21)
    assert "churn.oracle.roc_auc" in flat and "complaint.logistic.capture_at_capacity" in flat
    assert "churn.retail.model.roc_auc" in flat
    assert "churn.disabled.model.roc_auc" not in flat  # NaN dropped
    assert "churn.seed_rule.brier" not in flat
    assert all(math.isfinite(v) for v in flat.values())
