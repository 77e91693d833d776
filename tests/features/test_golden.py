"""Golden values on the hand-built five-customer bank (tests/features/fixtures.py).

Every expected number below was worked out from the fixture by hand (the reasoning is in the
comments), not by running the code. One test per feature family, plus the rows, the errors and
the labels.
"""

from __future__ import annotations

import datetime as dt
import math
import re

import pandas as pd
import pytest

from features.build import build_features
from features.definitions import default_spec
from features.labels import build_labels
from features.ranges import AsOfOutOfRange, data_range
from features.spec import FAMILIES, FeatureSpec, Skipped
from tests.features.fixtures import FIRST_EVENT, LAST_EVENT, T, bank_frames, connect, load


@pytest.fixture(scope="module")
def con():
    return connect()


@pytest.fixture(scope="module")
def tables(con):
    return load(con, bank_frames())


@pytest.fixture(scope="module")
def spec(config) -> FeatureSpec:
    return default_spec(config)


@pytest.fixture(scope="module")
def at_t(tables, spec, config) -> pd.DataFrame:
    out = build_features(tables, [T], spec, config).to_pandas()
    return out.set_index("customer_id").sort_index()


def check(frame: pd.DataFrame, expected: dict[str, dict[str, object]]) -> None:
    """expected[feature][customer] == value (None means null); floats to 1e-9 relative."""
    problems = []
    for feature, per_customer in expected.items():
        for cid, want in per_customer.items():
            got = frame.loc[cid, feature]
            if want is None:
                ok = got is None or pd.isna(got)
            elif isinstance(want, bool):
                ok = (not pd.isna(got)) and bool(got) is want
            elif isinstance(want, float):
                ok = (not pd.isna(got)) and math.isclose(float(got), want, rel_tol=1e-9)
            else:
                ok = (not pd.isna(got)) and got == want
            if not ok:
                problems.append(f"{feature}[{cid}] = {got!r}, expected {want!r}")
    assert not problems, "\n".join(problems)


def test_spec_covers_every_family_with_self_explaining_names(spec):
    assert len(spec) >= 40
    assert set(spec.by_family()) == set(FAMILIES)
    for f in spec:
        assert re.fullmatch(r"[a-z][a-z0-9_]+", f.name) and not re.fullmatch(r"f\d+", f.name)
        if f.window_days is not None:  # the window is in the name: txn_count_30d, ..._12m
            assert re.search(r"\d+[dm](_|$)", f.name), f.name
    assert spec["txn_count_30d"].sentence(2, 9) == (
        "2 transactions in the last 30 days, against 9 in the last 90 days"
    )
    assert spec["days_since_last_txn"].sentence(None) == "no transactions on record"


def test_rows_are_the_customers_that_exist_at_each_as_of(tables, spec, config):
    dates = [dt.date(2024, 5, 1), dt.date(2024, 6, 1), T]
    out = build_features(tables, dates, spec, config).to_pandas()
    rows = {d: sorted(out.loc[out.as_of == pd.Timestamp(d), "customer_id"]) for d in dates}
    # C3 opens 2024-05-20; C2 closes 2024-06-15; C4 closes after T; C9 is not a customer
    assert rows[dt.date(2024, 5, 1)] == ["C1", "C2", "C4", "C5"]
    assert rows[dt.date(2024, 6, 1)] == ["C1", "C2", "C3", "C4", "C5"]
    assert rows[T] == ["C1", "C3", "C4", "C5"]
    assert list(out.columns) == ["customer_id", "as_of", *spec.names]
    assert not out.duplicated(["customer_id", "as_of"]).any()


def test_many_snapshots_in_one_pass_equal_one_at_a_time(tables, spec, config, at_t):
    dates = [dt.date(2024, 4, 1), dt.date(2024, 6, 1), T]
    together = build_features(tables, dates, spec, config).to_pandas()
    alone = build_features(tables, dates, spec, config, snapshots_per_pass=1).to_pandas()
    key = ["as_of", "customer_id"]
    together = together.sort_values(key).reset_index(drop=True)
    alone = alone.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(together, alone)
    last = (
        together[together.as_of == pd.Timestamp(T)].set_index("customer_id").drop(columns="as_of")
    )
    pd.testing.assert_frame_equal(last, at_t.drop(columns="as_of"), check_like=True)


def test_activity(at_t):
    # C1 transactions before T: 07-01'23 (history), 01-02 (just outside 180 d), 01-03 00:00 in
    # 1000 branch (first instant of 180 d), 02-10 in 500 app, 02-20 in 400 app, 03-15 out 200
    # app, 04-02 00:00 out 50 web (first instant of 90 d), 05-20 out 300 branch, 06-30
    # 23:59:59 out 20 phone. The 07-01 00:00 one is at T: excluded.
    check(
        at_t,
        {
            "txn_count_30d": {"C1": 1, "C3": 2, "C4": 0, "C5": 0},
            "txn_count_90d": {"C1": 3, "C3": 2, "C4": 0},
            "txn_count_180d": {"C1": 7, "C3": 2, "C5": 0},
            "txn_amount_30d": {"C1": 20.0, "C3": 2100.0, "C4": 0.0},
            "txn_amount_90d": {"C1": 370.0, "C3": 2100.0},
            "txn_amount_180d": {"C1": 2470.0},  # 1000+500+400+200+50+300+20
            "inflow_amount_90d": {"C1": 0.0, "C3": 2000.0},
            "outflow_amount_90d": {"C1": 370.0, "C3": 100.0},
            "net_flow_90d": {"C1": -370.0, "C3": 1900.0},
            "outflow_share_90d": {"C1": 1.0, "C3": 100 / 2100, "C4": None},
            "avg_txn_amount_90d": {"C1": 370 / 3, "C3": 1050.0, "C4": None},
            # 06-30 -> 07-01 is 1 day; C3 06-20 -> 11; C5 2023-12-01 -> 213 (old history)
            "days_since_last_txn": {"C1": 1, "C3": 11, "C4": None, "C5": 213},
            "digital_txn_share_90d": {"C1": 1 / 3, "C3": 1.0, "C4": None},
            "distinct_channels_90d": {"C1": 3, "C3": 2, "C4": 0},  # web, branch, phone
            # C1 log-ins: 6 in [04-02, 06-01), 1 on 06-10; the 07-01 00:00 one is at T
            "login_count_30d": {"C1": 1, "C3": 2, "C4": 0},  # C3 06-01 00:00 counts
            "login_count_90d": {"C1": 7, "C3": 2},
            "days_since_last_login": {"C1": 21, "C3": 6, "C5": None},
        },
    )


def test_trend(at_t):
    check(
        at_t,
        {
            # (1/30) / (3/90) and (2/30) / (2/90)
            "txn_rate_30d_vs_90d": {"C1": 1.0, "C3": 3.0, "C4": None},
            # (20/30) / (370/90)
            "txn_amount_rate_30d_vs_90d": {"C1": (20 / 30) / (370 / 90), "C3": 3.0},
            # (3/90) / ((7-3)/90); C3 has nothing in the earlier 90 days
            "txn_rate_90d_vs_prior_90d": {"C1": 0.75, "C3": None},
            # (1/30) / (6/60)
            "login_rate_30d_vs_prior_60d": {"C1": 1 / 3, "C3": None},
            # 6 * 30/60 - 1 = 2; C3 has more now than before: 0
            "login_decline_30d": {"C1": 2.0, "C3": 0.0, "C4": 0.0},
            # latest reading before T is 06-01 (30000); month < 04-02 -> 04-01 (60000);
            # month < 01-03 -> 01-01 (100000); C5's old reading is 0: no change defined
            # closing balances: the level known 90 days before T is the close of March (80000)
            "aum_change_90d": {"C1": 30000 / 80000 - 1, "C3": None, "C4": 0.0, "C5": None},
            # C4 has readings from January only: its close was not known 180 days before T
            "aum_change_180d": {"C1": -0.7, "C4": None},
            # peak of 02-01..06-01 is 90000 (12-01 and 01-01 are before 01-03)
            "aum_drawdown_180d": {"C1": 1 - 30000 / 90000, "C3": 0.0, "C5": None},
        },
    )


def test_relationship(at_t):
    check(
        at_t,
        {
            "tenure_days": {
                "C1": (T - dt.date(2015, 3, 10)).days,
                "C3": (T - dt.date(2024, 5, 20)).days,
                "C4": (T - dt.date(2010, 1, 1)).days,
            },
            # C1: H1 deposit, H2 equity, H4 bond (closed exactly at T: still open at T);
            # H3 closed 05-15; H5 bought at T
            "active_product_count": {"C1": 3, "C3": 1, "C4": 0, "C5": 1},
            "product_type_count": {"C1": 3, "C3": 1, "C4": 0},
            "products_opened_90d": {"C1": 1, "C3": 1, "C5": 0},  # H4 06-15, H6 05-20
            "product_closures_90d": {"C1": 1, "C3": 0},  # H3; H4's closing at T is not before T
            # tolerance 2: H2 risk 4 and H4 risk 5 are unsuitable
            "unsuitable_product_count": {"C1": 2, "C3": 0, "C5": 0},
            "max_risk_gap": {"C1": 3, "C3": 0, "C4": 0, "C5": 0},  # C5: 2 - 3 floored at 0
        },
    )


def test_service(at_t):
    # C1: K1 Fri 04-26 15:00, answered after 25 h (breach), resolved Wed 05-08 12:00 - the
    # 7th working day after the weekend and the 05-01 holiday: on time. K2 06-10 unresolved:
    # 7th working day 06-19 ended before T -> resolution breach; high severity. K3 06-28 first
    # answered after T: due 06-29 10:00 < T -> response breach known; resolved after T -> open.
    # K4 06-30 fine. K5 opened at T: excluded. K6 12-20 is outside 180 d.
    check(
        at_t,
        {
            "complaint_count_30d": {"C1": 3, "C3": 1, "C4": 0, "C5": 0},
            "complaint_count_90d": {"C1": 4, "C5": 1},
            "complaint_count_180d": {"C1": 4, "C3": 1},
            "open_complaints": {"C1": 2, "C3": 0, "C5": 1},
            "complaint_response_breaches_180d": {"C1": 2, "C3": 0, "C5": 1},
            "complaint_resolution_breaches_180d": {"C1": 1, "C3": 0, "C5": 1},
            "complaint_sla_breaches_180d": {"C1": 3, "C3": 0, "C4": 0, "C5": 1},
            "high_severity_complaints_180d": {"C1": 1, "C5": 0},
            "days_since_last_complaint": {"C1": 1, "C3": 28, "C4": None, "C5": 31},
        },
    )


def test_care(at_t):
    # C1: CB1 post-sale due 06-22 never done; CB3 quarterly due 06-01 done only after T;
    # CB4 quarterly 03-01 held back (holdout); CB2 reached 03-07 (score 4); CB5 reached 06-11
    # (no score). C5's quarterly callback was due before the 180-day window.
    check(
        at_t,
        {
            "overdue_post_sale_callbacks_180d": {"C1": 1, "C3": 0},
            "overdue_quarterly_callbacks_180d": {"C1": 2, "C5": 0},
            "days_since_last_reached_callback": {"C1": 20, "C3": 37, "C5": None},
            "last_satisfaction_score": {"C1": 4.0, "C3": 5.0, "C4": None},
            "holdout_callbacks_180d": {"C1": 1, "C3": 0},
            "reached_callbacks_180d": {"C1": 2, "C3": 1, "C5": 0},
            # born 1950-07-15: 73 (birthday to come); 1990-06-30: 34; 1959-07-01: 65 on T
            "age_years": {"C1": 73, "C3": 34, "C4": None, "C5": 65},
            "is_elderly": {"C1": True, "C3": False, "C4": False, "C5": True},
            "is_disabled": {"C1": False, "C5": True, "C4": False},
        },
    )


def test_value(at_t):
    check(
        at_t,
        {
            "aum_latest": {"C1": 30000.0, "C3": 1000.0, "C4": 500000.0, "C5": 0.0},
            # readings 02-01..06-01: (90+80+60+40+30) / 5 thousand
            "aum_avg_180d": {"C1": 60000.0, "C3": 1000.0, "C4": 500000.0},
            # fees in [2023-07-02, T): 2 + 1 + 0.5 + null + 0.5 + 0.25 + 1 + 0.25
            "fee_revenue_12m": {"C1": 5.5, "C3": 0.1, "C4": 0.0},
        },
    )


def test_profile(at_t):
    check(
        at_t,
        {
            "segment": {"C1": "retail", "C4": "institutional"},
            "kind": {"C1": "individual", "C4": "corporate"},
            "income_band": {"C3": "low", "C4": None},
            "risk_tolerance": {"C1": 2, "C4": 3},
        },
    )
    assert at_t["segment"].dtype == object or str(at_t["segment"].dtype).startswith("str")


def test_labels(tables, config):
    h = config.labels.horizon_days
    assert h == 90  # the fixture's label dates assume the default horizon
    out = build_labels(tables, [T, dt.date(2024, 8, 1)], config).to_pandas()
    at = out[out.as_of == pd.Timestamp(T)].set_index("customer_id").sort_index()
    assert list(at.index) == ["C1", "C3", "C4", "C5"]
    assert at.labeled.all()
    # C1: AUM at T is the close of June (30000); the closes of July to September fall to 4000,
    # under 20 % of it: churn.
    # C4 closes 09-10 < 09-29. C5's AUM is 0: cannot fall. C3 has no reading ahead.
    assert at.churn.to_dict() == {"C1": True, "C3": False, "C4": True, "C5": False}
    # K5 opened at T counts; K8 opened at T + 90 d does not
    assert at.complaint.to_dict() == {"C1": True, "C3": False, "C4": False, "C5": False}


def test_unlabeled_tail_gets_null_labels_not_negatives(tables, config):
    # data ends 2024-09-30: T + 90 = 09-29 fits; 07-02 + 90 = 09-30 fits; 07-03 does not
    dates = [T, dt.date(2024, 7, 2), dt.date(2024, 7, 3), dt.date(2024, 9, 30)]
    out = build_labels(tables, dates, config).to_pandas()
    by_date = out.groupby("as_of").labeled.agg(["all", "any"])
    assert by_date.loc[pd.Timestamp(dt.date(2024, 7, 2))].all()
    assert not by_date.loc[pd.Timestamp(dt.date(2024, 7, 3))].any()
    tail = out[~out.labeled]
    assert len(tail) > 0 and tail.churn.isna().all() and tail.complaint.isna().all()


def test_as_of_outside_the_data_is_an_error(tables, spec, config):
    assert data_range(tables) == (FIRST_EVENT, LAST_EVENT)
    for bad in (dt.date(2024, 10, 1), FIRST_EVENT, dt.date(1999, 1, 1)):
        with pytest.raises(AsOfOutOfRange) as err:
            build_features(tables, [T, bad], spec, config)
        assert str(bad) in str(err.value) and "2024-09-30" in str(err.value)
        with pytest.raises(ValueError, match=str(bad)):
            build_labels(tables, [bad], config)
    # the day after the newest event is the latest valid as_of
    build_features(tables, [dt.date(2024, 9, 30)], spec.select(["txn_count_30d"]), config)


def test_missing_table_or_column_is_a_clear_error(tables, spec, config):
    no_customers = {k: v for k, v in tables.items() if k != "customers"}
    with pytest.raises(ValueError, match="needs the table customers"):
        build_features(no_customers, [T], spec, config)
    no_sessions = {k: v for k, v in tables.items() if k != "sessions"}
    with pytest.raises(ValueError, match=r"login_count_30d \(needs sessions\)"):
        build_features(no_sessions, [T], spec, config)
    no_fee = dict(tables, transactions=tables["transactions"].drop("fee"))
    kept, skipped = spec.available_for(no_fee)
    assert skipped == [Skipped("fee_revenue_12m", ("transactions.fee",))]
    assert str(skipped[0]) == "fee_revenue_12m: needs transactions.fee"
    assert len(kept) == len(spec) - 1 and kept.version != spec.version
    out = build_features(no_fee, [T], kept, config).to_pandas()
    assert "fee_revenue_12m" not in out.columns and len(out) == 4
    with pytest.raises(ValueError, match="labels need the table complaints"):
        build_labels({k: v for k, v in tables.items() if k != "complaints"}, [T], config)


def test_spec_select_and_version(spec, config):
    small = spec.select(["days_since_last_txn", "txn_count_30d"])
    assert small.names == ("txn_count_30d", "days_since_last_txn")  # the spec's order
    assert small.version == spec.select(["txn_count_30d", "days_since_last_txn"]).version
    assert default_spec(config).version == spec.version
    with pytest.raises(KeyError, match="f17"):
        spec.select(["f17"])
    other = default_spec(config.model_copy(update={"policy": config.policy.model_copy(
        update={"holidays": ()})}))  # fmt: skip
    assert other.version != spec.version  # a policy value is part of the definitions
