"""Value: what the relationship is worth to the bank (assets, fee revenue)."""

from __future__ import annotations

from features.families.common import FEE_WINDOW_DAYS, Family, Params, inputs
from features.families.trend import aum_latest
from features.spec import FeatureDef, Measure

VALUE = Family("value")


def features(p: Params) -> list[FeatureDef]:
    long = p.long
    balances = inputs("balances", "month", "aum")
    latest = aum_latest()
    aum_sum = Measure(f"aum_sum_{long}d", "balances", start="month", value="aum", window_days=long)
    aum_n = Measure(f"aum_n_{long}d", "balances", start="month", window_days=long)
    fees = Measure(f"fee_{FEE_WINDOW_DAYS}d", "transactions", start="ts", value="fee_amount",
                   window_days=FEE_WINDOW_DAYS)  # fmt: skip
    return [
        VALUE.define(
            "aum_latest", "float64", "latest", None, inputs=balances, measures=(latest,),
            describe="assets of {value:,.0f}",
            formula=(
                "aum of the newest balances reading known before as_of (a month's closing "
                "balance is known from the next month's first day)"
            ),
            compute=lambda v: v.raw(latest),
            describe_missing="no asset readings",
        ),
        VALUE.define(
            f"aum_avg_{long}d", "float64", "mean", long, inputs=balances,
            measures=(aum_sum, aum_n),
            describe=f"average assets of {{value:,.0f}} over the last {long} days",
            formula=(
                "mean aum over the balances readings known before as_of with month >= as_of - "
                f"{long} days"
            ),
            compute=lambda v: v.ratio(v.total(aum_sum), v.total(aum_n)),
            describe_missing=f"no asset readings in the last {long} days",
        ),
        VALUE.total(
            "fee_revenue_12m", fees, inputs("transactions", "ts", "fee"),
            "{value:,.0f} in fees over the last 12 months",
            f"sum of fee (null as 0) over transactions in [as_of - {FEE_WINDOW_DAYS} days, "
            "as_of)",
            dtype="float64", aggregation="sum",
        ),
    ]  # fmt: skip
