"""The KPI report's numbers (`reporting.kpi.compute`): hand-built tables with fixed dates and
hand-computed
golden values for every KPI, the prior-period comparison, list completion from list files and
recorded outcomes, the splits by branch, RM and segment, and the errors."""

from __future__ import annotations

import datetime as dt
import json
import math

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from keepwell.workspace import Workspace
from reporting.kpi.compute import compute_kpis
from reporting.kpi.inputs import load_kpi_inputs, read_lists
from reporting.kpi.model import METRICS, KpiError, prior_period
from serving.records.outcomes import OutcomeStore, task_id

JUNE, JULY, MAY = dt.date(2025, 6, 1), dt.date(2025, 7, 1), dt.date(2025, 5, 1)


def ts(text: str | None) -> pd.Timestamp:
    return pd.NaT if text is None else pd.Timestamp(text, tz="UTC")


def customers(n: int = 4, **extra: list) -> pd.DataFrame:
    """n long-standing customers C0..; RM1/BR1/retail for even ids, RM2/BR2/hnw for odd."""
    rows = {
        "customer_id": [f"C{i}" for i in range(n)],
        "segment": ["retail" if i % 2 == 0 else "hnw" for i in range(n)],
        "rm_id": ["RM1" if i % 2 == 0 else "RM2" for i in range(n)],
        "branch_id": ["BR1" if i % 2 == 0 else "BR2" for i in range(n)],
        "opened_at": [ts("2020-01-01")] * n,
        "closed_at": pd.Series([pd.NaT] * n, dtype="datetime64[us, UTC]"),
        "name": [f"Secret Person{i}" for i in range(n)],
        "phone": [f"+44 7700 9001{i:02d}" for i in range(n)],
    }
    frame = pd.DataFrame(rows)
    for column, values in extra.items():
        frame[column] = values
    return frame


def complaints(rows: list[tuple]) -> pd.DataFrame:
    """(customer_id, opened_at, first_response_at, resolved_at) rows."""
    frame = pd.DataFrame(
        [(f"CP{i}", c, ts(o), ts(f), ts(r)) for i, (c, o, f, r) in enumerate(rows)],
        columns=["complaint_id", "customer_id", "opened_at", "first_response_at", "resolved_at"],
    )
    frame["category"], frame["severity"] = "service", "low"
    return frame


def callbacks(rows: list[tuple]) -> pd.DataFrame:
    """(customer_id, reason, due_at, done_at, outcome, satisfaction) rows."""
    frame = pd.DataFrame(
        [(f"CB{i}", c, r, ts(d), ts(x), o, s) for i, (c, r, d, x, o, s) in enumerate(rows)],
        columns=["callback_id", "customer_id", "reason", "due_at", "done_at", "outcome",
                 "satisfaction"],
    )  # fmt: skip
    frame["satisfaction"] = frame["satisfaction"].astype("Int8")
    return frame


# an early callback so that the data begin before the prior period (May) of June
EARLY = ("C0", "quarterly", "2025-04-01 12:00", "2025-04-01 13:00", "reached", None)


JUNE_COMPLAINT = ("C0", "2025-06-10 09:00", "2025-06-10 10:00", "2025-06-11 09:00")


def tables(cust=None, comp=None, cb=None) -> dict[str, pd.DataFrame]:
    return {
        "customers": customers() if cust is None else cust,
        "complaints": complaints(comp or []),
        "callbacks": callbacks([EARLY, *(cb or [])]),
    }


def kpis(tabs, start=JUNE, end=JULY, config=None, **kw):
    return compute_kpis(tabs, start, end, config, **kw)


def test_first_response_within_24_hours(config):
    comp = [
        ("C0", "2025-06-02 09:00", "2025-06-02 10:00", "2025-06-03 09:00"),  # 1 h
        ("C1", "2025-06-03 09:00", "2025-06-04 08:00", "2025-06-04 09:00"),  # 23 h
        ("C2", "2025-06-04 09:00", "2025-06-05 09:00", "2025-06-06 09:00"),  # 24 h exactly
        ("C3", "2025-06-05 09:00", "2025-06-06 10:00", "2025-06-06 11:00"),  # 25 h: breach
        ("C0", "2025-05-20 09:00", "2025-05-23 09:00", "2025-05-23 10:00"),  # May: not June's
    ]
    m = kpis(tables(comp=comp), config=config).overall["complaint_first_response"]
    assert (m.numerator, m.denominator, m.excluded) == (3, 4, 0)
    assert m.value == 0.75 and m.target == 0.95 and m.met is False


def test_resolution_deadline_counts_working_days_skipping_weekends_and_holidays(config):
    # Friday 2025-06-06 10:00; Monday 9 June a configured holiday: the 7th working day after
    # the Friday is Wednesday 18 June (Tue 10 .. Fri 13, Mon 16, Tue 17, Wed 18), 10:00
    holidays = (*config.policy.holidays, dt.date(2025, 6, 9))
    with_holiday = config.model_copy(
        update={"policy": config.policy.model_copy(update={"holidays": holidays})}
    )
    comp = [
        ("C0", "2025-06-06 10:00", "2025-06-06 11:00", "2025-06-18 10:00"),  # on the deadline
        ("C1", "2025-06-06 10:00", "2025-06-06 11:00", "2025-06-18 11:00"),  # one hour late
    ]
    m = kpis(tables(comp=comp), config=with_holiday).overall["complaint_resolution"]
    assert (m.numerator, m.denominator) == (1, 2)
    # without the holiday the deadline is Tuesday 17 June 10:00: both are late
    plain = kpis(tables(comp=comp), config=config).overall["complaint_resolution"]
    assert (plain.numerator, plain.denominator) == (0, 2)


def test_unanswered_complaints_breach_after_their_deadline_and_are_excluded_before(config):
    comp = [
        # no response, no resolution: response due 20 June 09:00, before the data's end
        ("C0", "2025-06-19 09:00", None, None),
        # opened an hour before the data's end: both deadlines still ahead
        ("C1", "2025-06-20 11:00", None, None),
        # answered, resolved in time
        ("C2", "2025-06-16 09:00", "2025-06-16 12:00", "2025-06-17 09:00"),
    ]
    report = kpis(tables(comp=comp), config=config, data_end=dt.datetime(2025, 6, 20, 12))
    first, resolution = (report.overall[n] for n in ("complaint_first_response",
                                                     "complaint_resolution"))  # fmt: skip
    assert (first.numerator, first.denominator, first.excluded) == (1, 2, 1)
    assert (resolution.numerator, resolution.denominator, resolution.excluded) == (1, 1, 2)
    assert any("2 unresolved complaint(s) still within" in n for n in report.notes)
    # a month after, both unanswered complaints are breaches
    later = kpis(tables(comp=comp), config=config, data_end=dt.datetime(2025, 7, 20))
    assert later.overall["complaint_first_response"].denominator == 3
    assert later.overall["complaint_resolution"].excluded == 0


def test_callback_completion_excludes_holdout_and_not_yet_due(config):
    cb = [
        ("C0", "quarterly", "2025-06-02 12:00", "2025-06-02 15:00", "reached", 5),
        ("C1", "post_sale", "2025-06-03 12:00", None, "declined", None),  # done: declined
        ("C2", "complaint", "2025-06-04 12:00", None, "no_answer", None),
        ("C3", "risk", "2025-06-05 12:00", "2025-06-04 10:00", "reached", 4),  # done early
        ("C0", "quarterly", "2025-06-06 12:00", None, "holdout", None),  # held out: excluded
        ("C1", "quarterly", "2025-06-10 12:00", None, None, None),  # overdue, no outcome: miss
        ("C2", "quarterly", "2025-06-25 12:00", None, None, None),  # due after the data's end
        ("C3", "quarterly", "2025-05-30 12:00", "2025-05-30 13:00", "reached", 2),  # May
        ("C0", "quarterly", "2025-05-28 12:00", "2025-06-03 13:00", "reached", 3),  # done June
        ("C1", "quarterly", "2025-06-07 12:00", "2025-06-07 13:00", "reached", 4),
    ]
    report = kpis(tables(cb=cb), config=config, data_end=dt.datetime(2025, 6, 20))
    m = report.overall["callback_completion"]
    assert (m.numerator, m.denominator, m.excluded) == (4, 6, 1)
    assert m.value == pytest.approx(4 / 6) and m.met is False
    # satisfaction: surveys done in June scoring 5, 4, 3, 4 (satisfied from 4): 3 of 4
    s = report.overall["satisfaction"]
    assert (s.numerator, s.denominator, s.value, s.target) == (3, 4, 0.75, 0.90)
    assert any("1 held-out callback(s)" in n for n in report.notes)
    assert any("1 callback(s) due before the data's end have no outcome" in n
               for n in report.notes)  # fmt: skip


def rates_bank() -> dict[str, pd.DataFrame]:
    """May: 20 active at its start (C0..C19), C19 closes in May, C0 and C1 complain.
    June: 19 + 6 opened in May = 25 active, C18 closes, C0, C1, C2 and C21 complain."""
    cust = customers(27)
    cust.loc[20, "closed_at"] = ts("2025-04-10")  # gone before May
    cust.loc[19, "closed_at"] = ts("2025-05-20")
    cust.loc[18, "closed_at"] = ts("2025-06-30 23:00")
    cust.loc[21:26, "opened_at"] = ts("2025-05-15")
    comp = [
        ("C0", "2025-05-02 09:00", "2025-05-02 10:00", "2025-05-03 09:00"),
        ("C0", "2025-05-12 09:00", "2025-05-12 10:00", "2025-05-13 09:00"),
        ("C1", "2025-05-22 09:00", "2025-05-22 10:00", "2025-05-23 09:00"),
        ("C0", "2025-06-02 09:00", "2025-06-02 10:00", "2025-06-03 09:00"),
        ("C1", "2025-06-03 09:00", "2025-06-03 10:00", "2025-06-04 09:00"),
        ("C2", "2025-06-04 09:00", "2025-06-04 10:00", "2025-06-05 09:00"),
        ("C2", "2025-06-24 09:00", "2025-06-24 10:00", "2025-06-25 09:00"),
        ("C21", "2025-06-05 09:00", "2025-06-05 10:00", "2025-06-06 09:00"),
    ]
    return tables(cust=cust, comp=comp)


def test_complaint_and_churn_rates_against_the_prior_period(config):
    report = kpis(rates_bank(), config=config)
    assert report.prior == (MAY, JUNE) and report.prior_by_month
    churn = report.overall["churn_rate"]
    assert (churn.numerator, churn.denominator) == (1, 25)
    assert (churn.prior.numerator, churn.prior.denominator) == (1, 20)
    assert churn.change == pytest.approx(-0.20)  # 0.04 against 0.05: exactly the target
    assert churn.target == -0.20 and churn.met is True
    comp = report.overall["complaint_rate"]
    assert (comp.numerator, comp.denominator, comp.prior.numerator) == (4, 25, 2)
    assert comp.change == pytest.approx((0.16 - 0.10) / 0.10) and comp.met is False
    june = report.monthly["churn_rate"][0]  # month by month: June against May
    assert june.prior.denominator == 20 and june.met is True
    doc = report.to_dict()
    assert doc["prior_period"] == {"from": "2025-05-01", "to": "2025-06-01",
                                   "month_by_month": True}  # fmt: skip
    assert doc["kpis"]["churn_rate"]["prior"] == {"numerator": 1, "denominator": 20,
                                                  "value": 0.05}  # fmt: skip


def test_no_prior_period_when_the_data_begin_after_it(config):
    report = kpis(rates_bank(), start=MAY, end=JULY, config=config)  # prior: March and April
    assert report.prior is None
    churn = report.overall["churn_rate"]
    assert (churn.numerator, churn.denominator) == (2, 45)  # pooled over May and June
    assert churn.prior is None and churn.change is None and churn.met is None
    assert any(n.startswith("No prior period") for n in report.notes)
    assert report.to_dict()["prior_period"] is None


def test_months_without_data_count_no_one_in_the_rates(config):
    # the data end 30 June 23:00 (C18 closes): July and August count no active customers, or
    # their empty months would dilute the rates
    report = kpis(rates_bank(), start=JUNE, end=dt.date(2025, 9, 1), config=config)
    churn = report.overall["churn_rate"]
    assert (churn.numerator, churn.denominator) == (1, 25)
    assert [m.denominator for m in report.monthly["churn_rate"]] == [25, 0, 0]
    assert report.monthly["complaint_rate"][1].value is None
    assert any("later months are partial or empty" in n for n in report.notes)


def test_prior_period_is_whole_months_or_the_same_number_of_days():
    assert prior_period(dt.date(2025, 1, 1), dt.date(2026, 1, 1)) == (
        dt.date(2024, 1, 1), dt.date(2025, 1, 1), True)  # fmt: skip
    assert prior_period(dt.date(2025, 3, 1), dt.date(2025, 5, 1))[0] == dt.date(2025, 1, 1)
    assert prior_period(dt.date(2025, 3, 10), dt.date(2025, 3, 20)) == (
        dt.date(2025, 2, 28), dt.date(2025, 3, 10), False)  # fmt: skip


def test_breakdowns_sum_to_the_overall_counts(small_bank, config):
    ws = Workspace.open(small_bank.parent / "no-workspace", config)
    start, end = dt.date(2025, 1, 1), dt.date(2025, 7, 1)
    inputs = load_kpi_inputs(small_bank, ws, start, end, config)
    report = compute_kpis(inputs.tables, start, end, config)
    assert len(report.months) == 6 and report.prior is not None
    for name in METRICS:
        overall = report.overall[name]
        assert overall.denominator > 0 or name == "list_completion"
        for dim, groups in report.breakdowns.items():
            assert len(groups) > (dim != "branch"), dim  # the small bank has one branch
            for part in ("numerator", "denominator", "excluded"):
                total = sum(getattr(g.period[name], part) for g in groups)
                assert total == getattr(overall, part), (name, dim, part)
                for i, month in enumerate(report.monthly[name]):
                    in_month = sum(getattr(g.monthly[name][i], part) for g in groups)
                    assert in_month == getattr(month, part), (name, dim, part, i)
            if name in ("complaint_rate", "churn_rate"):
                old = sum(g.period[name].prior.numerator for g in groups)
                assert old == overall.prior.numerator
    # the monthly series pool to the period
    for name in METRICS:
        assert sum(m.denominator for m in report.monthly[name]) == report.overall[name].denominator
    json.dumps(report.to_dict(), allow_nan=False)  # no NaN or infinity anywhere


# -- list completion -------------------------------------------------------------------------
LIST_COLUMNS_IN_ORDER = [
    "rank", "task_id", "list_date", "rm_id", "branch_id", "customer_id", "phone_masked",
    "segment", "rule", "rules", "deadline", "overdue", "carried_from", "channel", "special_care",
    "value_tier", "risk_tier", "churn_probability", "complaint_probability", "value_at_risk",
    "action", "reasons", "detail", "model_versions",
]  # fmt: skip


def write_list(folder, day: dt.date, rm_id: str, branch_id: str, rows: list[tuple[str, str]]):
    """One RM's list file as `keepwell plan` writes it; rows: (customer_id, segment)."""
    frame = pd.DataFrame({
        "rank": range(1, len(rows) + 1),
        "task_id": [task_id(day, c) for c, _ in rows],
        "list_date": [day] * len(rows), "rm_id": rm_id, "branch_id": branch_id,
        "customer_id": [c for c, _ in rows], "phone_masked": "***01",
        "segment": [s for _, s in rows], "rule": "risk", "rules": "risk",
        "deadline": ts(f"{day} 17:00"), "overdue": False, "carried_from": None,
        "channel": "rm_call", "special_care": False, "value_tier": "Priority",
        "risk_tier": "High", "churn_probability": 0.3, "complaint_probability": 0.1,
        "value_at_risk": 4.2, "action": "call", "reasons": "fewer transactions", "detail": None,
        "model_versions": "churn:1,complaint:1",
    })[LIST_COLUMNS_IN_ORDER]  # fmt: skip
    target = folder / day.isoformat() / f"{rm_id}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), target)


def bank_and_workspace(tmp_path, config):
    """A bank folder of six customers and a June complaint, a workspace and its lists folder."""
    bank = tmp_path / "bank"
    bank.mkdir()
    for name, frame in tables(cust=customers(6), comp=[JUNE_COMPLAINT]).items():
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), bank / f"{name}.parquet")
    ws = Workspace.open(tmp_path / "ws", config)
    return bank, ws, ws.path(config.paths.lists)


@pytest.fixture
def listed(tmp_path, config):
    """A bank folder, a workspace with two days of lists and the RM page's outcomes."""
    bank, ws, lists = bank_and_workspace(tmp_path, config)
    d1, d2 = dt.date(2025, 6, 2), dt.date(2025, 6, 3)
    write_list(lists, d1, "RM1", "BR1", [("C0", "retail"), ("C2", "retail"), ("C4", "retail")])
    write_list(lists, d1, "RM2", "BR2", [("C1", "hnw"), ("C3", "hnw")])
    write_list(lists, d2, "RM1", "BR1", [("C0", "retail")])
    write_list(lists, dt.date(2025, 7, 1), "RM1", "BR1", [("C2", "retail")])  # after the period
    # other files of a day folder are not lists: found through summary.json's rm_load (d1) or,
    # without a summary (d2), by their columns
    mix = pa.table({"rm_id": ["RM1"], "value_tier": ["VIP"], "risk_tier": ["High"],
                    "customers": [3]})  # fmt: skip
    pq.write_table(mix, lists / d1.isoformat() / "book_mix.parquet")
    load = [{"rm_id": rm, "branch_id": br, "capacity": 10, "tasks": n}
            for rm, br, n in (("RM1", "BR1", 3), ("RM2", "BR2", 2), ("RM3", "BR1", 0))]  # fmt: skip
    summary = {"date": d1.isoformat(), "tasks": 5, "rm_load": load}
    (lists / d1.isoformat() / "summary.json").write_text(json.dumps(summary))
    deferred = {"task_id": [task_id(d2, "C5")], "list_date": [d2], "rm_id": ["RM2"],
                "branch_id": ["BR2"], "segment": ["hnw"], "customer_id": ["C5"]}  # fmt: skip
    pq.write_table(pa.table(deferred), lists / d2.isoformat() / "deferred.parquet")
    store = OutcomeStore(ws.path(config.paths.outcomes))
    recorded = [
        (d1, "C0", "RM1", "reached"),
        (d1, "C2", "RM1", "no_answer"),
        (d1, "C4", "RM1", "no_answer"),
        (d1, "C4", "RM1", "reached"),  # a later correction wins: done
        (d1, "C1", "RM2", "reached"),
        (d1, "C1", "RM2", "no_answer"),  # a later correction wins: not done
        (d1, "C3", "RM2", "declined"),
        # d2's C0 task: nothing recorded
    ]
    for day, customer, rm, outcome in recorded:
        store.record(task_id(day, customer), rm_id=rm, rule="risk", outcome=outcome,
                     recorded_by="key-test")  # fmt: skip
    store.close()
    return bank, ws


def test_list_completion_from_list_files_and_latest_outcomes(listed, config):
    bank, ws = listed
    inputs = load_kpi_inputs(bank, ws, JUNE, JULY, config)
    assert len(inputs.lists) == 6  # book_mix, deferred and July's list hold no tasks
    report = compute_kpis(inputs.tables, JUNE, JULY, config, lists=inputs.lists,
                          outcomes=inputs.outcomes)  # fmt: skip
    m = report.overall["list_completion"]
    assert (m.numerator, m.denominator, m.value, m.met) == (3, 6, 0.5, False)
    by_rm = {g.group: g.period["list_completion"] for g in report.breakdowns["rm"]}
    assert (by_rm["RM1"].numerator, by_rm["RM1"].denominator) == (2, 4)
    assert (by_rm["RM2"].numerator, by_rm["RM2"].denominator) == (1, 2)
    by_segment = {g.group: g.period["list_completion"] for g in report.breakdowns["segment"]}
    assert (by_segment["hnw"].numerator, by_segment["hnw"].denominator) == (1, 2)
    assert report.lists == {"available": True, "list_dates": 2, "tasks": 6}
    assert not any("No daily lists" in n for n in report.notes)


def test_a_task_listed_again_until_done_counts_once(tmp_path, config):
    """C0's risk task is carried for three days and reached on the third: one task done. C2 is
    listed again after more than `planner.carry_over_days`: two tasks, neither done."""
    bank, ws, lists = bank_and_workspace(tmp_path, config)
    d1, d2, d3 = dt.date(2025, 6, 2), dt.date(2025, 6, 3), dt.date(2025, 6, 4)
    late = d1 + dt.timedelta(days=config.planner.carry_over_days + 1)
    write_list(lists, d1, "RM1", "BR1", [("C0", "retail"), ("C2", "retail")])
    write_list(lists, d2, "RM1", "BR1", [("C0", "retail")])
    write_list(lists, d3, "RM1", "BR1", [("C0", "retail")])
    write_list(lists, late, "RM1", "BR1", [("C2", "retail")])
    store = OutcomeStore(ws.path(config.paths.outcomes))
    for day, customer, outcome in ((d1, "C0", "no_answer"), (d3, "C0", "reached"),
                                   (d1, "C2", "no_answer")):  # fmt: skip
        store.record(task_id(day, customer), rm_id="RM1", rule="risk", outcome=outcome,
                     recorded_by="key-test")  # fmt: skip
    store.close()
    inputs = load_kpi_inputs(bank, ws, JUNE, JULY, config)
    assert len(inputs.lists) == 5
    report = compute_kpis(inputs.tables, JUNE, JULY, config, lists=inputs.lists,
                          outcomes=inputs.outcomes)  # fmt: skip
    m = report.overall["list_completion"]
    assert (m.numerator, m.denominator) == (1, 3)


def test_no_lists_is_said_not_an_error(tmp_path, config):
    assert read_lists(tmp_path / "lists", JUNE, JULY) is None
    report = kpis(tables(comp=[JUNE_COMPLAINT]), config=config)
    m = report.overall["list_completion"]
    assert (m.denominator, m.value, m.met) == (0, None, None)
    assert report.lists["available"] is False
    assert any("No daily lists" in n for n in report.notes)
    assert report.to_dict()["kpis"]["list_completion"]["value"] is None


# -- errors ----------------------------------------------------------------------------------
def test_errors_name_the_period_table_or_column(config):
    good = tables(comp=[("C0", "2025-06-02 09:00", None, None)])
    with pytest.raises(KpiError, match="2025-07-01 must be before to 2025-06-01"):
        kpis(good, start=JULY, end=JUNE, config=config)
    with pytest.raises(KpiError, match=r"has no data: the data cover 2025-04-01 to 2025-06-02"):
        kpis(good, start=dt.date(2023, 1, 1), end=dt.date(2024, 1, 1), config=config)
    with pytest.raises(KpiError, match=r"missing table\(s\) \['callbacks'\]"):
        kpis({k: v for k, v in good.items() if k != "callbacks"}, config=config)
    with pytest.raises(KpiError, match=r"table complaints lacks column\(s\) \['resolved_at'\]"):
        kpis({**good, "complaints": good["complaints"].drop(columns="resolved_at")},
             config=config)  # fmt: skip
    text_dates = good["callbacks"].assign(due_at=good["callbacks"]["due_at"].astype(str))
    with pytest.raises(KpiError, match=r"callbacks\.due_at must be a timestamp"):
        kpis({**good, "callbacks": text_dates}, config=config)
    words = good["callbacks"].assign(satisfaction="happy")
    with pytest.raises(KpiError, match=r"callbacks\.satisfaction must be a number"):
        kpis({**good, "callbacks": words}, config=config)
    twice = pd.concat([good["customers"], good["customers"].head(1)])
    with pytest.raises(
        KpiError, match=r"customers.customer_id has duplicate values, e.g. \['C0'\]"
    ):
        kpis({**good, "customers": twice}, config=config)


def test_unknown_customers_count_overall_and_under_unknown(config):
    comp = [("C0", "2025-06-02 09:00", "2025-06-02 10:00", None),
            ("C99", "2025-06-03 09:00", "2025-06-05 10:00", None)]  # fmt: skip
    report = kpis(tables(comp=comp), config=config)
    m = report.overall["complaint_first_response"]
    assert (m.numerator, m.denominator) == (1, 2)
    unknown = [g for g in report.breakdowns["rm"] if g.group == "(unknown)"]
    assert unknown and unknown[0].period["complaint_first_response"].denominator == 1
    assert any("missing from the customers table" in n for n in report.notes)
    assert not math.isnan(report.overall["complaint_rate"].value)


def test_a_csv_folder_gives_the_same_kpis_as_the_frames(tmp_path, config):
    bank = rates_bank()
    for name, frame in bank.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    inputs = load_kpi_inputs(tmp_path, Workspace.open(tmp_path / "ws", config), JUNE, JULY, config)
    assert inputs.lists is None and inputs.outcomes is None
    from_csv = compute_kpis(inputs.tables, JUNE, JULY, config).to_dict()
    assert from_csv["kpis"] == kpis(bank, config=config).to_dict()["kpis"]
    assert from_csv["kpis"]["churn_rate"]["denominator"] == 25
    (tmp_path / "complaints.csv").unlink()
    with pytest.raises(KpiError, match=r"has no table\(s\) \['complaints'\]"):
        load_kpi_inputs(tmp_path, Workspace.open(tmp_path / "ws", config), JUNE, JULY, config)
