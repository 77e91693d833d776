"""Care: the callback commitments (7-day post-sale, quarterly), their outcomes and special care."""

from __future__ import annotations

from features.families.common import Family, Params, customer_inputs, inputs
from features.spec import FeatureDef, Measure

CB = "callbacks"
CARE = Family("care")


def callback_features(p: Params) -> list[FeatureDef]:
    """Callbacks overdue, held back and reached, and what the last reached one said."""
    long = p.long
    due = inputs(CB, "reason", "due_at", "done_at")
    overdue_rule = (
        f"due_at in [as_of - {long} days, as_of) and not done before as_of (done_at null or "
        ">= as_of; holdouts included: the customer was not called)"
    )

    def overdue(reason: str) -> FeatureDef:
        m = Measure(f"callbacks_overdue_{reason}_{long}d", CB, start="due_at", window_days=long,
                    end="done_at", where=f"is_{reason}")  # fmt: skip
        said = reason.replace("_", "-")
        return CARE.total(
            f"overdue_{reason}_callbacks_{long}d", m, due,
            f"{{value:.0f}} {said} callback(s) overdue (due in the last {long} days)",
            f"{reason} callbacks with {overdue_rule}",
        )  # fmt: skip

    last_reached = Measure("callbacks_last_done", CB, start="done_at", how="max", value="done_at")
    satisfaction = Measure("callbacks_last_satisfaction", CB, start="done_at", how="latest",
                           value="satisfaction", where="has_satisfaction")  # fmt: skip
    holdout = Measure(
        f"callbacks_holdout_{long}d", CB, start="due_at", window_days=long, where="is_holdout"
    )
    reached = Measure(f"callbacks_reached_{long}d", CB, start="done_at", window_days=long)
    return [
        overdue("post_sale"),
        overdue("quarterly"),
        CARE.days_since("days_since_last_reached_callback", last_reached, inputs(CB, "done_at"),
                        "reached by a callback", "done_at", missing="never reached by a callback"),
        CARE.define(
            "last_satisfaction_score", "float64", "latest", None,
            describe="last satisfaction score {value:.0f} of 5",
            formula="satisfaction of the newest callback with done_at < as_of that has a score",
            inputs=inputs(CB, "done_at", "satisfaction"),
            measures=(satisfaction,),
            compute=lambda v: v.raw(satisfaction).cast("float64"),
            describe_missing="no satisfaction score on record",
        ),
        CARE.total(
            f"holdout_callbacks_{long}d", holdout, inputs(CB, "due_at", "outcome"),
            f"{{value:.0f}} policy callback(s) held back in the last {long} days",
            f"callbacks with outcome 'holdout' and due_at in [as_of - {long} days, as_of)",
        ),
        CARE.total(
            f"reached_callbacks_{long}d", reached, inputs(CB, "done_at"),
            f"reached by {{value:.0f}} callback(s) in the last {long} days",
            f"callbacks with done_at in [as_of - {long} days, as_of)",
        ),
    ]  # fmt: skip


def special_care_features(p: Params) -> list[FeatureDef]:
    """Who needs special care: the elderly (by age) and customers with a disability."""
    elderly = p.elderly_age
    birth = customer_inputs("birth_date")
    return [
        CARE.define(
            "age_years", "int64", "derived", None,
            describe="{value:.0f} years old",
            formula="completed years between birth_date and as_of; null when unknown (companies)",
            inputs=birth,
            compute=lambda v: v.age_years(v.customer("birth_date")),
            describe_missing="age not known",
        ),
        CARE.define(
            "is_elderly", "boolean", "derived", None,
            describe="elderly customer: {value}",
            formula=f"age_years >= {elderly} (policy.elderly_age); false when age is unknown",
            inputs=birth,
            compute=lambda v: (v.age_years(v.customer("birth_date")) >= elderly).fill_null(False),
        ),
        CARE.define(
            "is_disabled", "boolean", "attribute", None,
            describe="needs special care: {value}",
            formula="customers.disabled (null as false)",
            inputs=customer_inputs("disabled"),
            compute=lambda v: v.customer("disabled").fill_null(False),
        ),
    ]  # fmt: skip


def features(p: Params) -> list[FeatureDef]:
    return [*callback_features(p), *special_care_features(p)]
