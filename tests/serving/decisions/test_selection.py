"""The planner and the decision simulation choose the same risk calls: one book with Low-,
Medium- and High-risk customers of every value tier (the tier matrix contacts no Low-risk
customer), customers who already have a mandatory task, the planner's flags and the risk
holdout; `compose_plan`'s new risk tasks equal `simulate`'s calls under every ranking."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from reporting.simulation.core import MonthBook, simulate
from serving.decisions.calendar import WorkingCalendar
from serving.decisions.selection import risk_candidates, within_capacity
from serving.decisions.tiers import decide_frame
from serving.planning.planner import compose_plan

DAY = dt.date(2025, 3, 3)
CALLS = 6  # risk calls per RM left once the mandatory tasks are listed


def mixed_book(config, seed: int = 21, rms: int = 4, per_rm: int = 45) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = rms * per_rm
    book = pd.DataFrame(
        {
            "customer_id": [f"C{i:04d}" for i in range(n)],
            "rm_id": np.repeat([f"R{r}" for r in range(rms)], per_rm),
            "branch_id": "B1",
            "segment": rng.choice(["retail", "hnw", "institutional"], n),
            "is_elderly": False,
            "is_disabled": False,
            "value_score": rng.gamma(2.0, 2.0, n),
            "value_tier": rng.choice(["VIP", "Priority", "Standard"], n),
            "risk_tier": rng.choice(["Low", "Medium", "High"], n),
            "churn_probability": rng.uniform(0, 0.6, n),
            "complaint_probability": rng.uniform(0, 0.3, n),
            "within_working_days": 2,
            "seed_rule": 0.0,
            "effect": rng.normal(0.02, 0.04, n),
            # Low-risk customers get the largest estimated effects: the ranking that would call
            # them if the contact filter were missing
            "estimated_effect": rng.normal(0.02, 0.04, n),
            "in_holdout": rng.random(n) < 0.1,
            "callback_holdout": rng.random(n) < 0.05,
            "recently_contacted": rng.random(n) < 0.05,
        }
    )
    book.loc[book["risk_tier"] == "Low", "estimated_effect"] += 0.5
    decided = decide_frame(book, config)
    book["action"] = decided["action"].to_numpy(dtype=object)
    book["channel"] = decided["channel"].to_numpy(dtype=object)
    book["rule_channel"] = book["channel"]
    book["special_care"] = False
    return book


def mandatory_for(book: pd.DataFrame, per_rm: int = 3) -> pd.DataFrame:
    """A quarterly callback due today for the first `per_rm` customers of each RM."""
    ids = book.groupby("rm_id", sort=True).head(per_rm)["customer_id"].tolist()
    deadline = pd.Timestamp(DAY, tz="UTC") + pd.Timedelta(hours=20)
    return pd.DataFrame(
        {
            "customer_id": ids,
            "rule": "quarterly",
            "rules": "quarterly",
            "deadline": [deadline] * len(ids),
            "overdue": False,
            "detail": None,
        }
    )


@pytest.mark.parametrize("rank_by", ["risk", "value_at_risk", "effect"])
def test_planner_and_simulation_choose_the_same_customers(config, rank_by):
    book = mixed_book(config)
    assert set(book["risk_tier"]) == {"Low", "Medium", "High"}
    assert (book.loc[book["risk_tier"] == "Low", "channel"] == "none").all()
    mandatory = mandatory_for(book)
    carried = pd.DataFrame(columns=["customer_id", "deadline", "carried_from"])
    per_rm = mandatory.merge(book[["customer_id", "rm_id"]], on="customer_id")["rm_id"]
    capacity = per_rm.value_counts().sort_index() + CALLS  # room for CALLS risk tasks each
    plan = compose_plan(book, mandatory, carried, capacity, DAY, config,
                        WorkingCalendar.from_config(config), rank_by=rank_by)  # fmt: skip
    listed = set(plan.tasks.loc[plan.tasks["rule"] == "risk", "customer_id"])

    month = book.assign(has_task=book["customer_id"].isin(mandatory["customer_id"]))
    result = simulate([MonthBook(DAY, month)], [rank_by], calls_per_rm=CALLS, reach=0.5,
                      config=config)  # fmt: skip
    called = set(result[rank_by].called[0])

    assert len(listed) == CALLS * book["rm_id"].nunique()
    assert called == listed
    risk = book.set_index("customer_id")["risk_tier"]
    assert set(risk.reindex(sorted(called))) <= {"Medium", "High"}, "no Low-risk call"
    assert not called & set(mandatory["customer_id"]), "a customer with a task is not called"


def test_candidates_and_capacity_rule():
    book = pd.DataFrame(
        {
            "customer_id": list("abcdef"),
            "channel": ["rm_call", "none", "rm_call", "visit", "rm_call", "call_centre"],
            "in_holdout": [False, False, True, False, False, False],
            "recently_contacted": [False, False, False, True, False, None],
        }
    )
    taken = np.array([False, False, False, False, True, False])
    c = risk_candidates(book, taken)
    assert c.callable.tolist() == [True, False, False, False, False, True]
    assert c.held.tolist() == [False, False, True, False, False, False]
    assert c.contact.tolist() == [True, False, True, True, True, True]
    rms = np.array(["x", "x", "x", "y", "y", "x"], dtype=object)
    competes = np.array([True, False, True, True, True, True])
    assert within_capacity(rms, competes, 2).tolist() == [True, True, True, True, True, False]
    assert within_capacity(rms, competes, np.array([1, 1, 1, 0, 0, 1])).tolist() == [
        True, True, False, False, False, False
    ]  # fmt: skip
