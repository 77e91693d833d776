"""Service: complaints, their SLA clocks and how recent they are (CRM rule: rising complaints)."""

from __future__ import annotations

from features.families.common import Family, Params, inputs
from features.spec import FeatureDef, Measure

C = "complaints"
SERVICE = Family("service")


def opened_in(w: int) -> Measure:
    return Measure(f"complaints_{w}d", C, start="opened_at", window_days=w)


def complaint_count_features(p: Params) -> list[FeatureDef]:
    """Complaints opened in each window, and those still open."""
    opened = inputs(C, "opened_at")
    still_open = Measure("complaints_open", C, start="opened_at", end="resolved_at")
    counts = SERVICE.window_counts(
        "complaint_count", opened_in, opened, "complaint(s)",
        "complaints with opened_at in [as_of - {w} days, as_of)", p.windows,
    )  # fmt: skip
    return [
        *counts,
        SERVICE.total(
            "open_complaints", still_open, inputs(C, "opened_at", "resolved_at"),
            "{value:.0f} complaint(s) still open",
            "complaints with opened_at < as_of and (resolved_at null or >= as_of)",
        ),
    ]  # fmt: skip


def sla_features(p: Params) -> list[FeatureDef]:
    """Complaints handled outside the SLA (first response, resolution, either), and severity."""
    long, hours, days = p.long, p.response_hours, p.resolution_working_days

    def breaches(kind: str, start: str, where: str | None = None) -> Measure:
        return Measure(f"complaints_{kind}_breach_{long}d", C, start=start, anchor="opened_at",
                       window_days=long, where=where)  # fmt: skip

    resp_rule = (
        f"first response later than {hours} h after opened_at (or none yet), counted once "
        f"opened_at + {hours} h < as_of"
    )
    res_rule = (
        f"not resolved by the end of the {days}th working day after the opening day "
        "(working days: the configured weekdays minus the configured holidays), counted once "
        "that day has ended before as_of"
    )
    high = Measure(
        f"complaints_high_{long}d", C, start="opened_at", window_days=long, where="is_high_severity"
    )
    in_window = f"complaints opened in [as_of - {long} days, as_of)"
    last = f"{{value:.0f}} complaint(s) in the last {long} days"
    return [
        SERVICE.total(
            f"complaint_response_breaches_{long}d",
            breaches("response", "response_due", "response_breach"),
            inputs(C, "opened_at", "first_response_at"),
            f"{last} not answered within {hours} h", f"{in_window} with {resp_rule}",
        ),
        SERVICE.total(
            f"complaint_resolution_breaches_{long}d",
            breaches("resolution", "resolution_last_day", "resolution_breach"),
            inputs(C, "opened_at", "resolved_at"),
            f"{last} not resolved within {days} working days", f"{in_window} {res_rule}",
        ),
        SERVICE.total(
            f"complaint_sla_breaches_{long}d", breaches("sla", "sla_breach_known"),
            inputs(C, "opened_at", "first_response_at", "resolved_at"),
            f"{last} handled outside the SLA",
            f"{in_window} with a response or a resolution breach known before as_of (each "
            "complaint counted once)",
        ),
        SERVICE.total(
            f"high_severity_complaints_{long}d", high, inputs(C, "opened_at", "severity"),
            f"{{value:.0f}} high-severity complaint(s) in the last {long} days",
            f"complaints with severity 'high' opened in [as_of - {long} days, as_of)",
        ),
    ]  # fmt: skip


def features(p: Params) -> list[FeatureDef]:
    last = Measure("complaints_last_ts", C, start="opened_at", how="max", value="opened_at")
    since = SERVICE.days_since(
        "days_since_last_complaint",
        last,
        inputs(C, "opened_at"),
        "complaint",
        "complaint opened",
        missing="no complaints on record",
    )
    return [*complaint_count_features(p), *sla_features(p), since]
