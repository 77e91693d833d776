"""Activity: how much the customer transacts and logs in, through which channels, how recently."""

from __future__ import annotations

from features.families.common import TXN_CHANNELS, Params, inputs, total_of
from features.spec import FeatureDef, Measure

TX = "transactions"


def txn_count(w: int) -> Measure:
    return Measure(f"txn_n_{w}d", TX, start="ts", window_days=w)


def txn_amount(w: int) -> Measure:
    return Measure(f"txn_amount_{w}d", TX, start="ts", value="amount", window_days=w)


def login_count(w: int) -> Measure:
    return Measure(f"login_n_{w}d", "sessions", start="ts", window_days=w)


def features(p: Params) -> list[FeatureDef]:
    tx = inputs(TX, "ts")
    tx_amount = inputs(TX, "ts", "amount")
    tx_flow = inputs(TX, "ts", "amount", "direction")
    tx_channel = inputs(TX, "ts", "channel")
    m = p.mid
    out: list[FeatureDef] = []
    for w in p.windows:
        compare = {}
        if w != m:
            compare = {
                "compare_to": f"txn_count_{m}d",
                "compare_text": f"against {{other:.0f}} in the last {m} days",
            }
        out.append(
            FeatureDef(
                name=f"txn_count_{w}d",
                family="activity",
                dtype="int64",
                aggregation="count",
                window_days=w,
                describe=f"{{value:.0f}} transactions in the last {w} days",
                formula=f"number of transactions with ts in [as_of - {w} days, as_of)",
                inputs=(tx,),
                measures=(txn_count(w),),
                compute=total_of(txn_count(w)),
                **compare,
            )
        )
    for w in p.windows:
        out.append(
            FeatureDef(
                name=f"txn_amount_{w}d",
                family="activity",
                dtype="float64",
                aggregation="sum",
                window_days=w,
                describe=f"{{value:,.0f}} transacted in the last {w} days",
                formula=f"sum of amount over transactions with ts in [as_of - {w} days, as_of)",
                inputs=(tx_amount,),
                measures=(txn_amount(w),),
                compute=total_of(txn_amount(w)),
            )
        )
    inflow = Measure(f"txn_inflow_{m}d", TX, start="ts", value="inflow", window_days=m)
    outflow = Measure(f"txn_outflow_{m}d", TX, start="ts", value="outflow", window_days=m)
    out += [
        FeatureDef(
            name=f"inflow_amount_{m}d",
            family="activity",
            dtype="float64",
            aggregation="sum",
            window_days=m,
            describe=f"{{value:,.0f}} paid in over the last {m} days",
            formula=f"sum of amount over 'in' transactions in [as_of - {m} days, as_of)",
            inputs=(tx_flow,),
            measures=(inflow,),
            compute=lambda v: v.total(inflow),
        ),
        FeatureDef(
            name=f"outflow_amount_{m}d",
            family="activity",
            dtype="float64",
            aggregation="sum",
            window_days=m,
            describe=f"{{value:,.0f}} paid out over the last {m} days",
            formula=f"sum of amount over 'out' transactions in [as_of - {m} days, as_of)",
            inputs=(tx_flow,),
            measures=(outflow,),
            compute=lambda v: v.total(outflow),
            compare_to=f"inflow_amount_{m}d",
            compare_text="against {other:,.0f} paid in",
        ),
        FeatureDef(
            name=f"net_flow_{m}d",
            family="activity",
            dtype="float64",
            aggregation="difference",
            window_days=m,
            describe=f"net flow of {{value:+,.0f}} over the last {m} days",
            formula=f"inflow minus outflow over transactions in [as_of - {m} days, as_of)",
            inputs=(tx_flow,),
            measures=(inflow, outflow),
            compute=lambda v: v.total(inflow) - v.total(outflow),
        ),
        FeatureDef(
            name=f"outflow_share_{m}d",
            family="activity",
            dtype="float64",
            aggregation="share",
            window_days=m,
            describe=f"{{value:.0%}} of the money moved in the last {m} days went out",
            formula=f"outflow / (inflow + outflow) in [as_of - {m} days, as_of); null without any",
            inputs=(tx_flow,),
            measures=(inflow, outflow),
            compute=lambda v: v.ratio(v.total(outflow), v.total(inflow) + v.total(outflow)),
            describe_missing=f"no money moved in the last {m} days",
        ),
        FeatureDef(
            name=f"avg_txn_amount_{m}d",
            family="activity",
            dtype="float64",
            aggregation="mean",
            window_days=m,
            describe=f"average transaction of {{value:,.0f}} over the last {m} days",
            formula=f"txn_amount_{m}d / txn_count_{m}d; null without transactions",
            inputs=(tx_amount,),
            measures=(txn_amount(m), txn_count(m)),
            compute=lambda v: v.ratio(v.total(txn_amount(m)), v.total(txn_count(m))),
            describe_missing=f"no transactions in the last {m} days",
        ),
    ]
    last_txn = Measure("txn_last_ts", TX, start="ts", how="max", value="ts")
    out.append(
        FeatureDef(
            name="days_since_last_txn",
            family="activity",
            dtype="int64",
            aggregation="days_since",
            window_days=None,
            describe="last transaction {value:.0f} days ago",
            formula="as_of minus the UTC date of the newest transaction before as_of, in days",
            inputs=(tx,),
            measures=(last_txn,),
            compute=lambda v: v.days_since(last_txn),
            describe_missing="no transactions on record",
        )
    )
    digital = Measure(f"txn_digital_{m}d", TX, start="ts", value="is_digital", window_days=m)
    channels = Measure(
        f"txn_channels_{m}d", TX, start="ts", how="bit_or", value="channel_bit", window_days=m
    )
    out += [
        FeatureDef(
            name=f"digital_txn_share_{m}d",
            family="activity",
            dtype="float64",
            aggregation="share",
            window_days=m,
            describe=f"{{value:.0%}} of transactions in the last {m} days were digital",
            formula=(
                f"share of transactions in [as_of - {m} days, as_of) made in the app or on the "
                "web; null without transactions"
            ),
            inputs=(tx_channel,),
            measures=(digital, txn_count(m)),
            compute=lambda v: v.ratio(v.total(digital), v.total(txn_count(m))),
            describe_missing=f"no transactions in the last {m} days",
        ),
        FeatureDef(
            name=f"distinct_channels_{m}d",
            family="activity",
            dtype="int64",
            aggregation="distinct",
            window_days=m,
            describe=f"used {{value:.0f}} channel(s) in the last {m} days",
            formula=(
                f"number of distinct channels ({', '.join(TXN_CHANNELS)}) among transactions in "
                f"[as_of - {m} days, as_of)"
            ),
            inputs=(tx_channel,),
            measures=(channels,),
            compute=lambda v: v.popcount(channels, len(TXN_CHANNELS)),
        ),
    ]
    sessions = inputs("sessions", "ts")
    s = p.short
    out += [
        FeatureDef(
            name=f"login_count_{w}d",
            family="activity",
            dtype="int64",
            aggregation="count",
            window_days=w,
            describe=f"{{value:.0f}} log-ins in the last {w} days",
            formula=f"number of digital sessions with ts in [as_of - {w} days, as_of)",
            inputs=(sessions,),
            measures=(login_count(w),),
            compute=total_of(login_count(w)),
            **(
                {
                    "compare_to": f"login_count_{m}d",
                    "compare_text": f"against {{other:.0f}} in the last {m} days",
                }
                if w != m
                else {}
            ),
        )
        for w in (s, m)
    ]
    last_login = Measure("login_last_ts", "sessions", start="ts", how="max", value="ts")
    out.append(
        FeatureDef(
            name="days_since_last_login",
            family="activity",
            dtype="int64",
            aggregation="days_since",
            window_days=None,
            describe="last log-in {value:.0f} days ago",
            formula="as_of minus the UTC date of the newest session before as_of, in days",
            inputs=(sessions,),
            measures=(last_login,),
            compute=lambda v: v.days_since(last_login),
            describe_missing="has never logged in",
        )
    )
    return out
