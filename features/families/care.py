"""Care: the callback commitments (7-day post-sale, quarterly), their outcomes and special care."""

from __future__ import annotations

from features.families.common import Params, customer_inputs, inputs
from features.spec import FeatureDef, Measure

CB = "callbacks"


def features(p: Params) -> list[FeatureDef]:
    long = p.long
    due = inputs(CB, "reason", "due_at", "done_at")
    overdue_post_sale = Measure(
        f"callbacks_overdue_post_sale_{long}d",
        CB,
        start="due_at",
        window_days=long,
        end="done_at",
        where="is_post_sale",
    )
    overdue_quarterly = Measure(
        f"callbacks_overdue_quarterly_{long}d",
        CB,
        start="due_at",
        window_days=long,
        end="done_at",
        where="is_quarterly",
    )
    last_reached = Measure("callbacks_last_done", CB, start="done_at", how="max", value="done_at")
    satisfaction = Measure(
        "callbacks_last_satisfaction",
        CB,
        start="done_at",
        how="latest",
        value="satisfaction",
        where="has_satisfaction",
    )
    holdout = Measure(
        f"callbacks_holdout_{long}d", CB, start="due_at", window_days=long, where="is_holdout"
    )
    reached = Measure(f"callbacks_reached_{long}d", CB, start="done_at", window_days=long)
    overdue_rule = (
        f"due_at in [as_of - {long} days, as_of) and not done before as_of (done_at null or "
        ">= as_of; holdouts included: the customer was not called)"
    )
    elderly = p.elderly_age
    return [
        FeatureDef(
            name=f"overdue_post_sale_callbacks_{long}d",
            family="care",
            dtype="int64",
            aggregation="count",
            window_days=long,
            describe=f"{{value:.0f}} post-sale callback(s) overdue (due in the last {long} days)",
            formula=f"post_sale callbacks with {overdue_rule}",
            inputs=(due,),
            measures=(overdue_post_sale,),
            compute=lambda v: v.total(overdue_post_sale),
        ),
        FeatureDef(
            name=f"overdue_quarterly_callbacks_{long}d",
            family="care",
            dtype="int64",
            aggregation="count",
            window_days=long,
            describe=f"{{value:.0f}} quarterly callback(s) overdue (due in the last {long} days)",
            formula=f"quarterly callbacks with {overdue_rule}",
            inputs=(due,),
            measures=(overdue_quarterly,),
            compute=lambda v: v.total(overdue_quarterly),
        ),
        FeatureDef(
            name="days_since_last_reached_callback",
            family="care",
            dtype="int64",
            aggregation="days_since",
            window_days=None,
            describe="last reached by a callback {value:.0f} days ago",
            formula="as_of minus the UTC date of the newest done_at before as_of, in days",
            inputs=(inputs(CB, "done_at"),),
            measures=(last_reached,),
            compute=lambda v: v.days_since(last_reached),
            describe_missing="never reached by a callback",
        ),
        FeatureDef(
            name="last_satisfaction_score",
            family="care",
            dtype="float64",
            aggregation="latest",
            window_days=None,
            describe="last satisfaction score {value:.0f} of 5",
            formula="satisfaction of the newest callback with done_at < as_of that has a score",
            inputs=(inputs(CB, "done_at", "satisfaction"),),
            measures=(satisfaction,),
            compute=lambda v: v.raw(satisfaction).cast("float64"),
            describe_missing="no satisfaction score on record",
        ),
        FeatureDef(
            name=f"holdout_callbacks_{long}d",
            family="care",
            dtype="int64",
            aggregation="count",
            window_days=long,
            describe=f"{{value:.0f}} policy callback(s) held back in the last {long} days",
            formula=f"callbacks with outcome 'holdout' and due_at in [as_of - {long} days, as_of)",
            inputs=(inputs(CB, "due_at", "outcome"),),
            measures=(holdout,),
            compute=lambda v: v.total(holdout),
        ),
        FeatureDef(
            name=f"reached_callbacks_{long}d",
            family="care",
            dtype="int64",
            aggregation="count",
            window_days=long,
            describe=f"reached by {{value:.0f}} callback(s) in the last {long} days",
            formula=f"callbacks with done_at in [as_of - {long} days, as_of)",
            inputs=(inputs(CB, "done_at"),),
            measures=(reached,),
            compute=lambda v: v.total(reached),
        ),
        FeatureDef(
            name="age_years",
            family="care",
            dtype="int64",
            aggregation="derived",
            window_days=None,
            describe="{value:.0f} years old",
            formula="completed years between birth_date and as_of; null when unknown (companies)",
            inputs=(customer_inputs("birth_date"),),
            compute=lambda v: v.age_years(v.customer("birth_date")),
            describe_missing="age not known",
        ),
        FeatureDef(
            name="is_elderly",
            family="care",
            dtype="boolean",
            aggregation="derived",
            window_days=None,
            describe="elderly customer: {value}",
            formula=f"age_years >= {elderly} (policy.elderly_age); false when age is unknown",
            inputs=(customer_inputs("birth_date"),),
            compute=lambda v: (v.age_years(v.customer("birth_date")) >= elderly).fill_null(False),
        ),
        FeatureDef(
            name="is_disabled",
            family="care",
            dtype="boolean",
            aggregation="attribute",
            window_days=None,
            describe="needs special care: {value}",
            formula="customers.disabled (null as false)",
            inputs=(customer_inputs("disabled"),),
            compute=lambda v: v.customer("disabled").fill_null(False),
        ),
    ]
