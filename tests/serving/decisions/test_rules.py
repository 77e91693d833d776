"""Policy rules with fixed dates: working-day deadlines, complaint SLAs, due callback tasks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from keepwell.config import Config
from serving.decisions.rules import (
    CALLBACK_RULES,
    TASK_COLUMNS,
    WorkingCalendar,
    complaint_deadlines,
    due_tasks,
    due_tasks_from_folder,
    first_task_per_customer,
)

UTC = dt.UTC


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def with_policy(config: Config, **update) -> Config:
    return config.model_copy(update={"policy": config.policy.model_copy(update=update)})


@pytest.fixture(scope="module")
def plain() -> WorkingCalendar:
    """Monday to Friday, no holidays."""
    return WorkingCalendar((0, 1, 2, 3, 4))


# -- working days ------------------------------------------------------------------------------
def test_seven_working_days_from_friday_afternoon(plain):
    friday = dt.datetime(2025, 9, 5, 16, 0, tzinfo=UTC)
    assert friday.weekday() == 4
    due = plain.add_working_days(friday, 7)
    assert due == at("2025-09-16 16:00")  # the Tuesday of the week after next
    assert due.weekday() == 1


def test_a_holiday_in_between_adds_a_day():
    calendar = WorkingCalendar((0, 1, 2, 3, 4), (dt.date(2025, 9, 10),))
    due = calendar.add_working_days(dt.datetime(2025, 9, 5, 16, 0, tzinfo=UTC), 7)
    assert due == at("2025-09-17 16:00")


def test_weekend_and_holiday_openings_count_from_the_next_working_day():
    calendar = WorkingCalendar((0, 1, 2, 3, 4), (dt.date(2025, 9, 8),))  # a Monday holiday
    saturday = dt.datetime(2025, 9, 6, 10, 0, tzinfo=UTC)
    sunday = dt.datetime(2025, 9, 7, 23, 30, tzinfo=UTC)
    holiday = dt.datetime(2025, 9, 8, 9, 0, tzinfo=UTC)
    # working days after: Tue 9 (1) ... Mon 15 (5), Tue 16 (6), Wed 17 (7)
    assert calendar.add_working_days(saturday, 7) == at("2025-09-17 10:00")
    assert calendar.add_working_days(sunday, 7) == at("2025-09-17 23:30")
    assert calendar.add_working_days(holiday, 7) == at("2025-09-17 09:00")
    assert calendar.add_working_days(holiday, 1) == at("2025-09-09 09:00")


def test_configured_calendar_and_end_of_day(config):
    calendar = WorkingCalendar.from_config(config)
    friday = dt.datetime(2025, 9, 26, 16, 0, tzinfo=UTC)  # 2025-10-01 is a configured holiday
    assert calendar.add_working_days(friday, 7) == at("2025-10-08 16:00")
    assert calendar.add_working_days(friday, 7, end_of_day=True) == at("2025-10-09 00:00")
    naive = dt.datetime(2025, 9, 26, 16, 0)  # naive means UTC
    assert calendar.add_working_days(naive, 7) == at("2025-10-08 16:00")
    assert not calendar.is_working_day(dt.date(2025, 10, 1))
    assert not calendar.is_working_day(dt.date(2025, 9, 27))  # Saturday
    assert calendar.is_working_day(dt.datetime(2025, 9, 29, 23, 0, tzinfo=UTC))
    with pytest.raises(ValueError, match="at least 1"):
        calendar.add_working_days(friday, 0)


def test_end_of_day_matches_the_resolution_breach_feature(config):
    """The features count a breach from midnight after the Nth working day; so does end_of_day."""
    from features.definitions import working_day_deadlines

    p = config.policy
    calendar = WorkingCalendar.from_config(config)
    first, last = dt.date(2024, 12, 1), dt.date(2025, 1, 31)
    last_days = working_day_deadlines(
        first, last, p.complaint_resolution_working_days, p.working_days, p.holidays
    )
    days = pd.date_range(first, last, freq="D", tz="UTC") + pd.Timedelta(hours=13)
    ours = calendar.add_working_days_array(days, 7, end_of_day=True)
    expected = [at(str(last_days[d.date()])) + pd.Timedelta(days=1) for d in days]
    assert list(ours) == expected


def test_vectorised_calendar_equals_scalar_and_keeps_nat(config):
    calendar = WorkingCalendar.from_config(config)
    rng = np.random.default_rng(3)
    moments = at("2024-01-01") + pd.to_timedelta(rng.integers(0, 700 * 86400, 200), unit="s")
    column = pd.Series([*moments, pd.NaT])
    out = calendar.add_working_days_array(column, 7)
    assert pd.isna(out[-1])
    assert [calendar.add_working_days(m, 7) for m in moments] == list(out[:-1])


# -- complaint deadlines -----------------------------------------------------------------------
def test_complaint_deadlines(config):
    opened = dt.datetime(2025, 9, 5, 16, 0, tzinfo=UTC)
    d = complaint_deadlines(opened, config)
    assert d.first_response_due == at("2025-09-06 16:00")  # 24 h, weekend or not
    assert d.resolution_due == at("2025-09-16 16:00")
    assert d.feedback_due == at("2025-09-07 16:00")  # 48 h after opening
    column = complaint_deadlines(pd.Series([at("2025-09-05 16:00"), pd.NaT]), config)
    assert column.resolution_due[0] == d.resolution_due and pd.isna(column.resolution_due[1])
    end = complaint_deadlines(opened, with_policy(config, resolution_due="end_of_day"))
    assert end.resolution_due == at("2025-09-17 00:00")


# -- due tasks: tiny banks ---------------------------------------------------------------------
def frame(rows: list[dict], columns: dict[str, str]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=list(columns))
    for name, kind in columns.items():
        out[name] = pd.to_datetime(out[name], utc=True) if kind == "ts" else out[name].astype(kind)
    return out


def bank(customers=(), holdings=(), complaints=(), callbacks=()) -> dict[str, pd.DataFrame]:
    """Contract-shaped frames from a few rows (timestamps as ISO text, UTC)."""
    customers = [{"opened_at": "2020-01-01 09:00", "closed_at": None} | c for c in customers]
    return {
        "customers": frame(customers, {"customer_id": "str", "opened_at": "ts", "closed_at": "ts"}),
        "holdings": frame(
            list(holdings), {"customer_id": "str", "product_id": "str", "opened_at": "ts"}
        ),
        "complaints": frame(
            [{"first_response_at": None, "resolved_at": None} | c for c in complaints],
            {
                "complaint_id": "str",
                "customer_id": "str",
                "opened_at": "ts",
                "first_response_at": "ts",
                "resolved_at": "ts",
            },
        ),
        "callbacks": frame(
            [{"done_at": None, "outcome": None} | c for c in callbacks],
            {
                "customer_id": "str",
                "reason": "str",
                "due_at": "ts",
                "done_at": "ts",
                "outcome": "object",
            },
        ),
    }


def reached(customer: str, done: str, reason: str = "quarterly") -> dict:
    return {
        "customer_id": customer,
        "reason": reason,
        "due_at": done,
        "done_at": done,
        "outcome": "reached",
    }


def quiet(customer: str, on: str) -> dict:
    """A reached callback the day before `on`: no quarterly task for a while."""
    day = (pd.Timestamp(on) - pd.Timedelta(days=1)).strftime("%Y-%m-%d 12:00")
    return reached(customer, day)


def rules(tasks: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(tasks["customer_id"], tasks["rule"], strict=True))


def test_post_sale_due_seven_days_after_the_purchase(config):
    tables = bank(
        customers=[{"customer_id": "A"}],
        holdings=[{"customer_id": "A", "product_id": "P1", "opened_at": "2025-09-28 10:30"}],
        callbacks=[quiet("A", "2025-09-29")],
    )
    tasks = due_tasks(tables, dt.date(2025, 9, 29), config)
    assert list(tasks.columns) == list(TASK_COLUMNS)
    assert len(tasks) == 1
    task = tasks.iloc[0]
    assert (task.customer_id, task.rule, task.source_id) == ("A", "post_sale", "P1")
    assert task.deadline == at("2025-10-05 10:30")
    assert not task.overdue
    assert task.detail == "product opened 2025-09-28"
    later = due_tasks(tables, dt.date(2025, 10, 6), config)
    assert later.loc[later.rule == "post_sale", "overdue"].tolist() == [True]
    # the deadline day itself is not overdue yet
    assert not due_tasks(tables, dt.date(2025, 10, 5), config)["overdue"].any()


def test_post_sale_cleared_only_by_a_post_sale_callback_after_the_purchase(config):
    purchase = {"customer_id": "A", "product_id": "P1", "opened_at": "2025-09-28 10:30"}
    on = dt.date(2025, 10, 2)

    def post_sale_tasks(*callbacks):
        tables = bank([{"customer_id": "A"}], [purchase], callbacks=[quiet("A", "2025-10-02")])
        extra = bank(callbacks=callbacks)["callbacks"]
        tables["callbacks"] = pd.concat([tables["callbacks"], extra], ignore_index=True)
        tasks = due_tasks(tables, on, config)
        return len(tasks[tasks.rule == "post_sale"])

    assert post_sale_tasks() == 1
    assert post_sale_tasks(reached("A", "2025-09-30 11:00", "post_sale")) == 0
    assert post_sale_tasks(reached("A", "2025-09-27 11:00", "post_sale")) == 1  # before it
    assert post_sale_tasks(reached("A", "2025-10-02 08:00", "post_sale")) == 1  # on `on`
    assert post_sale_tasks(reached("A", "2025-09-30 11:00", "quarterly")) == 1  # other reason
    not_reached = {"customer_id": "A", "reason": "post_sale", "due_at": "2025-10-05 10:30"}
    assert post_sale_tasks(not_reached | {"outcome": "no_answer"}) == 1
    assert post_sale_tasks(not_reached | {"outcome": "holdout"}) == 0  # held out: not made


def test_post_sale_several_purchases_one_task_and_lapse(config):
    holdings = [
        {"customer_id": "A", "product_id": "P2", "opened_at": "2025-09-29 08:00"},
        {"customer_id": "A", "product_id": "P1", "opened_at": "2025-09-20 08:00"},
        {"customer_id": "B", "product_id": "P9", "opened_at": "2025-06-01 08:00"},  # 122 days
    ]
    customers = [{"customer_id": "A"}, {"customer_id": "B"}]
    quiet_rows = [quiet("A", "2025-10-01"), quiet("B", "2025-10-01")]
    tables = bank(customers, holdings, callbacks=quiet_rows)
    tasks = due_tasks(tables, dt.date(2025, 10, 1), config)
    assert rules(tasks) == [("A", "post_sale")]  # B's lapsed after 91 days
    task = tasks.iloc[0]
    assert (task.source_id, task.deadline, task.overdue) == ("P1", at("2025-09-27 08:00"), True)
    assert task.detail == "product opened 2025-09-20 (2 products awaiting a first callback)"
    never = due_tasks(tables, dt.date(2025, 10, 1), with_policy(config, post_sale_lapse_days=None))
    assert sorted(rules(never)) == [("A", "post_sale"), ("B", "post_sale")]


def test_quarterly_from_the_last_reached_callback(config):
    tables = bank(
        customers=[{"customer_id": "A"}],
        callbacks=[
            reached("A", "2025-03-01 09:00"),
            reached("A", "2025-06-01 10:00", "complaint"),  # any reached callback counts
            # an unanswered complaint call is no policy attempt: it does not close the cycle
            {"customer_id": "A", "reason": "complaint", "due_at": "2025-08-01 12:00"}
            | {"outcome": "no_answer"},
        ],
    )
    assert due_tasks(tables, dt.date(2025, 8, 30), config).empty
    due = due_tasks(tables, dt.date(2025, 8, 31), config)
    assert rules(due) == [("A", "quarterly")]
    assert due.iloc[0].deadline == at("2025-08-31 10:00")  # 91 days after 2025-06-01 10:00
    assert not due.iloc[0].overdue and pd.isna(due.iloc[0].source_id)
    assert due.iloc[0].detail == "last reached callback 2025-06-01"
    ahead = due_tasks(tables, dt.date(2025, 8, 30), config, horizon_days=1)
    assert ahead.iloc[0].deadline == due.iloc[0].deadline
    assert due_tasks(tables, dt.date(2025, 9, 1), config).iloc[0].overdue


def test_a_policy_call_tried_and_not_reached_closes_the_cycle(config):
    tried = {"customer_id": "A", "reason": "quarterly", "due_at": "2025-08-31 12:00"}
    tables = bank(
        customers=[{"customer_id": "A"}],
        callbacks=[reached("A", "2025-06-01 10:00"), tried | {"outcome": "no_answer"}],
    )
    # before the attempt is due the cycle is open; once it was tried the next one counts from it
    assert rules(due_tasks(tables, dt.date(2025, 8, 31), config)) == [("A", "quarterly")]
    assert due_tasks(tables, dt.date(2025, 9, 1), config).empty
    due = due_tasks(tables, dt.date(2025, 11, 30), config)
    assert due.iloc[0].deadline == at("2025-11-30 12:00")  # 91 days after the attempt
    assert due.iloc[0].detail == "last policy callback tried, not reached, due 2025-08-31"
    declined = bank(
        customers=[{"customer_id": "A"}],
        callbacks=[reached("A", "2025-06-01 10:00"), tried | {"outcome": "declined"}],
    )
    assert due_tasks(declined, dt.date(2025, 9, 1), config).empty


def test_quarterly_without_callbacks_counts_from_opening_and_holdout_settles(config):
    opening = {"customer_id": "A", "opened_at": "2025-01-10 09:00"}
    tables = bank(customers=[opening])
    due = due_tasks(tables, dt.date(2025, 4, 11), config)
    assert due.iloc[0].deadline == at("2025-04-11 09:00")
    assert due.iloc[0].detail == "no callback since the relationship began 2025-01-10"
    held = {"customer_id": "A", "reason": "quarterly", "due_at": "2025-04-14 12:00"}
    tables = bank(customers=[opening], callbacks=[held | {"outcome": "holdout"}])
    assert due_tasks(tables, dt.date(2025, 4, 11), config).empty  # known 7 days ahead
    later = due_tasks(tables, dt.date(2025, 7, 14), config)
    assert later.iloc[0].deadline == at("2025-07-14 12:00")
    assert later.iloc[0].detail == "last policy callback held out, due 2025-04-14"


def test_complaint_tasks(config):
    complaint = {"complaint_id": "K1", "customer_id": "A", "opened_at": "2025-09-30 14:02:31"}
    customers, calm = [{"customer_id": "A"}], [quiet("A", "2025-10-02")]
    on = dt.date(2025, 10, 2)
    tasks = due_tasks(bank(customers, complaints=[complaint], callbacks=calm), on, config)
    assert rules(tasks) == [("A", "complaint_response"), ("A", "complaint_resolution")]
    response, resolution = tasks.iloc[0], tasks.iloc[1]
    assert response.deadline == at("2025-10-01 14:02:31") and response.overdue
    assert response.detail == "complaint opened 2025-09-30 14:02, no first response"
    assert resolution.source_id == "K1" and not resolution.overdue
    # Tue 30 Sep + 7 working days, 1 Oct a holiday: Thu 2 ... Fri 10 Oct
    assert resolution.deadline == at("2025-10-10 14:02:31")
    assert resolution.deadline == complaint_deadlines(at("2025-09-30 14:02:31"), config)[1]
    assert resolution.detail == "complaint opened 2025-09-30 14:02, not resolved"

    answered = complaint | {"first_response_at": "2025-10-01 09:00"}
    tasks = due_tasks(bank(customers, complaints=[answered], callbacks=calm), on, config)
    assert rules(tasks) == [("A", "complaint_resolution")]
    on_the_day = complaint | {"first_response_at": "2025-10-02 09:00"}  # on `on`: not yet
    tasks = due_tasks(bank(customers, complaints=[on_the_day], callbacks=calm), on, config)
    assert len(tasks) == 2
    done = answered | {"resolved_at": "2025-10-01 17:00"}
    assert due_tasks(bank(customers, complaints=[done], callbacks=calm), on, config).empty


def test_closed_new_and_future_customers_get_nothing(config):
    on = dt.date(2025, 10, 2)
    customers = [
        {"customer_id": "closed", "closed_at": "2025-09-30 10:00"},
        {"customer_id": "closing", "closed_at": "2025-10-02 10:00"},  # still open at `on`
        {"customer_id": "new", "opened_at": "2025-10-02 00:00"},  # opened on `on`
    ]
    holdings = [
        {"customer_id": c, "product_id": "P", "opened_at": "2025-09-29 10:00"}
        for c in ("closed", "closing")
    ] + [{"customer_id": "new", "product_id": "P", "opened_at": "2025-10-02 00:00"}]
    complaints = [
        {"complaint_id": f"K-{c}", "customer_id": c, "opened_at": "2025-09-29 10:00"}
        for c in ("closed", "closing")
    ]
    tasks = due_tasks(bank(customers, holdings, complaints), on, config)
    assert set(tasks["customer_id"]) == {"closing"}
    assert set(tasks["rule"]) == set(CALLBACK_RULES)


def test_event_on_the_day_does_not_count(config):
    on = dt.date(2025, 10, 2)
    tables = bank(
        customers=[{"customer_id": "A"}],
        holdings=[{"customer_id": "A", "product_id": "P", "opened_at": "2025-10-02 00:00"}],
        complaints=[{"complaint_id": "K", "customer_id": "A", "opened_at": "2025-10-02 00:01"}],
        callbacks=[quiet("A", "2025-10-02")],
    )
    assert due_tasks(tables, on, config).empty
    assert len(due_tasks(tables, on + dt.timedelta(days=1), config)) == 3


def test_inputs_are_checked(config):
    tables = bank(customers=[{"customer_id": "A"}])
    with pytest.raises(ValueError, match=r"missing table\(s\) \['holdings'\]"):
        due_tasks({k: v for k, v in tables.items() if k != "holdings"}, dt.date(2025, 1, 1), config)
    tables["callbacks"] = tables["callbacks"].drop(columns=["outcome"])
    with pytest.raises(ValueError, match=r"table callbacks lacks column\(s\) \['outcome'\]"):
        due_tasks(tables, dt.date(2025, 1, 1), config)
    with pytest.raises(TypeError, match="must be a date"):
        due_tasks(tables, dt.datetime(2025, 1, 1), config)


# -- the demo bank -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_tables(small_bank) -> dict[str, pd.DataFrame]:
    return {
        name: pd.read_parquet(small_bank / f"{name}.parquet")
        for name in ("customers", "holdings", "complaints", "callbacks")
    }


def test_small_bank_tasks_are_plausible(config, small_bank, demo_tables):
    on = dt.date(2025, 9, 15)
    start = at("2025-09-15")
    tasks = due_tasks(demo_tables, on, config)
    assert tasks.equals(due_tasks_from_folder(small_bank, on, config))
    assert set(tasks["rule"]) <= set(CALLBACK_RULES)
    assert tasks["deadline"].is_monotonic_increasing
    counts = tasks["rule"].value_counts()
    customers = demo_tables["customers"]
    live = customers[
        (customers.opened_at < start)
        & (customers.closed_at.isna() | (customers.closed_at >= start))
    ]
    assert set(tasks["customer_id"]) <= set(live["customer_id"])
    # about 1/91 of the book falls due each day, plus the cycles overdue since
    assert 0.005 * len(live) < counts["quarterly"] < 0.1 * len(live)
    assert 0 < counts["post_sale"] < 0.1 * len(live)
    assert tasks["overdue"].equals(tasks["deadline"] < start)
    # every complaint task's complaint is open at `on`
    complaints = demo_tables["complaints"].set_index("complaint_id")
    resolution = complaints.loc[tasks.loc[tasks.rule == "complaint_resolution", "source_id"]]
    assert len(resolution) > 0
    assert (resolution.opened_at < start).all()
    assert (resolution.resolved_at.isna() | (resolution.resolved_at >= start)).all()
    response = complaints.loc[tasks.loc[tasks.rule == "complaint_response", "source_id"]]
    assert (response.first_response_at.isna() | (response.first_response_at >= start)).all()
    # ... and every complaint open at `on` has its resolution task
    open_ = complaints[
        (complaints.opened_at < start)
        & (complaints.resolved_at.isna() | (complaints.resolved_at >= start))
        & complaints.customer_id.isin(live.customer_id)
    ]
    assert set(open_.index) == set(resolution.index)
    # post-sale tasks point at the customer's own recent purchase
    holdings = demo_tables["holdings"].set_index(["customer_id", "product_id"])
    post = tasks[tasks.rule == "post_sale"]
    bought = holdings.loc[list(zip(post.customer_id, post.source_id, strict=True)), "opened_at"]
    assert (bought < start).all() and (bought > start - pd.Timedelta(days=91)).all()
    # no PII in the details
    names = set(customers["name"].dropna()) | set(customers["phone"].dropna())
    assert not any(n in d for d in tasks["detail"] for n in list(names)[:200])


def test_small_bank_held_out_calls_are_not_given(config, demo_tables):
    """A purchase whose post-sale callback the demo held out never gets a post-sale task."""
    callbacks, holdings = demo_tables["callbacks"], demo_tables["holdings"]
    held = callbacks[(callbacks.outcome == "holdout") & (callbacks.reason == "post_sale")]
    pairs = held.merge(holdings, on="customer_id")
    window = (pairs.due_at > pairs.opened_at) & (
        pairs.due_at <= pairs.opened_at + pd.Timedelta(days=8)
    )
    pairs = pairs[window]
    checked = 0
    for on in pd.date_range("2024-06-03", "2025-11-03", freq="61D"):
        tasks = due_tasks(demo_tables, on.date(), config)
        post = tasks[tasks.rule == "post_sale"]
        recent = pairs[pairs.opened_at < on.tz_localize("UTC")]
        hit = post.merge(
            recent, left_on=["customer_id", "source_id"], right_on=["customer_id", "product_id"]
        )
        assert hit.empty
        checked += len(recent)
    assert checked > 0


def test_first_task_per_customer(config):
    complaint = {"complaint_id": "K1", "customer_id": "A", "opened_at": "2025-09-30 14:02"}
    tables = bank([{"customer_id": "A"}, {"customer_id": "B"}], complaints=[complaint])
    tasks = due_tasks(tables, dt.date(2025, 10, 2), config)
    first = first_task_per_customer(tasks)
    assert first.loc["A", "rule"] == "quarterly"  # from 2020: the oldest deadline
    assert first.loc["A", "rules"] == "quarterly,complaint_response,complaint_resolution"
    assert first.loc["A", "task_count"] == 3 and first.loc["B", "task_count"] == 1


def test_naive_and_zoned_timestamps_mean_the_same_moment(config):
    tables = bank(
        customers=[{"customer_id": "A"}],
        complaints=[{"complaint_id": "K", "customer_id": "A", "opened_at": "2025-09-30 23:30"}],
    )
    on = dt.date(2025, 10, 2)
    expected = due_tasks(tables, on, config)
    naive = {k: v.copy() for k, v in tables.items()}
    naive["complaints"]["opened_at"] = naive["complaints"]["opened_at"].dt.tz_localize(None)
    naive["customers"]["closed_at"] = pd.Series([None], dtype=object)  # all null, untyped
    assert due_tasks(naive, on, config).equals(expected)
    zoned = {k: v.copy() for k, v in tables.items()}
    zoned["complaints"]["opened_at"] = zoned["complaints"]["opened_at"].dt.tz_convert("Asia/Tokyo")
    assert due_tasks(zoned, on, config).equals(expected)
    assert expected.loc[expected.rule == "complaint_response", "deadline"].tolist() == [
        at("2025-10-01 23:30")
    ]
