"""Monitoring arithmetic (`reporting.monitoring.drift`): PSI by hand and on samples, the
recommendation,
the reference window, the list-day pairing and the top-N overlap; the injected-shift must-show on
the session bank's real features; the top-N stability read from hand-written list folders."""

from __future__ import annotations

import datetime as dt
import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reporting.monitoring.drift import (
    FLOOR,
    Drift,
    MonitoringError,
    MonitoringSettings,
    categorical_counts,
    column_psi,
    consecutive_list_days,
    drift_table,
    numeric_counts,
    numeric_edges,
    psi_from_counts,
    recommend,
    top_n_overlap,
    window_dates,
)
from reporting.monitoring.run import metric_name
from tests.training._models import feature_frame

SETTINGS = MonitoringSettings()
D = dt.date


def _sample(rng: np.random.Generator, n: int = 5000, *, b_share: float = 0.1) -> pd.DataFrame:
    """Numeric (normal, counts with many zeros), a string level mix with nulls, a boolean."""
    others = (1 - b_share) / 3
    level = rng.choice(["a", "b", "c", "d"], n, p=[others, b_share, others, others])
    level = pd.Series(level, dtype=object).where(rng.random(n) > 0.05, None)
    frame = pd.DataFrame({
        "amount": rng.normal(100, 15, n),
        "count": rng.poisson(0.7, n).astype("int64"),
        "level": level,
        "flag": rng.random(n) < 0.3,
    })  # fmt: skip
    frame.loc[rng.random(n) < 0.1, "amount"] = np.nan
    return frame


COLUMNS = ["amount", "count", "level", "flag"]


# -- PSI by hand ---------------------------------------------------------------------------------
def test_psi_by_hand_on_two_bins_and_with_an_empty_bin():
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi_from_counts([50, 50], [25, 75]) == pytest.approx(expected)  # 0.2747
    # an empty reference bin counts as FLOOR, so the PSI stays finite
    floored = (0.5 - 1) * math.log(0.5 / 1) + (0.5 - FLOOR) * math.log(0.5 / FLOOR)
    assert psi_from_counts([100, 0], [50, 50]) == pytest.approx(floored)
    assert psi_from_counts([3, 1], [6, 2]) == pytest.approx(0.0)
    with pytest.raises(MonitoringError, match="empty"):
        psi_from_counts([0, 0], [1, 1])


def test_numeric_bins_are_reference_quantiles_with_open_ends_and_a_null_bin():
    ref = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, np.nan], dtype=float)
    edges = numeric_edges(ref, 2)
    assert edges.tolist() == [5.0]  # observed values, not interpolated
    assert numeric_counts(ref, edges).tolist() == [5, 5, 1]
    cur = np.array([-100, 1, 2, 50, 1e9, np.nan, np.nan, np.nan], dtype=float)
    assert numeric_counts(cur, edges).tolist() == [3, 2, 3]  # open-ended bins
    psi, kind, bins = column_psi(pd.Series(ref), pd.Series(cur), 2)
    r, c = np.array([5, 5, 1]) / 11, np.array([3, 2, 3]) / 8
    assert (kind, bins) == ("numeric", 3)
    assert psi == pytest.approx(float(np.sum((c - r) * np.log(c / r))))
    # many equal values: duplicate edges are dropped, a value on an edge goes to the lower bin
    counts = np.array([0, 0, 0, 0, 0, 0, 0, 1, 2, 3.0])
    assert numeric_edges(counts, 10).tolist() == [0, 1, 2]
    assert numeric_counts(counts, numeric_edges(counts, 10)).tolist() == [7, 1, 1, 1, 0]
    assert numeric_edges(np.array([np.nan, np.nan]), 10).size == 0


def test_categorical_bins_hold_unseen_levels_in_other_and_nulls_apart():
    ref = pd.Series(["a", "a", "b", None], dtype=object)
    cur = pd.Series(["a", "c", "c", None], dtype=object)
    levels = pd.Index(["a", "b"], dtype=object)
    assert categorical_counts(ref, levels).tolist() == [2, 1, 0, 1]  # a, b, other, null
    assert categorical_counts(cur, levels).tolist() == [1, 0, 2, 1]
    psi, kind, bins = column_psi(ref, cur, 10)
    r, c = np.array([0.5, 0.25, FLOOR, 0.25]), np.array([0.25, FLOOR, 0.5, 0.25])
    assert (kind, bins) == ("categorical", 4)
    assert psi == pytest.approx(float(np.sum((c - r) * np.log(c / r))))
    # booleans with nulls (object) against plain booleans: the same levels
    flags = pd.Series([True, False, None, True], dtype=object)
    assert column_psi(pd.Series([True, False, True, False]), flags, 10)[1] == "categorical"


def test_a_rise_in_nulls_alone_moves_a_numeric_feature():
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(size=5000)})
    cur = pd.DataFrame({"x": rng.normal(size=5000)})
    cur.loc[:2000, "x"] = np.nan  # 40 % nulls where the reference had none
    (d,) = drift_table(ref, cur, ["x"], SETTINGS)
    assert d.psi > SETTINGS.psi_retrain and d.current_null_share == pytest.approx(0.4, abs=0.01)


# -- PSI on samples ------------------------------------------------------------------------------
def test_identical_samples_are_quiet():
    frame = _sample(np.random.default_rng(1))
    drifts = drift_table(frame, frame.copy(), COLUMNS, SETTINGS)
    assert {d.name for d in drifts} == set(COLUMNS)
    assert all(d.psi < 0.01 and d.status == "stable" for d in drifts)
    assert recommend(drifts, [], SETTINGS).decision == "stable"


def test_an_unshifted_sample_of_the_same_distribution_stays_stable():
    ref, cur = _sample(np.random.default_rng(1)), _sample(np.random.default_rng(2))
    drifts = drift_table(ref, cur, COLUMNS, SETTINGS)
    assert max(d.psi for d in drifts) < SETTINGS.psi_warn, drifts
    advice = recommend(drifts, [], SETTINGS)
    assert advice.decision == "stable" and advice.retrain_features == []
    assert "no feature or score reached PSI 0.10" in advice.reasons[0]


def test_a_numeric_feature_shifted_by_one_standard_deviation_asks_for_retraining():
    ref, cur = _sample(np.random.default_rng(1)), _sample(np.random.default_rng(2))
    cur["amount"] += ref["amount"].std()
    drifts = drift_table(ref, cur, COLUMNS, SETTINGS)
    assert drifts[0].name == "amount" and drifts[0].psi > SETTINGS.psi_retrain
    assert drifts[0].status == "retrain"
    assert all(d.psi < SETTINGS.psi_warn for d in drifts[1:])
    advice = recommend(drifts, [], SETTINGS)
    assert advice.decision == "retrain" and advice.retrain_features == ["amount"]
    assert advice.reasons == [f"amount moved (PSI {drifts[0].psi:.2f} >= 0.25)"]


def test_a_level_share_moved_from_10_to_40_percent_asks_for_retraining():
    ref = _sample(np.random.default_rng(1), b_share=0.1)
    cur = _sample(np.random.default_rng(2), b_share=0.4)
    drifts = {d.name: d for d in drift_table(ref, cur, COLUMNS, SETTINGS)}
    assert drifts["level"].kind == "categorical" and drifts["level"].psi > SETTINGS.psi_retrain
    assert recommend(list(drifts.values()), [], SETTINGS).retrain_features == ["level"]


def test_categorical_columns_can_be_forced_and_missing_columns_are_named():
    frame = pd.DataFrame({"code": [1, 2, 3, 1]})
    (d,) = drift_table(frame, frame, ["code"], SETTINGS, categorical=["code"])
    assert d.kind == "categorical" and d.bins == 5
    with pytest.raises(MonitoringError, match=r"current sample lacks column\(s\) \['nope'\]"):
        drift_table(frame.assign(nope=1), frame, ["code", "nope"], SETTINGS)
    with pytest.raises(MonitoringError, match="current sample has no rows"):
        drift_table(frame, frame.iloc[:0], ["code"], SETTINGS)


# -- the recommendation --------------------------------------------------------------------------
def _drift(name: str, psi: float) -> Drift:
    return Drift(name, "numeric", psi, "stable", 11, 0.0, 0.0)


def test_the_recommendation_uses_each_bound_and_names_the_columns_by_psi():
    features = [_drift("a", 0.12), _drift("b", 0.31), _drift("c", 0.02), _drift("d", 0.27)]
    advice = recommend(features, [_drift("churn", 0.05)], SETTINGS)
    assert advice.decision == "retrain"
    assert advice.retrain_features == ["b", "d"] and advice.watch_features == ["a"]
    assert advice.reasons == ["b moved (PSI 0.31 >= 0.25)", "d moved (PSI 0.27 >= 0.25)",
                              "a moved (PSI 0.12 >= 0.10)"]  # fmt: skip
    scores = recommend([_drift("a", 0.01)], [_drift("churn", 0.12)], SETTINGS)
    assert scores.decision == "retrain" and scores.retrain_scores == ["churn"]
    assert scores.reasons == ["churn score moved (PSI 0.12 >= 0.10)"]
    assert recommend([_drift("a", 0.11)], [_drift("churn", 0.01)], SETTINGS).decision == "watch"
    strict = MonitoringSettings(min_features_drifted=2, score_psi_retrain=0.2)
    one = recommend([_drift("a", 0.3), _drift("b", 0.01)], [_drift("churn", 0.15)], strict)
    assert one.decision == "watch" and one.watch_scores == ["churn"]
    assert any("needs at least 2" in r for r in one.reasons)


def test_settings_come_from_the_config_section_or_the_defaults():
    assert MonitoringSettings.from_config(SimpleNamespace()) == MonitoringSettings()
    section = {"psi_warn": 0.2, "psi_retrain": 0.3, "top_n": 10, "unknown": 1}
    got = MonitoringSettings.from_config(SimpleNamespace(monitoring=section))
    assert (got.psi_warn, got.psi_retrain, got.top_n, got.bins) == (0.2, 0.3, 10, 10)
    from pydantic import BaseModel

    class Section(BaseModel):  # the shape the config's pydantic section will have
        bins: int = 12
        min_features_drifted: int = 2

    pydantic = MonitoringSettings.from_config(SimpleNamespace(monitoring=Section()))
    assert (pydantic.bins, pydantic.min_features_drifted, pydantic.psi_retrain) == (12, 2, 0.25)
    with pytest.raises(MonitoringError, match="psi_warn <= psi_retrain"):
        MonitoringSettings(psi_warn=0.3, psi_retrain=0.2)


def test_metric_names_are_sanitised_for_mlflow():
    assert metric_name("psi.feature", "txn_count_30d") == "psi.feature.txn_count_30d"
    assert metric_name("psi.feature", "a(b)=c,d") == "psi.feature.a_b__c_d"


# -- the reference window and the list days ------------------------------------------------------
def test_the_training_window_is_its_monthly_snapshots():
    dates = window_dates("2024-07-01..2025-01-01", "7")
    assert dates == [D(2024, m, 1) for m in range(7, 13)] + [D(2025, 1, 1)]
    assert window_dates("2025-01-31..2025-03-31") == [D(2025, 1, 31), D(2025, 2, 28),
                                                      D(2025, 3, 31)]  # fmt: skip
    with pytest.raises(MonitoringError, match="spans 7 monthly snapshots, the run logged 6"):
        window_dates("2024-07-01..2025-01-01", "6")
    with pytest.raises(MonitoringError, match=r"FIRST\.\.LAST"):
        window_dates("2024-07-01")
    with pytest.raises(MonitoringError, match="first date is after the last"):
        window_dates("2025-07-01..2025-01-01")


def test_list_days_pair_up_only_when_no_working_day_lies_between():
    week, holidays = (0, 1, 2, 3, 4), (D(2025, 12, 25),)
    mon, tue, thu_holiday = D(2025, 12, 1), D(2025, 12, 2), D(2026, 1, 1)
    assert consecutive_list_days([mon, tue, thu_holiday], week, holidays) == (mon, tue)
    assert consecutive_list_days([D(2025, 12, 5), D(2025, 12, 8)], week) == (
        D(2025, 12, 5), D(2025, 12, 8))  # Friday -> Monday  # fmt: skip
    assert consecutive_list_days([D(2025, 12, 24), D(2025, 12, 26)], week, holidays) is not None
    assert consecutive_list_days([mon, D(2025, 12, 3)], week) is None


def test_top_n_overlap_per_rm():
    first = {"A": ["c1", "c2", "c3", "c4", "c5"], "B": ["d1", "d2", "d3", "d4"], "C": ["e1"],
             "D": ["f1", "f2"]}  # fmt: skip
    second = {"A": ["c2", "c1", "c3", "c7", "c4"], "B": ["d5", "d6", "d7", "d1"], "D": ["f2", "f1"]}
    got = top_n_overlap(first, second, 4).set_index("rm_id")["overlap"].to_dict()
    assert got == {"A": 0.75, "B": 0.25, "C": 0.0, "D": 1.0}


# -- the must-show on real features ------------------------------------------------------------
def test_an_injected_shift_in_real_features_is_flagged_and_a_resample_is_not(small_bank, config):
    frame, spec = feature_frame(small_bank, config)
    names = list(spec.names)
    strings = [f.name for f in spec if f.dtype == "string"]
    resample = frame.sample(frac=1.0, replace=True, random_state=7).reset_index(drop=True)
    quiet = drift_table(frame, resample, names, SETTINGS, categorical=strings)
    assert len(quiet) == len(names) and max(d.psi for d in quiet) < SETTINGS.psi_warn
    assert recommend(quiet, [], SETTINGS).decision == "stable"

    moved = resample.copy()
    moved["aum_avg_180d"] = moved["aum_avg_180d"] + frame["aum_avg_180d"].std()
    flagged = drift_table(frame, moved, names, SETTINGS, categorical=strings)
    assert flagged[0].name == "aum_avg_180d" and flagged[0].psi > SETTINGS.psi_retrain
    assert max(d.psi for d in flagged[1:]) < SETTINGS.psi_warn
    advice = recommend(flagged, [], SETTINGS)
    assert advice.decision == "retrain" and advice.retrain_features == ["aum_avg_180d"]
    assert advice.reasons[0].startswith("aum_avg_180d moved (PSI ")

    segments = resample.copy()  # a categorical feature: a third of the book turns "hnw"
    flip = segments.sample(frac=0.35, random_state=3).index
    segments.loc[flip, "segment"] = "hnw"
    by_name = {d.name: d for d in drift_table(frame, segments, names, SETTINGS,
                                              categorical=strings)}  # fmt: skip
    assert by_name["segment"].kind == "categorical" and by_name["segment"].status == "retrain"


# -- the top-N stability of hand-written list folders --------------------------------------------
def _write_day(root, day: str, lists: dict[str, list[str]]) -> None:
    """One list day; each RM's rows on disk in reverse rank order (the top N goes by rank)."""
    folder = root / day
    folder.mkdir(parents=True)
    for rm, ids in lists.items():
        ranks = list(range(1, len(ids) + 1))
        table = pa.table({"rank": ranks[::-1], "customer_id": ids[::-1], "rm_id": [rm] * len(ids)})
        pq.write_table(table, folder / f"{rm}.parquet")
    mix = pa.table({"rm_id": ["A"], "value_tier": ["VIP"], "risk_tier": ["High"], "customers": [1]})
    pq.write_table(mix, folder / "book_mix.parquet")  # not a list
    (folder / "summary.json").write_text(json.dumps({"date": day}))


def test_top_n_stability_of_two_list_folders(tmp_path, config):
    from reporting.monitoring.stability import list_stability

    root = tmp_path / "lists"
    assert list_stability(root, config, 4)["status"] == "no_lists"
    _write_day(root, "2025-12-01", {"A": ["c1", "c2", "c3", "c4", "c5"],
                                    "B": ["d1", "d2", "d3", "d4"], "C": ["e1", "e2"]})  # fmt: skip
    one = list_stability(root, config, 4)
    assert one["status"] == "one_list_day" and one["mean_overlap"] is None
    _write_day(root, "2025-12-02", {"A": ["c2", "c1", "c3", "c7", "c4"],
                                    "B": ["d5", "d6", "d7", "d1"]})  # fmt: skip
    _write_day(root, "2026-01-01", {"A": ["x1"], "B": ["x2"]})  # holiday, not consecutive
    got = list_stability(root, config, 4)
    assert got["status"] == "compared" and got["dates"] == ["2025-12-01", "2025-12-02"]
    per_rm = {r["rm_id"]: r["overlap"] for r in got["per_rm"]}
    assert per_rm == {"A": 0.75, "B": 0.25, "C": 0.0}
    assert got["mean_overlap"] == pytest.approx(round(1 / 3, 4))
    assert (got["min_overlap"], got["share_below_half"], got["rms"]) == (0.0, 0.6667, 3)
    assert got["rms_below_half"] == ["B", "C"]

    apart = tmp_path / "apart"
    _write_day(apart, "2025-12-01", {"A": ["c1"]})
    _write_day(apart, "2025-12-03", {"A": ["c1"]})
    assert list_stability(apart, config, 4)["status"] == "no_consecutive_days"
