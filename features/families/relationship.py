"""Relationship: how long, how broad and how suitable the customer's book of products is."""

from __future__ import annotations

from features.families.common import PRODUCT_TYPES, Family, Params, customer_inputs, inputs
from features.spec import FeatureDef, Measure

H = "holdings"
RELATIONSHIP = Family("relationship")


def _held(name: str, **fields) -> Measure:
    """A measure over the holdings open at as_of."""
    return Measure(name, H, start="opened_at", end="closed_at", **fields)


def breadth_features(p: Params) -> list[FeatureDef]:
    """Tenure, and how many products (and kinds of product) are held, opened and closed."""
    m = p.mid
    held = inputs(H, "opened_at", "closed_at")
    open_types = _held("holdings_open_types", how="bit_or", value="type_bit")
    opened = Measure(f"holdings_opened_{m}d", H, start="opened_at", window_days=m)
    closed = Measure(f"holdings_closed_{m}d", H, start="closed_at", window_days=m)
    return [
        RELATIONSHIP.define(
            "tenure_days", "int64", "derived", None, inputs=customer_inputs("opened_at"),
            describe="customer for {value:,.0f} days",
            formula="as_of minus the UTC date of customers.opened_at, in days",
            compute=lambda v: v.days_since_column(v.customer("opened_at")),
        ),
        RELATIONSHIP.total(
            "active_product_count", _held("holdings_open"), held, "holds {value:.0f} product(s)",
            "holdings with opened_at < as_of and (closed_at null or closed_at >= as_of)",
        ),
        RELATIONSHIP.define(
            "product_type_count", "int64", "distinct", None,
            inputs=inputs(H, "opened_at", "closed_at", "product_type"), measures=(open_types,),
            describe="holds {value:.0f} kind(s) of product",
            formula=(
                f"distinct product_type ({', '.join(PRODUCT_TYPES)}) among the holdings open at "
                "as_of"
            ),
            compute=lambda v: v.popcount(open_types, len(PRODUCT_TYPES)),
        ),
        RELATIONSHIP.total(
            f"products_opened_{m}d", opened, held,
            f"opened {{value:.0f}} product(s) in the last {m} days",
            f"holdings with opened_at in [as_of - {m} days, as_of)",
        ),
        RELATIONSHIP.total(
            f"product_closures_{m}d", closed, held,
            f"closed {{value:.0f}} product(s) in the last {m} days",
            f"holdings with closed_at in [as_of - {m} days, as_of)",
        ),
    ]  # fmt: skip


def suitability_features(p: Params) -> list[FeatureDef]:
    """Products riskier than the customer's risk tolerance: how many, and by how much."""
    risk = (inputs(H, "opened_at", "closed_at", "product_risk"), customer_inputs("risk_tolerance"))
    gap = _held("holdings_open_max_risk_gap", how="max", value="risk_gap")
    return [
        RELATIONSHIP.total(
            "unsuitable_product_count", _held("holdings_open_unsuitable", where="unsuitable"),
            risk, "holds {value:.0f} product(s) riskier than their risk tolerance",
            "holdings open at as_of with product_risk > the customer's risk_tolerance "
            "(suitability mismatch)",
        ),
        RELATIONSHIP.define(
            "max_risk_gap", "int64", "max", None, inputs=risk, measures=(gap,),
            describe="a product {value:.0f} risk level(s) above their tolerance",
            formula=(
                "max(product_risk - risk_tolerance) over holdings open at as_of, floored at 0 "
                "(0 without open holdings)"
            ),
            compute=lambda v: v.clip_low(v.raw(gap).fill_null(0), 0),
        ),
    ]  # fmt: skip


def features(p: Params) -> list[FeatureDef]:
    return [*breadth_features(p), *suitability_features(p)]
