"""Trends: the early warnings of the CRM rules - falling activity, falling assets."""

from __future__ import annotations

from features.families.activity import login_count, txn_amount, txn_count
from features.families.common import Family, Params, inputs
from features.spec import FeatureDef, Measure

TREND = Family("trend")


def aum_latest() -> Measure:
    return Measure("aum_latest", "balances", start="month", how="latest", value="aum")


def _rate(name: str, window_days: int, **fields) -> FeatureDef:
    """A pace against an earlier or longer one (a ratio of daily rates)."""
    return TREND.define(name, "float64", "ratio", window_days, **fields)


def activity_trend_features(p: Params) -> list[FeatureDef]:
    """The pace of transactions against the usual pace and against the earlier period."""
    s, m, long = p.short, p.mid, p.long
    tx = inputs("transactions", "ts")
    usual = f"(last {s} days against the {m}-day average)"
    return [
        _rate(
            f"txn_rate_{s}d_vs_{m}d", m, inputs=tx, measures=(txn_count(s), txn_count(m)),
            describe=f"transacting at {{value:.0%}} of the usual pace {usual}",
            formula=(
                f"(txn_count_{s}d / {s}) / (txn_count_{m}d / {m}): daily transaction rate of the "
                f"last {s} days against that of the last {m} days; null without transactions "
                f"in {m} days"
            ),
            compute=lambda v: v.ratio(v.total(txn_count(s)) / s, v.total(txn_count(m)) / m),
            describe_missing=f"no transactions in the last {m} days",
        ),
        _rate(
            f"txn_amount_rate_{s}d_vs_{m}d", m, inputs=inputs("transactions", "ts", "amount"),
            measures=(txn_amount(s), txn_amount(m)),
            describe=f"moving money at {{value:.0%}} of the usual pace {usual}",
            formula=(
                f"(txn_amount_{s}d / {s}) / (txn_amount_{m}d / {m}); null without transactions "
                f"in {m} days"
            ),
            compute=lambda v: v.ratio(v.total(txn_amount(s)) / s, v.total(txn_amount(m)) / m),
            describe_missing=f"no transactions in the last {m} days",
        ),
        _rate(
            f"txn_rate_{m}d_vs_prior_{long - m}d", long, inputs=tx,
            measures=(txn_count(m), txn_count(long)),
            describe=(
                f"transacting at {{value:.0%}} of the pace of the {long - m} days before the "
                f"last {m}"
            ),
            formula=(
                f"(txn_count_{m}d / {m}) / ((txn_count_{long}d - txn_count_{m}d) / {long - m}): "
                f"daily rate in [as_of - {m}d, as_of) against [as_of - {long}d, as_of - {m}d); "
                "null without transactions in the earlier period"
            ),
            compute=lambda v: v.ratio(
                v.total(txn_count(m)) / m,
                (v.total(txn_count(long)) - v.total(txn_count(m))) / (long - m),
            ),
            describe_missing=f"no transactions in the {long - m} days before the last {m}",
        ),
    ]  # fmt: skip


def login_trend_features(p: Params) -> list[FeatureDef]:
    """Log-ins in the short window against the pace of the days before it."""
    s, m = p.short, p.mid
    sessions = inputs("sessions", "ts")
    prior = m - s
    logins = (login_count(s), login_count(m))

    def earlier_pace(v):  # log-ins a day in the `prior` days before the short window
        return (v.total(login_count(m)) - v.total(login_count(s))) / prior

    return [
        _rate(
            f"login_rate_{s}d_vs_prior_{prior}d", m, inputs=sessions, measures=logins,
            describe=f"logging in at {{value:.0%}} of the pace of the {prior} days before",
            formula=(
                f"(login_count_{s}d / {s}) / ((login_count_{m}d - login_count_{s}d) / {prior}); "
                "null without log-ins in the earlier period"
            ),
            compute=lambda v: v.ratio(v.total(login_count(s)) / s, earlier_pace(v)),
            describe_missing=f"no log-ins in the {prior} days before the last {s}",
        ),
        TREND.define(
            f"login_decline_{s}d", "float64", "difference", m, inputs=sessions, measures=logins,
            describe=(
                f"{{value:.0f}} fewer log-ins in the last {s} days than the pace of the "
                f"{prior} days before"
            ),
            formula=(
                f"max(0, (login_count_{m}d - login_count_{s}d) * {s} / {prior} - "
                f"login_count_{s}d): log-ins missing against the earlier pace, 0 when not falling"
            ),
            compute=lambda v: v.clip_low(
                (v.total(login_count(m)) - v.total(login_count(s))) * (s / prior)
                - v.total(login_count(s)),
                0.0,
            ),
        ),
    ]  # fmt: skip


def asset_trend_features(p: Params) -> list[FeatureDef]:
    """Assets against their level some time ago, and against their recent peak."""
    m, long = p.mid, p.long
    balances = inputs("balances", "month", "aum")
    latest = aum_latest()
    out = []
    for w in (m, long):
        # the level known w days before as_of (the contract says when a balances row is known)
        before = Measure(f"aum_before_{w}d", "balances", start="month", how="latest",
                         value="aum", delay_days=w)  # fmt: skip
        out.append(TREND.define(
            f"aum_change_{w}d", "float64", "change", w, inputs=balances, measures=(latest, before),
            describe=f"assets {{value:+.0%}} against their level more than {w} days ago",
            formula=(
                "aum_latest / aum_then - 1, where aum_then is the newest balances reading "
                f"known before as_of - {w} days (a month's closing balance is known from the "
                "next month's first day); null when that reading is missing or 0"
            ),
            compute=lambda v, b=before: v.ratio(v.raw(latest), v.raw(b)) - 1.0,
            describe_missing=f"no asset history {w} days back",
        ))  # fmt: skip
    peak = Measure(
        f"aum_max_{long}d", "balances", start="month", how="max", value="aum", window_days=long
    )
    out.append(TREND.define(
        f"aum_drawdown_{long}d", "float64", "change", long, inputs=balances,
        measures=(latest, peak),
        describe=f"assets {{value:.0%}} below their peak of the last {long} days",
        formula=(
            "1 - aum_latest / max(aum over the balances readings known before as_of with "
            f"month >= as_of - {long} days); null when there is no reading or the peak is 0"
        ),
        compute=lambda v: 1.0 - v.ratio(v.raw(latest), v.raw(peak)),
        describe_missing=f"no asset readings in the last {long} days",
    ))  # fmt: skip
    return out


def features(p: Params) -> list[FeatureDef]:
    return [*activity_trend_features(p), *login_trend_features(p), *asset_trend_features(p)]
