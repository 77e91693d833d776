"""`keepwell simulate`: the month loop on hand-made books with known effects, the rankings against
the planner's, and the command end to end on the serving workspace's demo bank."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from reporting.simulation.core import (
    MonthBook,
    SimulationError,
    SimulationSettings,
    choose,
    policy_order,
    simulate,
)

JAN, FEB, MAR = dt.date(2025, 1, 1), dt.date(2025, 2, 1), dt.date(2025, 3, 1)


def six() -> pd.DataFrame:
    """Two RMs of three customers; B1 is in the risk holdout, A3 is a sleeping dog."""
    return pd.DataFrame(
        {
            "customer_id": ["A1", "A2", "A3", "B1", "B2", "B3"],
            "rm_id": ["a", "a", "a", "b", "b", "b"],
            "value_score": [2.0, 1.0, 3.0, 1.0, 4.0, 0.5],
            "churn_probability": [0.5, 0.8, 0.9, 0.1, 0.3, 0.2],
            "complaint_probability": [0.0] * 6,
            "seed_rule": [1.0, 0.0, 1.0, 1.0, 0.0, 0.0],
            "effect": [0.10, 0.02, -0.05, 0.20, 0.05, 0.01],
            "in_holdout": [False, False, False, True, False, False],
        }
    )


def random_book(rng: np.random.Generator, rms: int = 8, per_rm: int = 60) -> pd.DataFrame:
    n = rms * per_rm
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "rm_id": np.repeat([f"R{r}" for r in range(rms)], per_rm),
            "value_score": rng.gamma(2.0, 2.0, n),
            "churn_probability": rng.uniform(0, 0.6, n),
            "complaint_probability": rng.uniform(0, 0.3, n),
            "seed_rule": (rng.random(n) < 0.4).astype(float),
            "effect": rng.normal(0.02, 0.04, n),
            "in_holdout": rng.random(n) < 0.1,
            "estimated_effect": rng.normal(0.02, 0.04, n),
        }
    )


def run(books, policies, config, calls=2, reach=0.5):
    months = [MonthBook(d, b) for d, b in books]
    return simulate(months, policies, calls_per_rm=calls, reach=reach, config=config)


def test_expected_figures_hand_computed(config):
    out = run([(JAN, six())], ["none", "oracle", "risk"], config)
    none, oracle, risk = (out[p].totals() for p in ("none", "oracle", "risk"))
    assert none == {
        "calls": 0,
        "retained": 0.0,
        "value_retained": 0.0,
        "retained_per_1000_calls": 0.0,
        "value_retained_per_1000_calls": 0.0,
    }
    # oracle: value x effect -> a: A1 (0.2), A2 (0.02); b: B2 (0.2), B3 (0.005), B1 held out
    assert sorted(out["oracle"].called[0]) == ["A1", "A2", "B2", "B3"]
    assert oracle["calls"] == 4
    assert oracle["retained"] == pytest.approx(0.5 * (0.10 + 0.02 + 0.05 + 0.01))
    assert oracle["value_retained"] == pytest.approx(0.5 * (0.2 + 0.02 + 0.2 + 0.005))
    assert oracle["retained_per_1000_calls"] == pytest.approx(1000 * 0.09 / 4)
    # risk: a: A3 (0.9), A2 (0.8); b: B2, B3 - the sleeping dog A3 counts negative
    assert sorted(out["risk"].called[0]) == ["A2", "A3", "B2", "B3"]
    assert risk["retained"] == pytest.approx(0.5 * (-0.05 + 0.02 + 0.05 + 0.01))
    assert risk["value_retained"] == pytest.approx(0.5 * (-0.15 + 0.02 + 0.2 + 0.005))
    calm = six().assign(effect=lambda f: f["effect"].clip(lower=0))
    assert run([(JAN, calm)], ["risk"], config)["risk"].totals()["retained"] > risk["retained"]


def test_capacity_holdout_and_no_call_two_months_running(config):
    rng = np.random.default_rng(3)
    book = random_book(rng)
    books = [(JAN, book), (FEB, book), (MAR, book)]
    out = run(books, ["random", "seed_rule", "risk", "value_at_risk", "effect", "oracle"],
              config, calls=7)  # fmt: skip
    held = set(book.loc[book["in_holdout"], "customer_id"])
    rm_of = book.set_index("customer_id")["rm_id"]
    for name, result in out.items():
        assert [m["calls"] for m in result.months] == [7 * 8] * 3, name
        for m, called in enumerate(result.called):
            assert rm_of.reindex(called).value_counts().max() <= 7
            assert not held & set(called), name
            if m:
                assert not set(result.called[m - 1]) & set(called), (name, m)
        # month 3 may call month 1's customers again
    assert set(out["oracle"].called[0]) & set(out["oracle"].called[2])


def test_customers_the_planner_would_skip_are_never_called(config):
    """Recently reached (cooldown) and policy-holdout customers are out, as in the planner."""
    book = six().assign(
        recently_contacted=[False, False, True, False, False, False],  # A3: risk's first pick
        callback_holdout=[False, False, False, False, True, False],  # B2: everyone's pick in b
    )
    out = run([(JAN, book)], ["risk", "oracle", "value_at_risk"], config)
    for name, result in out.items():
        assert not {"A3", "B2", "B1"} & set(result.called[0]), name
    assert sorted(out["risk"].called[0]) == ["A1", "A2", "B3"]


def test_oracle_retains_the_most(config):
    rng = np.random.default_rng(5)
    book = random_book(rng).assign(value_score=1.0)  # equal value: oracle = most customers
    out = run([(JAN, book)], ["random", "seed_rule", "risk", "value_at_risk", "effect", "oracle"],
              config, calls=10)  # fmt: skip
    best = out["oracle"].totals()
    for name, result in out.items():
        assert best["retained"] >= result.totals()["retained"] - 1e-12, name
    valued = random_book(np.random.default_rng(6))
    out = run([(JAN, valued)], ["risk", "value_at_risk", "effect", "oracle"], config, calls=10)
    for name, result in out.items():
        assert out["oracle"].totals()["value_retained"] >= result.totals()["value_retained"], name


def test_policies_rank_like_the_planner(config):
    """The simulation's picks per RM are compose_plan's risk tasks for the same capacity."""
    from serving.decisions.calendar import WorkingCalendar
    from serving.planning.planner import compose_plan, ranking_score

    rng = np.random.default_rng(11)
    book = random_book(rng, rms=4, per_rm=40).assign(in_holdout=False)
    planner_book = book.assign(
        branch_id="B1", segment="hnw", value_tier="Priority", risk_tier="High", action="call",
        channel="rm_call", rule_channel="rm_call", special_care=False, within_working_days=2,
    )  # fmt: skip
    empty = pd.DataFrame(columns=["customer_id", "rule", "rules", "deadline", "overdue", "detail"])
    carried = pd.DataFrame(columns=["customer_id", "deadline", "carried_from"])
    capacity = pd.Series(9, index=sorted(book["rm_id"].unique()))
    calendar = WorkingCalendar.from_config(config)
    for rank_by in ("risk", "value_at_risk", "effect"):
        plan = compose_plan(planner_book, empty, carried, capacity, JAN, config, calendar,
                            rank_by=rank_by)  # fmt: skip
        score, ties = policy_order(rank_by, book, JAN, config, 7)
        np.testing.assert_array_equal(score, ranking_score(book, rank_by, config))
        picked = choose(book["rm_id"].to_numpy(object), score, ties, np.ones(len(book), bool), 9)
        for rm, tasks in plan.tasks.groupby("rm_id"):
            mine = book[picked & (book["rm_id"] == rm).to_numpy()]
            in_order = mine.iloc[np.argsort(-score[mine.index], kind="stable")]
            assert in_order["customer_id"].tolist() == tasks["customer_id"].tolist(), rank_by
    # the oracle is the planner's effect ranking with the true effect as the estimate
    oracle, _ = policy_order("oracle", book, JAN, config, 7)
    np.testing.assert_allclose(oracle, ranking_score(book.assign(estimated_effect=book["effect"]),
                                                     "effect", config))  # fmt: skip


def test_bad_inputs_are_named(config):
    with pytest.raises(SimulationError, match="estimated_effect"):
        run([(JAN, six())], ["effect"], config)
    with pytest.raises(SimulationError, match=r"'effect'.*A2"):
        run([(JAN, six().assign(effect=[0.1, np.nan, 0, 0, 0, 0]))], ["risk"], config)
    with pytest.raises(SimulationError, match="unknown policy"):
        run([(JAN, six())], ["clairvoyant"], config)
    assert SimulationSettings.from_config(config, calls_per_rm=12).calls_per_rm == 12
    with pytest.raises(SimulationError, match="months"):
        SimulationSettings(months=0)


def test_simulate_command_end_to_end(serving_setup):
    from typer.testing import CliRunner

    import cli.simulate  # noqa: F401  (registers the command)
    from cli.common import app

    policies = ["none", "random", "seed_rule", "risk", "value_at_risk", "oracle"]
    ws = serving_setup.workspace
    # 2 calls per RM a month: since the simulation applies the planner's tier-matrix contact
    # filter, the small bank has fewer callable customers per RM than the default 40, and only a
    # binding capacity lets the rankings differ
    args = ["--workspace", str(ws.root), "--config", str(serving_setup.config_file), "simulate",
            "--months", "2", "--calls-per-rm", "2", "--data", str(serving_setup.bank)]  # fmt: skip
    for p in policies:
        args += ["--policy", p]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((ws.reports / "simulation.json").read_text())
    assert (ws.reports / "simulation.png").read_bytes()[:4] == b"\x89PNG"
    assert "simulation.json" in result.output
    s = report["settings"]
    assert len(s["months"]) == 2 and s["calls_per_rm"] == 2 and 0 < s["reach_rate"] < 1
    assert set(report["policies"]) == set(policies)
    fields = {"calls", "retained", "retained_per_1000_calls", "value_retained",
              "value_retained_per_1000_calls", "months"}  # fmt: skip
    for name, r in report["policies"].items():
        assert fields <= set(r), name
        assert [m["as_of"] for m in r["months"]] == s["months"]
        assert report["policies"]["oracle"]["retained"] >= r["retained"], name
        assert report["policies"]["oracle"]["value_retained"] >= r["value_retained"], name
    assert report["policies"]["none"]["calls"] == 0
    assert report["policies"]["none"]["retained"] == 0
    assert report["policies"]["risk"]["calls"] > 0
    assert report["policies"]["oracle"]["retained"] > report["policies"]["random"]["retained"]


def test_effect_without_effect_model_is_left_out_with_a_note(serving_setup):
    from reporting.simulation.run import NO_EFFECT_MODEL, run_simulation

    report = run_simulation(serving_setup.workspace, serving_setup.config,
                            data_dir=serving_setup.bank, months=1,
                            policies=["effect", "risk"], effect_model=None)  # fmt: skip
    assert report["notes"] == [NO_EFFECT_MODEL]
    assert list(report["policies"]) == ["risk"]
