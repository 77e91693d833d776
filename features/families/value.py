"""Value: what the relationship is worth to the bank (assets, fee revenue)."""

from __future__ import annotations

from features.families.common import FEE_WINDOW_DAYS, Params, inputs
from features.families.trend import aum_latest
from features.spec import FeatureDef, Measure


def features(p: Params) -> list[FeatureDef]:
    long = p.long
    balances = inputs("balances", "month", "aum")
    latest = aum_latest()
    aum_sum = Measure(f"aum_sum_{long}d", "balances", start="month", value="aum", window_days=long)
    aum_n = Measure(f"aum_n_{long}d", "balances", start="month", window_days=long)
    fees = Measure(
        f"fee_{FEE_WINDOW_DAYS}d",
        "transactions",
        start="ts",
        value="fee_amount",
        window_days=FEE_WINDOW_DAYS,
    )
    return [
        FeatureDef(
            name="aum_latest",
            family="value",
            dtype="float64",
            aggregation="latest",
            window_days=None,
            describe="assets of {value:,.0f}",
            formula=(
                "aum of the newest balances reading known before as_of (a month's closing "
                "balance is known from the next month's first day)"
            ),
            inputs=(balances,),
            measures=(latest,),
            compute=lambda v: v.raw(latest),
            describe_missing="no asset readings",
        ),
        FeatureDef(
            name=f"aum_avg_{long}d",
            family="value",
            dtype="float64",
            aggregation="mean",
            window_days=long,
            describe=f"average assets of {{value:,.0f}} over the last {long} days",
            formula=(
                "mean aum over the balances readings known before as_of with month >= as_of - "
                f"{long} days"
            ),
            inputs=(balances,),
            measures=(aum_sum, aum_n),
            compute=lambda v: v.ratio(v.total(aum_sum), v.total(aum_n)),
            describe_missing=f"no asset readings in the last {long} days",
        ),
        FeatureDef(
            name="fee_revenue_12m",
            family="value",
            dtype="float64",
            aggregation="sum",
            window_days=FEE_WINDOW_DAYS,
            describe="{value:,.0f} in fees over the last 12 months",
            formula=(
                f"sum of fee (null as 0) over transactions in [as_of - {FEE_WINDOW_DAYS} days, "
                "as_of)"
            ),
            inputs=(inputs("transactions", "ts", "fee"),),
            measures=(fees,),
            compute=lambda v: v.total(fees),
        ),
    ]
