"""The black-box point-in-time check on the demo bank, on any day of the month.

Cut every row and value that was not yet known at as_of (the contract's rule,
`keepwell.contract.timing`), rebuild, compare every value: features on a mid-month date, a
month start and a month end; labels from the bank cut at as_of + horizon; the online store.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from features.definitions import default_spec
from features.pipeline import build_snapshot_table, materialize_latest
from features.spec import FeatureSpec, Measure
from features.store import OnlineStore
from tests.fixtures.known import cut_bank, cut_rows

DAYS = {
    "mid-month": dt.date(2025, 6, 15),
    "month-start": dt.date(2025, 6, 1),
    "month-end": dt.date(2025, 6, 30),
}
LABEL_DAY = dt.date(2025, 3, 17)  # mid-month, with its horizon inside the data


def _frame(table) -> pd.DataFrame:
    frame = table.to_pyarrow().to_pandas()
    return frame.sort_values(["customer_id", "as_of"]).reset_index(drop=True)


@pytest.mark.parametrize("day", DAYS.values(), ids=DAYS.keys())
def test_features_use_only_what_was_known_at_as_of(small_bank, tmp_path, config, day):
    cut = cut_bank(small_bank, day, tmp_path / "cut", config)
    lost = cut_rows(small_bank, cut)
    assert lost["transactions"] > 0 and lost["callbacks"] > 0  # the cut had something to lose
    if day.day != 1:  # the month's own closing balance is not known inside the month
        assert lost["balances"] > 0
    full = _frame(build_snapshot_table(small_bank, [day], config).table)
    known = _frame(build_snapshot_table(cut, [day], config).table)
    assert len(full) > 1500
    pd.testing.assert_frame_equal(known, full)


def test_labels_use_only_what_was_known_at_the_horizon(small_bank, tmp_path, config):
    horizon_end = LABEL_DAY + dt.timedelta(days=config.labels.horizon_days)
    cut = cut_bank(small_bank, horizon_end, tmp_path / "cut", config)
    full = _frame(build_snapshot_table(small_bank, [LABEL_DAY], config, labels=True).table)
    known = _frame(build_snapshot_table(cut, [LABEL_DAY], config, labels=True).table)
    assert full["labeled"].all() and full["churn"].sum() > 10 and full["complaint"].sum() > 10
    pd.testing.assert_frame_equal(known, full)


def test_the_online_store_on_a_mid_month_date(small_bank, tmp_path, config):
    day = DAYS["mid-month"]
    cut = cut_bank(small_bank, day, tmp_path / "cut", config)
    frames = []
    for name, folder in (("full", small_bank), ("known", cut)):
        path = tmp_path / f"{name}.duckdb"
        materialize_latest(folder, path, config, as_of=day)
        with OnlineStore(path, preload=False) as store:
            assert store.as_of == day
            frames.append(store.lookup(store.customer_ids(), missing="raise"))
    pd.testing.assert_frame_equal(frames[1], frames[0])


def test_a_balance_counts_from_the_first_day_of_the_next_month(small_bank, config):
    """June's closing balance (month 2025-06-01) is unknown all June and known on 1 July."""
    latest = default_spec(config).select(["aum_latest"])
    days = [dt.date(2025, 6, 1), dt.date(2025, 6, 30), dt.date(2025, 7, 1)]
    built = _frame(build_snapshot_table(small_bank, days, config, spec=latest).table)
    balances = pd.read_parquet(small_bank / "balances.parquet")
    by_month = balances.pivot(index="customer_id", columns="month", values="aum")
    wide = built.pivot(index="customer_id", columns="as_of", values="aum_latest")
    in_all = built.groupby("customer_id").size().pipe(lambda n: n[n == len(days)].index)
    both = in_all.intersection(by_month.dropna(subset=[dt.date(2025, 5, 1)]).index)
    assert len(both) > 1000
    may, june = by_month.loc[both, dt.date(2025, 5, 1)], by_month.loc[both, dt.date(2025, 6, 1)]
    assert (wide.loc[both, dt.date(2025, 6, 1)] == may).all()
    assert (wide.loc[both, dt.date(2025, 6, 30)] == may).all()
    has_june = june.notna()
    assert (wide.loc[both[has_june], dt.date(2025, 7, 1)] == june[has_june]).all()


def test_a_feature_may_not_read_a_value_at_the_end_of_the_data(small_bank, config):
    from features.families.common import inputs
    from features.spec import FeatureDef

    balance = Measure("holding_balance", "holdings", start="opened_at", value="balance")
    bad = FeatureDef(
        name="holding_balance_total",
        family="value",
        dtype="float64",
        aggregation="sum",
        window_days=None,
        describe="{value}",
        formula="sum of holdings.balance",
        inputs=(inputs("holdings", "opened_at", "balance"),),
        measures=(balance,),
        compute=lambda v: v.total(balance),
    )
    with pytest.raises(ValueError, match=r"holding_balance_total reads holdings\.balance"):
        build_snapshot_table(small_bank, [DAYS["mid-month"]], config, spec=FeatureSpec((bad,)))
