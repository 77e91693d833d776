""" "effect" is the callback effect model's one name; "uplift", its old name, still works with a
FutureWarning: in the config (`planner.rank_by`), the planner's `rank_by`, the simulation's
policies and the command line (`--rank-by`, `--policy`)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from keepwell.config import load_config
from keepwell.words import current_name
from reporting.simulation.core import MonthBook, simulate
from serving.planning.planner import RANK_BY, ranking_score


def test_the_old_name_maps_to_the_new_one_with_a_warning():
    with pytest.warns(FutureWarning, match="'uplift' is deprecated; use 'effect'"):
        assert current_name("uplift", "--rank-by") == "effect"
    assert current_name("risk", "--rank-by") == "risk"
    assert "effect" in RANK_BY and "uplift" not in RANK_BY


def test_config_rank_by_uplift_is_read_as_effect(tmp_path):
    file = tmp_path / "old.yaml"
    file.write_text("planner:\n  rank_by: uplift\n")
    with pytest.warns(FutureWarning, match="planner.rank_by"):
        assert load_config(file).planner.rank_by == "effect"


def test_planner_and_simulation_accept_the_old_name(config):
    book = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "rm_id": ["r", "r"],
            "value_score": [50.0, 1.0],
            "churn_probability": [0.5, 0.1],
            "complaint_probability": [0.0, 0.0],
            "estimated_effect": [0.001, 0.2],
            "seed_rule": [0.0, 0.0],
            "effect": [0.0, 0.1],
            "in_holdout": [False, False],
        }
    )
    with pytest.warns(FutureWarning):
        old = ranking_score(book, "uplift", config)
    assert old.tolist() == ranking_score(book, "effect", config).tolist()
    month = [MonthBook(dt.date(2025, 1, 1), book)]
    with pytest.warns(FutureWarning):
        out = simulate(month, ["uplift"], calls_per_rm=1, reach=1.0, config=config)
    assert list(out) == ["effect"] and out["effect"].called[0].tolist() == ["b"]
