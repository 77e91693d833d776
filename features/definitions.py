"""The Keepwell feature set, and the derived event columns its measures read.

`feature_definitions(config)` lists every `FeatureDef` (one module per family under
`features.families`); `prepare_tables` adds the derived columns the measures refer to by name
(for example `complaints.response_breach`) to the bank's tables, as Ibis expressions:

| table        | derived column       | meaning                                                 |
|--------------|----------------------|---------------------------------------------------------|
| transactions | inflow, outflow      | amount when direction is 'in' / 'out', else 0           |
|              | is_digital           | 1.0 for app and web, else 0.0                           |
|              | channel_bit          | 1, 2, 4, 8 for branch, app, web, phone (0 for others)   |
|              | fee_amount           | fee, null as 0                                          |
| holdings     | risk_gap, unsuitable | product_risk - the customer's risk_tolerance; gap > 0   |
|              | type_bit             | a bit per product_type                                  |
| complaints   | response_due         | opened_at + the first-response hours of the policy      |
|              | response_breach      | first_response_at null or later than response_due       |
|              | resolution_last_day  | midnight starting the Nth working day after opening     |
|              | resolution_breach    | resolved_at null or not before the end of that day      |
|              | sla_breach_known     | earliest instant one of the two breaches was certain    |
|              | is_high_severity     | severity = 'high'                                       |
| callbacks    | is_post_sale, ...    | reason flags; is_holdout (outcome = 'holdout')          |
|              | has_satisfaction     | a reached callback with a survey score                  |
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import ibis
import ibis.expr.datatypes as dtypes

from features.families import activity, care, profile, relationship, service, trend, value
from features.families.common import DIGITAL_CHANNELS, PRODUCT_TYPES, TXN_CHANNELS, Params
from features.spec import FeatureDef, FeatureSpec

if TYPE_CHECKING:
    from keepwell.config import Config

FAMILY_MODULES = (activity, trend, relationship, service, care, value, profile)

# derived column -> the raw columns it is computed from, per table
DERIVED: dict[str, dict[str, tuple[str, ...]]] = {
    "transactions": {
        "inflow": ("amount", "direction"),
        "outflow": ("amount", "direction"),
        "is_digital": ("channel",),
        "channel_bit": ("channel",),
        "fee_amount": ("fee",),
    },
    "holdings": {
        "risk_gap": ("product_risk",),
        "unsuitable": ("product_risk",),
        "type_bit": ("product_type",),
    },
    "complaints": {
        "response_due": ("opened_at",),
        "response_breach": ("opened_at", "first_response_at"),
        "resolution_last_day": ("opened_at",),
        "resolution_breach": ("opened_at", "resolved_at"),
        "sla_breach_known": ("opened_at", "first_response_at", "resolved_at"),
        "is_high_severity": ("severity",),
    },
    "callbacks": {
        "is_post_sale": ("reason",),
        "is_quarterly": ("reason",),
        "is_holdout": ("outcome",),
        "has_satisfaction": ("done_at", "satisfaction"),
    },
}


def feature_definitions(config: Config) -> list[FeatureDef]:
    params = Params.from_config(config)
    out: list[FeatureDef] = []
    for module in FAMILY_MODULES:
        out += module.features(params)
    return out


def spec_params(config: Config) -> tuple[tuple[str, str], ...]:
    """The configuration values the definitions depend on, for the spec's version hash."""
    p = Params.from_config(config)
    return (
        ("windows_days", ",".join(map(str, p.windows))),
        ("complaint_first_response_hours", str(p.response_hours)),
        ("complaint_resolution_working_days", str(p.resolution_working_days)),
        ("working_days", ",".join(map(str, p.working_days))),
        ("holidays", ",".join(d.isoformat() for d in p.holidays)),
        ("elderly_age", str(p.elderly_age)),
    )


# -- derived columns --------------------------------------------------------------------------


def default_spec(config: Config) -> FeatureSpec:
    """Every Keepwell feature, with windows and policy values from `config`."""
    return FeatureSpec(tuple(feature_definitions(config)), spec_params(config))


def working_day_deadlines(
    first: dt.date, last: dt.date, n: int, working_days: Sequence[int], holidays: Iterable[dt.date]
) -> dict[dt.date, dt.date]:
    """For every opening day in [first, last]: the Nth working day after it (day 1 = next one)."""
    off = set(holidays)
    work = set(working_days)

    def is_working(day: dt.date) -> bool:
        return day.weekday() in work and day not in off

    out: dict[dt.date, dt.date] = {}
    day = first
    while day <= last:
        cursor, left = day, n
        while left > 0:
            cursor += dt.timedelta(days=1)
            if is_working(cursor):
                left -= 1
        out[day] = cursor
        day += dt.timedelta(days=1)
    return out


def _timestamp_type(column: ibis.Column) -> dtypes.DataType:
    kind = column.type()
    return kind if kind.is_timestamp() else dtypes.Timestamp(timezone="UTC")


def _calendar(
    dates: Sequence[dt.date], params: Params, like: ibis.Column, lookback_days: int
) -> ibis.Table:
    """open_day -> resolution_last_day (midnight starting the last allowed working day)."""
    import pyarrow as pa

    first = min(dates) - dt.timedelta(days=lookback_days + 1)
    last = max(dates)
    deadlines = working_day_deadlines(
        first, last, params.resolution_working_days, params.working_days, params.holidays
    )
    ts_type = _timestamp_type(like)
    tz = dt.UTC if ts_type.timezone else None
    table = pa.table(
        {
            "open_day": pa.array(list(deadlines), pa.date32()),
            "resolution_last_day": pa.array(
                [dt.datetime.combine(d, dt.time(), tzinfo=tz) for d in deadlines.values()],
                pa.timestamp("us", tz="UTC" if tz else None),
            ),
        }
    )
    return ibis.memtable(table).mutate(resolution_last_day=ibis._.resolution_last_day.cast(ts_type))


def _bits(column: ibis.Column, values: Sequence[str]) -> ibis.Value:
    return ibis.cases(*[(column == v, 1 << i) for i, v in enumerate(values)], else_=0).cast("int64")


def _transactions(t: ibis.Table, want: set[str]) -> dict[str, ibis.Value]:
    cols: dict[str, ibis.Value] = {}
    if "inflow" in want:
        cols["inflow"] = ibis.ifelse(t.direction == "in", t.amount.cast("float64"), 0.0)
    if "outflow" in want:
        cols["outflow"] = ibis.ifelse(t.direction == "out", t.amount.cast("float64"), 0.0)
    if "is_digital" in want:
        cols["is_digital"] = ibis.ifelse(t.channel.isin(list(DIGITAL_CHANNELS)), 1.0, 0.0)
    if "channel_bit" in want:
        cols["channel_bit"] = _bits(t.channel, TXN_CHANNELS)
    if "fee_amount" in want:
        cols["fee_amount"] = t.fee.cast("float64").fill_null(0.0)
    return cols


def _holdings(t: ibis.Table, want: set[str], customers: ibis.Table) -> ibis.Table:
    if want & {"risk_gap", "unsuitable"}:
        tolerance = customers.select("customer_id", _risk_tolerance=customers.risk_tolerance)
        t = t.left_join(tolerance, "customer_id")
    cols: dict[str, ibis.Value] = {}
    if "risk_gap" in want:
        cols["risk_gap"] = (t.product_risk - t._risk_tolerance).cast("int64")
    if "unsuitable" in want:
        cols["unsuitable"] = (t.product_risk > t._risk_tolerance).fill_null(False)
    if "type_bit" in want:
        cols["type_bit"] = _bits(t.product_type, PRODUCT_TYPES)
    return t.mutate(**cols) if cols else t


def _complaints(
    t: ibis.Table, want: set[str], dates: Sequence[dt.date], params: Params, lookback_days: int
) -> ibis.Table:
    cols: dict[str, ibis.Value] = {}
    need_response = bool(want & {"response_due", "response_breach", "sla_breach_known"})
    need_resolution = bool(want & {"resolution_last_day", "resolution_breach", "sla_breach_known"})
    if need_resolution:
        calendar = _calendar(dates, params, t.opened_at, lookback_days)
        t = t.mutate(open_day=t.opened_at.date()).left_join(calendar, "open_day")
        deadline = t.resolution_last_day + ibis.interval(days=1)
        t = t.mutate(
            resolution_breach=(
                t.resolution_last_day.notnull()
                & (t.resolved_at.isnull() | (t.resolved_at >= deadline))
            )
        )
    if need_response:
        due = t.opened_at + ibis.interval(hours=params.response_hours)
        t = t.mutate(response_due=due)
        t = t.mutate(
            response_breach=t.first_response_at.isnull() | (t.first_response_at > t.response_due)
        )
    if "sla_breach_known" in want:
        cols["sla_breach_known"] = ibis.least(
            ibis.ifelse(t.response_breach, t.response_due, ibis.null(t.response_due.type())),
            ibis.ifelse(
                t.resolution_breach, t.resolution_last_day, ibis.null(t.response_due.type())
            ),
        )
    if "is_high_severity" in want:
        cols["is_high_severity"] = (t.severity == "high").fill_null(False)
    return t.mutate(**cols) if cols else t


def _callbacks(t: ibis.Table, want: set[str]) -> dict[str, ibis.Value]:
    cols: dict[str, ibis.Value] = {}
    if "is_post_sale" in want:
        cols["is_post_sale"] = (t.reason == "post_sale").fill_null(False)
    if "is_quarterly" in want:
        cols["is_quarterly"] = (t.reason == "quarterly").fill_null(False)
    if "is_holdout" in want:
        cols["is_holdout"] = (t.outcome == "holdout").fill_null(False)
    if "has_satisfaction" in want:
        cols["has_satisfaction"] = t.satisfaction.notnull() & t.done_at.notnull()
    return cols


def prepare_tables(
    tables: Mapping[str, ibis.Table],
    needed: Mapping[str, Iterable[str]],
    dates: Sequence[dt.date],
    params: Params,
) -> dict[str, ibis.Table]:
    """`customer_id` plus the `needed` columns (raw or derived, see the module doc) per table."""
    out: dict[str, ibis.Table] = {}
    lookback = max(params.windows)
    for name, columns in needed.items():
        want = set(columns)
        t = tables[name]
        derived = want & set(DERIVED.get(name, {}))
        if name == "transactions":
            t = t.mutate(**_transactions(t, derived)) if derived else t
        elif name == "holdings":
            t = _holdings(t, derived, tables["customers"])
        elif name == "complaints":
            t = _complaints(t, derived, dates, params, lookback)
        elif name == "callbacks":
            t = t.mutate(**_callbacks(t, derived)) if derived else t
        keep = ["customer_id", *sorted(want - {"customer_id"})]
        missing = [c for c in keep if c not in t.columns]
        if missing:
            raise ValueError(
                f"table {name} lacks column(s) {missing} needed by the feature measures"
            )
        out[name] = t.select(*keep)
    return out
