"""`keepwell plan --rank-by effect`: the champion callback effect model's estimate ranks the risk
tasks (value x estimated effect); without a champion the plan stops with a clear error."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest

from keepwell.config import load_config
from keepwell.workspace import Workspace
from serving.planning.job import plan_day
from serving.planning.list_format import rm_lists
from serving.planning.planner import PlanError
from tests.fixtures.serving import MLFLOW_ENV, restore_env


def test_rank_by_effect_without_a_champion_effect_model_is_a_clear_error(planned, serving_setup):
    saved = {k: os.environ.get(k) for k in MLFLOW_ENV}
    try:
        with pytest.raises(PlanError, match="run keepwell train-effect"):
            plan_day(serving_setup.workspace, serving_setup.config, planned.day, rank_by="effect")
    finally:
        restore_env(saved)


def test_rank_by_effect_ranks_risk_tasks_by_value_times_the_estimate(
    planned, serving_setup, tmp_path
):
    """On a copy of the serving workspace with a champion effect model (the logit learner fitted
    on the small bank's experiment), the risk tasks of each RM come in the order of value x
    estimated effect, and the chosen risk customers differ from the risk ranking's."""
    from serving.scoring.scorer import Scorer
    from training.effect.data import EffectSettings, build_effect_data
    from training.effect.model import fit_effect_model
    from training.effect.pyfunc import example_frame, log_effect_model
    from training.effect.run import load_effect_model
    from training.registry import CHAMPION, set_alias, setup_mlflow
    from training.split import time_split

    root = tmp_path / "workspace"
    shutil.copytree(serving_setup.workspace.root, root)
    config_file = tmp_path / "keepwell.yaml"
    config_file.write_text(f"mlflow:\n  tracking_uri: sqlite:///{root}/mlflow.db\n", "utf-8")
    config = load_config(config_file)
    ws = Workspace.open(root, config)
    # the same basis as the session's plan: no earlier lists or outcomes other tests left behind
    # (carried tasks would take the room of new risk tasks)
    for child in ws.path(config.paths.lists).iterdir():
        if child.name != planned.day.isoformat():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    outcomes = ws.path(config.paths.outcomes)
    for stale in (outcomes, *outcomes.parent.glob(outcomes.name + "-*")):  # with -wal and -shm
        stale.unlink(missing_ok=True)
    dates = pd.date_range("2024-12-01", "2025-07-01", freq="MS").date.tolist()
    data = build_effect_data(serving_setup.bank, config, dates)
    split = time_split(data.as_of_dates, config.labels.horizon_days, 1, 1)
    train, valid, _ = split.frames(data.frame)
    settings = EffectSettings(learner="logit", max_trees=60)
    model = fit_effect_model(train, valid, data.features, data.categorical, settings)
    saved = {k: os.environ.get(k) for k in MLFLOW_ENV}
    try:
        import mlflow

        setup_mlflow(ws)
        with mlflow.start_run(run_name="plan-effect test"):
            info = log_effect_model(
                model, example_frame(model, valid), name=settings.registered_model
            )
        set_alias(settings.registered_model, CHAMPION, str(info.registered_model_version))
        loaded = load_effect_model(ws, config)
        messages: list[str] = []
        result = plan_day(ws, config, planned.day, rank_by="effect", say=messages.append)
        book = Scorer.load(ws, config).snapshot
    finally:
        restore_env(saved)
    assert loaded is not None and loaded.learner == "logit"
    assert result.summary["rank_by"] == "effect"
    assert any("estimated the callback effect" in m for m in messages)
    estimate = pd.Series(loaded.predict(book.frame(loaded.features)), index=book.ids)

    def tasks(folder) -> pd.DataFrame:
        return pd.concat([pd.read_parquet(folder / f"{rm}.parquet") for rm in rm_lists(folder)])

    new_risk = tasks(result.folder).query("rule == 'risk' and carried_from.isna()")
    assert len(new_risk) > 20
    # the list's rank_score column is the ranking score: here value x estimated effect,
    # non-increasing down each RM's new risk tasks
    for _, part in new_risk.groupby("rm_id"):
        score = part.sort_values("rank")["rank_score"].to_numpy()
        assert (np.diff(score) <= 1e-12).all(), score
    # ... and equal to value x estimate, the value taken from the default plan (value x risk)
    before = tasks(planned.folder).set_index("customer_id")
    both = new_risk[new_risk["customer_id"].isin(before.index)].set_index("customer_id")
    assert len(both) > 5
    risk = (
        before["churn_probability"]
        + config.planner.complaint_weight * before["complaint_probability"]
    ).reindex(both.index)
    value = np.maximum(before["rank_score"].reindex(both.index) / risk, 0.0)
    np.testing.assert_allclose(
        both["rank_score"], value * estimate.reindex(both.index), rtol=1e-6, atol=1e-9
    )
    by_risk = set(before.index[before["rule"].eq("risk") & before["carried_from"].isna()])
    assert set(new_risk["customer_id"]) != by_risk
