"""Trends: the early warnings of the CRM rules - falling activity, falling assets."""

from __future__ import annotations

from features.families.activity import login_count, txn_amount, txn_count
from features.families.common import Params, inputs
from features.spec import FeatureDef, Measure


def aum_latest() -> Measure:
    return Measure("aum_latest", "balances", start="month", how="latest", value="aum")


def features(p: Params) -> list[FeatureDef]:
    s, m, long = p.short, p.mid, p.long
    tx = inputs("transactions", "ts")
    tx_amount = inputs("transactions", "ts", "amount")
    out = [
        FeatureDef(
            name=f"txn_rate_{s}d_vs_{m}d",
            family="trend",
            dtype="float64",
            aggregation="ratio",
            window_days=m,
            describe=(
                f"transacting at {{value:.0%}} of the usual pace (last {s} days against the "
                f"{m}-day average)"
            ),
            formula=(
                f"(txn_count_{s}d / {s}) / (txn_count_{m}d / {m}): daily transaction rate of the "
                f"last {s} days against that of the last {m} days; null without transactions "
                f"in {m} days"
            ),
            inputs=(tx,),
            measures=(txn_count(s), txn_count(m)),
            compute=lambda v: v.ratio(v.total(txn_count(s)) / s, v.total(txn_count(m)) / m),
            describe_missing=f"no transactions in the last {m} days",
        ),
        FeatureDef(
            name=f"txn_amount_rate_{s}d_vs_{m}d",
            family="trend",
            dtype="float64",
            aggregation="ratio",
            window_days=m,
            describe=(
                f"moving money at {{value:.0%}} of the usual pace (last {s} days against the "
                f"{m}-day average)"
            ),
            formula=(
                f"(txn_amount_{s}d / {s}) / (txn_amount_{m}d / {m}); null without transactions "
                f"in {m} days"
            ),
            inputs=(tx_amount,),
            measures=(txn_amount(s), txn_amount(m)),
            compute=lambda v: v.ratio(v.total(txn_amount(s)) / s, v.total(txn_amount(m)) / m),
            describe_missing=f"no transactions in the last {m} days",
        ),
        FeatureDef(
            name=f"txn_rate_{m}d_vs_prior_{long - m}d",
            family="trend",
            dtype="float64",
            aggregation="ratio",
            window_days=long,
            describe=(
                f"transacting at {{value:.0%}} of the pace of the {long - m} days before the "
                f"last {m}"
            ),
            formula=(
                f"(txn_count_{m}d / {m}) / ((txn_count_{long}d - txn_count_{m}d) / {long - m}): "
                f"daily rate in [as_of - {m}d, as_of) against [as_of - {long}d, as_of - {m}d); "
                "null without transactions in the earlier period"
            ),
            inputs=(tx,),
            measures=(txn_count(m), txn_count(long)),
            compute=lambda v: v.ratio(
                v.total(txn_count(m)) / m,
                (v.total(txn_count(long)) - v.total(txn_count(m))) / (long - m),
            ),
            describe_missing=f"no transactions in the {long - m} days before the last {m}",
        ),
    ]
    sessions = inputs("sessions", "ts")
    prior = m - s
    out += [
        FeatureDef(
            name=f"login_rate_{s}d_vs_prior_{prior}d",
            family="trend",
            dtype="float64",
            aggregation="ratio",
            window_days=m,
            describe=f"logging in at {{value:.0%}} of the pace of the {prior} days before",
            formula=(
                f"(login_count_{s}d / {s}) / ((login_count_{m}d - login_count_{s}d) / {prior}); "
                "null without log-ins in the earlier period"
            ),
            inputs=(sessions,),
            measures=(login_count(s), login_count(m)),
            compute=lambda v: v.ratio(
                v.total(login_count(s)) / s,
                (v.total(login_count(m)) - v.total(login_count(s))) / prior,
            ),
            describe_missing=f"no log-ins in the {prior} days before the last {s}",
        ),
        FeatureDef(
            name=f"login_decline_{s}d",
            family="trend",
            dtype="float64",
            aggregation="difference",
            window_days=m,
            describe=(
                f"{{value:.0f}} fewer log-ins in the last {s} days than the pace of the "
                f"{prior} days before"
            ),
            formula=(
                f"max(0, (login_count_{m}d - login_count_{s}d) * {s} / {prior} - "
                f"login_count_{s}d): log-ins missing against the earlier pace, 0 when not falling"
            ),
            inputs=(sessions,),
            measures=(login_count(s), login_count(m)),
            compute=lambda v: v.clip_low(
                (v.total(login_count(m)) - v.total(login_count(s))) * (s / prior)
                - v.total(login_count(s)),
                0.0,
            ),
        ),
    ]
    balances = inputs("balances", "month", "aum")
    latest = aum_latest()
    for w in (m, long):
        # the level known w days before as_of (the contract says when a balances row is known)
        before = Measure(
            f"aum_before_{w}d",
            "balances",
            start="month",
            how="latest",
            value="aum",
            delay_days=w,
        )
        out.append(
            FeatureDef(
                name=f"aum_change_{w}d",
                family="trend",
                dtype="float64",
                aggregation="change",
                window_days=w,
                describe=f"assets {{value:+.0%}} against their level more than {w} days ago",
                formula=(
                    "aum_latest / aum_then - 1, where aum_then is the newest balances reading "
                    f"known before as_of - {w} days (a month's closing balance is known from the "
                    "next month's first day); null when that reading is missing or 0"
                ),
                inputs=(balances,),
                measures=(latest, before),
                compute=lambda v, b=before: v.ratio(v.raw(latest), v.raw(b)) - 1.0,
                describe_missing=f"no asset history {w} days back",
            )
        )
    peak = Measure(
        f"aum_max_{long}d", "balances", start="month", how="max", value="aum", window_days=long
    )
    out.append(
        FeatureDef(
            name=f"aum_drawdown_{long}d",
            family="trend",
            dtype="float64",
            aggregation="change",
            window_days=long,
            describe=f"assets {{value:.0%}} below their peak of the last {long} days",
            formula=(
                "1 - aum_latest / max(aum over the balances readings known before as_of with "
                f"month >= as_of - {long} days); null when there is no reading or the peak is 0"
            ),
            inputs=(balances,),
            measures=(latest, peak),
            compute=lambda v: 1.0 - v.ratio(v.raw(latest), v.raw(peak)),
            describe_missing=f"no asset readings in the last {long} days",
        )
    )
    return out
