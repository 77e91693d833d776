"""The planner's rules on hand-made books with fixed dates (serving.planning.planner, pure)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from serving.decisions.calendar import WorkingCalendar
from serving.planning.job import carry_and_settle, holdout_draw
from serving.planning.planner import PlanError, compose_plan, risk_deadlines

DAY = dt.date(2025, 12, 5)  # a Friday
START = pd.Timestamp(DAY, tz="UTC")


def customer(cid: str, **over) -> dict:
    row = {
        "customer_id": cid,
        "rm_id": "RM1",
        "branch_id": "B1",
        "segment": "retail",
        "value_score": 10.0,
        "value_tier": "Standard",
        "risk_tier": "High",
        "churn_probability": 0.3,
        "complaint_probability": 0.05,
        "action": "contact this week: service recovery",
        "channel": "call_centre",
        "rule_channel": "call_centre",
        "special_care": False,
        "within_working_days": 5,
    }
    return row | over


def low(cid: str, **over) -> dict:
    """A low-risk customer: no risk task (the matrix says no contact)."""
    return customer(cid, risk_tier="Low", channel="none", churn_probability=0.02, **over)


def book(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def mandatory(*rows: tuple) -> pd.DataFrame:
    """(customer_id, rule, deadline) rows as first_task_per_customer gives them."""
    return pd.DataFrame(
        [
            {
                "customer_id": c,
                "rule": r,
                "rules": r,
                "deadline": pd.Timestamp(d, tz="UTC"),
                "overdue": pd.Timestamp(d, tz="UTC") < START,
                "detail": f"{r} detail",
            }
            for c, r, d in rows
        ],
        columns=["customer_id", "rule", "rules", "deadline", "overdue", "detail"],
    )


NO_CARRIED = pd.DataFrame(columns=["customer_id", "deadline", "carried_from"])


@pytest.fixture(scope="module")
def calendar(config) -> WorkingCalendar:
    return WorkingCalendar.from_config(config)


def plan(config, calendar, books, due=None, carried=NO_CARRIED, capacity=25, **kw):
    return compose_plan(
        books,
        due if due is not None else mandatory(),
        carried,
        pd.Series({"RM1": capacity, "RM2": capacity}),
        DAY,
        config,
        calendar,
        **kw,
    )


def test_mandatory_first_overdue_first_then_risk_by_value_at_risk(config, calendar):
    books = book(
        customer("A", value_score=5.0),  # value at risk 5 x (0.3 + 0.5 x 0.05)
        customer("B", value_score=20.0),
        low("C"),
        low("D"),
        customer("E", value_score=1.0),
    )
    due = mandatory(
        ("C", "quarterly", "2025-12-09 12:00"),
        ("D", "complaint_response", "2025-12-01 09:00"),  # overdue
        ("E", "post_sale", "2025-12-08 10:00"),
    )
    tasks = plan(config, calendar, books, due).tasks
    assert tasks["customer_id"].tolist() == ["D", "E", "C", "B", "A"]
    assert tasks["rank"].tolist() == [1, 2, 3, 4, 5]
    assert tasks["rule"].tolist() == [
        "complaint_response",
        "post_sale",
        "quarterly",
        "risk",
        "risk",
    ]
    assert tasks["overdue"].tolist() == [True, False, False, False, False]
    # E has a mandatory task and a risk-tier contact: one task carrying both rules
    assert tasks.set_index("customer_id").loc["E", "rules"] == "post_sale,risk"
    assert tasks["task_id"].iloc[0] == "2025-12-05:D"
    assert tasks.set_index("customer_id").loc["B", "rank_score"] == pytest.approx(20 * 0.325)
    assert tasks["customer_id"].is_unique


def test_rank_by_risk_ignores_value_and_effect_needs_its_column(config, calendar):
    books = book(
        customer("A", value_score=50.0, churn_probability=0.2),
        customer("B", value_score=1.0, churn_probability=0.4),
    )
    by_value = plan(config, calendar, books).tasks["customer_id"].tolist()
    by_risk = plan(config, calendar, books, rank_by="risk").tasks["customer_id"].tolist()
    assert (by_value, by_risk) == (["A", "B"], ["B", "A"])
    with pytest.raises(PlanError, match="estimated_effect"):
        plan(config, calendar, books, rank_by="effect")
    effect = books.assign(estimated_effect=[0.001, 0.2])  # value saved: 50 x 0.001 < 1 x 0.2
    assert plan(config, calendar, effect, rank_by="effect").tasks["customer_id"].tolist() == [
        "B",
        "A",
    ]


def test_capacity_keeps_special_care_and_drops_low_value_risk(config, calendar):
    books = book(
        low("M"),
        customer("HIGH", value_score=30.0),
        customer("LOW1", value_score=2.0),
        customer("LOW2", value_score=1.0),
        # elderly, low value, due today: listed even past the capacity
        customer("CARE", value_score=0.5, special_care=True, within_working_days=0),
        # special care that can wait: deferred with its deadline, not dropped
        customer("WAIT", value_score=0.4, special_care=True, within_working_days=5),
    )
    result = plan(
        config, calendar, books, mandatory(("M", "quarterly", "2025-12-05 12:00")), capacity=3
    )
    listed = result.tasks["customer_id"].tolist()
    # capacity 3 = M (mandatory) + CARE (forced) + HIGH; the low-value ordinary tasks drop
    assert listed == ["M", "HIGH", "CARE"]
    assert result.dropped == 2
    assert result.deferred["customer_id"].tolist() == ["WAIT"]
    # 5 working days from Friday 5 Dec 2025: Mon-Fri of the next week, due by the end of Friday
    assert result.deferred["deadline"].iloc[0] == pd.Timestamp("2025-12-13", tz="UTC")
    assert result.deferred["carried_from"].iloc[0] == DAY
    # with room for everyone nothing is dropped or deferred
    roomy = plan(config, calendar, books, mandatory(("M", "quarterly", "2025-12-05")), capacity=9)
    assert (roomy.dropped, len(roomy.deferred), len(roomy.tasks)) == (0, 0, 6)


def test_mandatory_tasks_are_never_cut_by_capacity(config, calendar):
    books = book(*(low(f"C{i}") for i in range(5)), customer("R"))
    due = mandatory(*((f"C{i}", "quarterly", "2025-12-01") for i in range(5)))
    tasks = plan(config, calendar, books, due, capacity=2).tasks
    assert tasks["customer_id"].tolist() == [f"C{i}" for i in range(5)]  # R has no room


def test_holdout_and_recent_contacts_get_no_risk_task_but_keep_mandatory(config, calendar):
    books = book(
        customer("H", in_holdout=True),
        customer("HM", in_holdout=True),
        customer("P", callback_holdout=True),
        customer("R", recently_contacted=True),
        customer("OK"),
    )
    result = plan(config, calendar, books, mandatory(("HM", "quarterly", "2025-12-05")))
    assert result.tasks["customer_id"].tolist() == ["HM", "OK"]
    assert result.held_out["customer_id"].tolist() == ["H"]


def test_carried_risk_tasks_come_before_new_ones_with_their_deadline(config, calendar):
    books = book(customer("NEW", value_score=99.0), customer("OLD", value_score=1.0))
    carried = pd.DataFrame(
        {
            "customer_id": ["OLD"],
            "deadline": [pd.Timestamp("2025-12-04", tz="UTC")],
            "carried_from": [dt.date(2025, 12, 1)],
        }
    )
    tasks = plan(config, calendar, books, carried=carried).tasks.set_index("customer_id")
    assert tasks.index.tolist() == ["OLD", "NEW"]
    assert tasks.loc["OLD", "carried_from"] == dt.date(2025, 12, 1)
    assert bool(tasks.loc["OLD", "overdue"])


def test_each_rm_gets_its_own_ranks_and_complaints_go_to_a_person(config, calendar):
    books = book(
        low("A", rule_channel="e_questionnaire"),
        customer("B", rm_id="RM2"),
        customer("C", rm_id="RM2", value_score=50.0),
    )
    tasks = plan(config, calendar, books, mandatory(("A", "complaint_response", "2025-12-05")))
    tasks = tasks.tasks
    assert tasks.groupby("rm_id")["rank"].apply(list).to_dict() == {"RM1": [1], "RM2": [1, 2]}
    assert tasks.set_index("customer_id").loc["A", "channel"] == "call_centre"


def test_bad_inputs_name_the_column(config, calendar):
    with pytest.raises(PlanError, match=r"lacks column\(s\) \['value_score'\]"):
        plan(config, calendar, book(customer("A")).drop(columns="value_score"))
    with pytest.raises(PlanError, match="duplicate customer_id"):
        plan(config, calendar, book(customer("A"), customer("A")))
    with pytest.raises(PlanError, match="unknown mandatory rule"):
        plan(config, calendar, book(customer("A")), mandatory(("A", "birthday", "2025-12-05")))
    with pytest.raises(PlanError, match="rank_by must be one of"):
        plan(config, calendar, book(customer("A")), rank_by="vibes")


def test_risk_deadlines_count_working_days_and_skip_holidays(calendar):
    within = np.array([0, 2, 5])
    got = risk_deadlines(within, DAY, calendar)
    # Friday: today ends at midnight; 2 working days -> Tuesday 9th, end of day
    assert list(got[:2]) == [
        pd.Timestamp("2025-12-06", tz="UTC"),
        pd.Timestamp("2025-12-10", tz="UTC"),
    ]
    # 25 Dec is a configured holiday: from Wed 24 Dec, 2 working days are Fri 26 and Mon 29
    christmas = risk_deadlines(np.array([2]), dt.date(2025, 12, 24), calendar)
    assert christmas[0] == pd.Timestamp("2025-12-30", tz="UTC")


def test_holdout_draw_is_stable_in_a_quarter_and_about_the_configured_share(config):
    ids = [f"C{i:07d}" for i in range(40_000)]
    a = holdout_draw(ids, dt.date(2025, 10, 2), config)
    b = holdout_draw(ids, dt.date(2025, 12, 30), config)
    c = holdout_draw(ids, dt.date(2026, 1, 2), config)
    assert (a == b).all()
    share = config.planner.risk_holdout_share
    assert abs(a.mean() - share) < 4 * np.sqrt(share * (1 - share) / len(ids))
    # re-drawn each quarter: independent draws overlap about share^2
    assert abs((a & c).mean() - share**2) < 0.005


def test_done_outcomes_settle_and_open_risk_tasks_carry_over():
    earlier = pd.DataFrame(
        {
            "task_id": ["2025-12-03:A", "2025-12-04:A", "2025-12-04:B", "2025-12-04:C"],
            "list_date": [dt.date(2025, 12, 3), *[dt.date(2025, 12, 4)] * 3],
            "customer_id": ["A", "A", "B", "C"],
            "rm_id": ["RM1"] * 4,
            "rule": ["risk", "risk", "risk", "quarterly"],
            "rules": ["risk", "risk", "risk", "quarterly,risk"],
            "deadline": pd.to_datetime(["2025-12-10"] * 4, utc=True),
            "carried_from": [None, dt.date(2025, 12, 3), None, None],
        }
    )
    outcomes = pd.DataFrame(
        {
            "task_id": ["2025-12-04:B", "2025-12-04:C", "2025-12-04:A"],
            "done": [True, True, False],  # A: no_answer
        }
    )
    carried, settled = carry_and_settle(earlier, outcomes)
    assert carried["customer_id"].tolist() == ["A"]
    assert carried["carried_from"].tolist() == [dt.date(2025, 12, 3)]  # first listed
    assert set(map(tuple, settled.to_numpy())) == {("C", "quarterly")}
