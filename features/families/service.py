"""Service: complaints, their SLA clocks and how recent they are (CRM rule: rising complaints)."""

from __future__ import annotations

from features.families.common import Params, inputs, total_of
from features.spec import FeatureDef, Measure

C = "complaints"


def features(p: Params) -> list[FeatureDef]:
    long = p.long
    opened = inputs(C, "opened_at")
    out = []
    for w in p.windows:
        n = Measure(f"complaints_{w}d", C, start="opened_at", window_days=w)
        out.append(
            FeatureDef(
                name=f"complaint_count_{w}d",
                family="service",
                dtype="int64",
                aggregation="count",
                window_days=w,
                describe=f"{{value:.0f}} complaint(s) in the last {w} days",
                formula=f"complaints with opened_at in [as_of - {w} days, as_of)",
                inputs=(opened,),
                measures=(n,),
                compute=total_of(n),
            )
        )
    still_open = Measure("complaints_open", C, start="opened_at", end="resolved_at")
    response = Measure(
        f"complaints_response_breach_{long}d",
        C,
        start="response_due",
        anchor="opened_at",
        window_days=long,
        where="response_breach",
    )
    resolution = Measure(
        f"complaints_resolution_breach_{long}d",
        C,
        start="resolution_last_day",
        anchor="opened_at",
        window_days=long,
        where="resolution_breach",
    )
    either = Measure(
        f"complaints_sla_breach_{long}d",
        C,
        start="sla_breach_known",
        anchor="opened_at",
        window_days=long,
    )
    high = Measure(
        f"complaints_high_{long}d", C, start="opened_at", window_days=long, where="is_high_severity"
    )
    last = Measure("complaints_last_ts", C, start="opened_at", how="max", value="opened_at")
    hours, days = p.response_hours, p.resolution_working_days
    resp_rule = (
        f"first response later than {hours} h after opened_at (or none yet), counted once "
        f"opened_at + {hours} h < as_of"
    )
    res_rule = (
        f"not resolved by the end of the {days}th working day after the opening day "
        "(working days: the configured weekdays minus the configured holidays), counted once "
        "that day has ended before as_of"
    )
    out += [
        FeatureDef(
            name="open_complaints",
            family="service",
            dtype="int64",
            aggregation="count",
            window_days=None,
            describe="{value:.0f} complaint(s) still open",
            formula="complaints with opened_at < as_of and (resolved_at null or >= as_of)",
            inputs=(inputs(C, "opened_at", "resolved_at"),),
            measures=(still_open,),
            compute=lambda v: v.total(still_open),
        ),
        FeatureDef(
            name=f"complaint_response_breaches_{long}d",
            family="service",
            dtype="int64",
            aggregation="count",
            window_days=long,
            describe=(
                f"{{value:.0f}} complaint(s) in the last {long} days not answered within {hours} h"
            ),
            formula=f"complaints opened in [as_of - {long} days, as_of) with {resp_rule}",
            inputs=(inputs(C, "opened_at", "first_response_at"),),
            measures=(response,),
            compute=lambda v: v.total(response),
        ),
        FeatureDef(
            name=f"complaint_resolution_breaches_{long}d",
            family="service",
            dtype="int64",
            aggregation="count",
            window_days=long,
            describe=(
                f"{{value:.0f}} complaint(s) in the last {long} days not resolved within "
                f"{days} working days"
            ),
            formula=f"complaints opened in [as_of - {long} days, as_of) {res_rule}",
            inputs=(inputs(C, "opened_at", "resolved_at"),),
            measures=(resolution,),
            compute=lambda v: v.total(resolution),
        ),
        FeatureDef(
            name=f"complaint_sla_breaches_{long}d",
            family="service",
            dtype="int64",
            aggregation="count",
            window_days=long,
            describe=f"{{value:.0f}} complaint(s) in the last {long} days handled outside the SLA",
            formula=(
                f"complaints opened in [as_of - {long} days, as_of) with a response or a "
                "resolution breach known before as_of (each complaint counted once)"
            ),
            inputs=(inputs(C, "opened_at", "first_response_at", "resolved_at"),),
            measures=(either,),
            compute=lambda v: v.total(either),
        ),
        FeatureDef(
            name=f"high_severity_complaints_{long}d",
            family="service",
            dtype="int64",
            aggregation="count",
            window_days=long,
            describe=f"{{value:.0f}} high-severity complaint(s) in the last {long} days",
            formula=f"complaints with severity 'high' opened in [as_of - {long} days, as_of)",
            inputs=(inputs(C, "opened_at", "severity"),),
            measures=(high,),
            compute=lambda v: v.total(high),
        ),
        FeatureDef(
            name="days_since_last_complaint",
            family="service",
            dtype="int64",
            aggregation="days_since",
            window_days=None,
            describe="last complaint {value:.0f} days ago",
            formula="as_of minus the UTC date of the newest complaint opened before as_of, in days",
            inputs=(opened,),
            measures=(last,),
            compute=lambda v: v.days_since(last),
            describe_missing="no complaints on record",
        ),
    ]
    return out
