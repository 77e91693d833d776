"""Profile: who the customer is (categorical columns stay strings for native categoricals)."""

from __future__ import annotations

from features.families.common import Params, customer_inputs
from features.spec import FeatureDef


def _attribute(name: str, dtype: str, describe: str, text: str) -> FeatureDef:
    return FeatureDef(
        name=name,
        family="profile",
        dtype=dtype,
        aggregation="attribute",
        window_days=None,
        describe=describe,
        formula=f"customers.{name}: {text}",
        inputs=(customer_inputs(name),),
        compute=lambda v: v.customer(name),
        describe_missing=f"{name.replace('_', ' ')} not known",
    )


def features(p: Params) -> list[FeatureDef]:
    return [
        _attribute("segment", "string", "{value} segment", "retail, hnw or institutional"),
        _attribute("kind", "string", "{value} customer", "individual or corporate"),
        _attribute("income_band", "string", "{value} income band", "low ... very_high"),
        _attribute("risk_tolerance", "int64", "risk tolerance {value} of 5", "1-5 (assessed)"),
    ]
