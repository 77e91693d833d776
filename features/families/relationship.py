"""Relationship: how long, how broad and how suitable the customer's book of products is."""

from __future__ import annotations

from features.families.common import PRODUCT_TYPES, Params, customer_inputs, inputs
from features.spec import FeatureDef, Measure

H = "holdings"


def features(p: Params) -> list[FeatureDef]:
    m = p.mid
    held = inputs(H, "opened_at", "closed_at")
    held_types = inputs(H, "opened_at", "closed_at", "product_type")
    held_risk = inputs(H, "opened_at", "closed_at", "product_risk")
    tolerance = customer_inputs("risk_tolerance")
    open_count = Measure("holdings_open", H, start="opened_at", end="closed_at")
    open_types = Measure(
        "holdings_open_types", H, start="opened_at", end="closed_at", how="bit_or", value="type_bit"
    )
    opened = Measure(f"holdings_opened_{m}d", H, start="opened_at", window_days=m)
    closed = Measure(f"holdings_closed_{m}d", H, start="closed_at", window_days=m)
    unsuitable = Measure(
        "holdings_open_unsuitable", H, start="opened_at", end="closed_at", where="unsuitable"
    )
    gap = Measure(
        "holdings_open_max_risk_gap",
        H,
        start="opened_at",
        end="closed_at",
        how="max",
        value="risk_gap",
    )
    return [
        FeatureDef(
            name="tenure_days",
            family="relationship",
            dtype="int64",
            aggregation="derived",
            window_days=None,
            describe="customer for {value:,.0f} days",
            formula="as_of minus the UTC date of customers.opened_at, in days",
            inputs=(customer_inputs("opened_at"),),
            compute=lambda v: v.days_since_column(v.customer("opened_at")),
        ),
        FeatureDef(
            name="active_product_count",
            family="relationship",
            dtype="int64",
            aggregation="count",
            window_days=None,
            describe="holds {value:.0f} product(s)",
            formula="holdings with opened_at < as_of and (closed_at null or closed_at >= as_of)",
            inputs=(held,),
            measures=(open_count,),
            compute=lambda v: v.total(open_count),
        ),
        FeatureDef(
            name="product_type_count",
            family="relationship",
            dtype="int64",
            aggregation="distinct",
            window_days=None,
            describe="holds {value:.0f} kind(s) of product",
            formula=(
                f"distinct product_type ({', '.join(PRODUCT_TYPES)}) among the holdings open at "
                "as_of"
            ),
            inputs=(held_types,),
            measures=(open_types,),
            compute=lambda v: v.popcount(open_types, len(PRODUCT_TYPES)),
        ),
        FeatureDef(
            name=f"products_opened_{m}d",
            family="relationship",
            dtype="int64",
            aggregation="count",
            window_days=m,
            describe=f"opened {{value:.0f}} product(s) in the last {m} days",
            formula=f"holdings with opened_at in [as_of - {m} days, as_of)",
            inputs=(held,),
            measures=(opened,),
            compute=lambda v: v.total(opened),
        ),
        FeatureDef(
            name=f"product_closures_{m}d",
            family="relationship",
            dtype="int64",
            aggregation="count",
            window_days=m,
            describe=f"closed {{value:.0f}} product(s) in the last {m} days",
            formula=f"holdings with closed_at in [as_of - {m} days, as_of)",
            inputs=(held,),
            measures=(closed,),
            compute=lambda v: v.total(closed),
        ),
        FeatureDef(
            name="unsuitable_product_count",
            family="relationship",
            dtype="int64",
            aggregation="count",
            window_days=None,
            describe="holds {value:.0f} product(s) riskier than their risk tolerance",
            formula=(
                "holdings open at as_of with product_risk > the customer's risk_tolerance "
                "(suitability mismatch)"
            ),
            inputs=(held_risk, tolerance),
            measures=(unsuitable,),
            compute=lambda v: v.total(unsuitable),
        ),
        FeatureDef(
            name="max_risk_gap",
            family="relationship",
            dtype="int64",
            aggregation="max",
            window_days=None,
            describe="a product {value:.0f} risk level(s) above their tolerance",
            formula=(
                "max(product_risk - risk_tolerance) over holdings open at as_of, floored at 0 "
                "(0 without open holdings)"
            ),
            inputs=(held_risk, tolerance),
            measures=(gap,),
            compute=lambda v: v.clip_low(v.raw(gap).fill_null(0), 0),
        ),
    ]
