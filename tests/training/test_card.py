"""The model card holds the numbers it was given, the intended use, the limits and the rules."""

from __future__ import annotations

import dataclasses

import pytest

from tests.training._models import small_model
from training.card import fmt, model_card


def _metrics(auc: float, **extra: float) -> dict:
    base = {"roc_auc": auc, "pr_auc": 0.3141, "brier": 0.05432, "ece": 0.01234,
            "lift_top_5pct": 4.321, "capture_top_10pct": 0.4567, "capture_at_capacity": 0.2345,
            "base_rate": 0.0712, "rows": 40_000, "positives": 2_848}  # fmt: skip
    return base | extra


EVALUATION = {
    "model": _metrics(0.8123),
    "logistic": _metrics(0.7765, pr_auc=0.2222),
    "seed_rule": _metrics(0.6012, brier=None, ece=None),
    "oracle": _metrics(0.8377),
    "by_group": {
        "retail": {"model": _metrics(0.8011), "logistic": _metrics(0.7711)},
        "institutional": {"model": _metrics(0.6543, rows=1_204, positives=17)},
        "disabled": {"model": _metrics(0.7001, rows=1_600, positives=40)},
    },
}
SPLIT = {
    "split_horizon_days": 90, "split_train_snapshots": 12, "split_valid_snapshots": 2,
    "split_test_snapshots": 2, "split_train": "2024-07-01..2025-06-01",
    "split_valid": "2025-09-01..2025-10-01", "split_test": "2026-01-01..2026-02-01",
    "split_dropped": "2025-07-01,2025-08-01",
}  # fmt: skip
WINDOW = {
    "first_as_of": "2024-07-01", "last_as_of": "2026-02-01", "data_hash": "ab12cd34",
    "train": {"rows": 211_000, "positives": 15_003, "base_rate": 0.0711},
    "valid": {"rows": 39_500, "positives": 2_801, "base_rate": 0.0709},
}  # fmt: skip
SHAPES = [
    {"num_leaves": 7, "max_depth": 3, "min_child_samples": 200, "valid_roc_auc": 0.8071,
     "trees": 640, "predict_us_per_row": 3.2, "explain_us_per_row": 95.0,
     "projected_explain_seconds": 4.75, "chosen": False},
    {"num_leaves": 15, "max_depth": 4, "min_child_samples": 200, "valid_roc_auc": 0.8102,
     "trees": 480, "predict_us_per_row": 4.1, "explain_us_per_row": 210.5,
     "projected_explain_seconds": 10.5, "chosen": True},
    {"num_leaves": 63, "max_depth": -1, "min_child_samples": 50, "valid_roc_auc": 0.8129,
     "trees": 350, "predict_us_per_row": 9.9, "explain_us_per_row": 2_650.0,
     "projected_explain_seconds": 132.5, "chosen": False},
]  # fmt: skip


@pytest.fixture(scope="module")
def card(small_bank, config):
    fitted = dataclasses.replace(
        small_model(small_bank, config),
        shape={"num_leaves": 15, "max_depth": 4, "min_child_samples": 200},
        best_iteration=480,
    )
    return model_card(
        "churn", fitted, EVALUATION, SPLIT, WINDOW, "spec1234abcd", "git:0badc0de", SHAPES, config
    )


def test_card_has_the_sections_a_committee_reads(card):
    headings = ["# Keepwell churn model card", "## Intended use", "## Data window",
                "## Test-period metrics", "## By segment", "## Model shape", "## Calibration",
                "## Reasons and fairness", "## Limits", "## Versions"]  # fmt: skip
    for heading in headings:
        assert heading in card, heading
    assert "keepwell-churn" in card
    assert "Not** for credit decisions" in card and "without a human" in card
    assert "simulated" in card and "90 days" in card and "monthly" in card


def test_card_holds_the_metrics_it_was_given(card):
    lines = card.splitlines()
    model_row = next(line for line in lines if line.startswith("| LightGBM"))
    for text in ("0.812", "0.314", "0.0543", "0.0123", "4.32", "45.7%", "23.4%", "40,000",
                 "2,848", "7.12%"):  # fmt: skip
        assert text in model_row, text
    assert "0.838" in next(line for line in lines if line.startswith("| oracle"))
    assert "0.222" in next(line for line in lines if line.startswith("| logistic"))
    seed = next(line for line in lines if line.startswith("| seed rule"))
    assert seed.split(" | ").count("-") == 2  # Brier and ECE missing render as "-"


def test_card_shows_groups_with_counts_and_flags_few_positives(card):
    lines = card.splitlines()
    institutional = next(line for line in lines if line.startswith("| institutional"))
    assert "0.654" in institutional and "1,204" in institutional and "17" in institutional
    assert "uncertain" in institutional
    retail = [line for line in lines if line.startswith("| retail")]
    assert len(retail) == 2 and "uncertain" not in retail[0]
    assert any("0.801" in line for line in retail) and any("0.771" in line for line in retail)
    assert "| disabled |" in card


def test_card_states_the_window_and_versions(card):
    for text in ("2024-07-01..2025-06-01", "2025-09-01..2025-10-01", "2026-01-01..2026-02-01",
                 "211,000", "15,003", "7.11%", "39,500", "ab12cd34", "2025-07-01,2025-08-01",
                 "spec1234abcd", "git:0badc0de"):  # fmt: skip
        assert text in card, text
    test_row = next(line for line in card.splitlines() if line.startswith("| test |"))
    assert "40,000" in test_row and "2,848" in test_row  # from the test-period metrics


def test_card_states_the_shape_trade_off(card):
    assert "132.5" in card and "2,650.0" in card and "210.5" in card and "0.8129" in card
    chosen = next(line for line in card.splitlines() if line.endswith("| yes |"))
    assert chosen.startswith("| 15 | 4 |")
    assert "What the trade-off cost:** 0.0027 validation ROC-AUC" in card
    assert "12.6x faster" in card
    assert "100,000 customers within 120 s on 2 core(s)" in card


def test_card_lists_never_as_reason_attributes_and_the_fairness_note(card, config):
    fairness = card.split("## Reasons and fairness")[1].split("##")[0]
    for name in config.reasons.never_as_reason:
        assert f"`{name}`" in fairness
    assert "may still drive the score" in fairness
    assert "uses `age_years`, `is_elderly`, `is_disabled`, `kind` as inputs" in fairness
    assert "Isotonic" in card.split("## Calibration")[1]


def test_card_survives_a_thin_evaluation(small_bank, config):
    card = model_card(
        "complaint", small_model(small_bank, config), {"model": {"roc_auc": 0.7}}, {}, {},
        "", "", [], config,
    )  # fmt: skip
    assert "0.700" in card and "oracle" not in card.split("## Test-period metrics")[1][:400]
    assert "No per-group results" in card and "No shape comparison" in card
    assert "at least 1 complaint(s)" in card


def test_fmt_renders_missing_values_as_a_dash():
    assert fmt(None, ".3f") == "-" and fmt(float("nan"), ".1%") == "-"
    assert fmt("x", ".3f") == "-" and fmt(1234, ",d") == "1,234" and fmt(0.5, ".0%") == "50%"
