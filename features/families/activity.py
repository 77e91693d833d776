"""Activity: how much the customer transacts and logs in, through which channels, how recently."""

from __future__ import annotations

from features.families.common import TXN_CHANNELS, Family, Params, compared_to, inputs
from features.spec import FeatureDef, Measure

TX = "transactions"
ACTIVITY = Family("activity")


def txn_count(w: int) -> Measure:
    return Measure(f"txn_n_{w}d", TX, start="ts", window_days=w)


def txn_amount(w: int) -> Measure:
    return Measure(f"txn_amount_{w}d", TX, start="ts", value="amount", window_days=w)


def login_count(w: int) -> Measure:
    return Measure(f"login_n_{w}d", "sessions", start="ts", window_days=w)


def _against_mid(feature: str, w: int, m: int) -> dict[str, str]:
    """Set a short or long window's count against the mid window's."""
    if w == m:
        return {}
    return compared_to(f"{feature}_{m}d", f"against {{other:.0f}} in the last {m} days")


def volume_features(p: Params) -> list[FeatureDef]:
    """How many transactions, and how much money, in each window."""
    tx, m = inputs(TX, "ts"), p.mid
    counts = ACTIVITY.window_counts(
        "txn_count", txn_count, tx, "transactions",
        "number of transactions with ts in [as_of - {w} days, as_of)", p.windows,
        compare=lambda w: _against_mid("txn_count", w, m),
    )  # fmt: skip
    amounts = [
        ACTIVITY.total(
            f"txn_amount_{w}d", txn_amount(w), inputs(TX, "ts", "amount"),
            f"{{value:,.0f}} transacted in the last {w} days",
            f"sum of amount over transactions with ts in [as_of - {w} days, as_of)",
            dtype="float64", aggregation="sum",
        )
        for w in p.windows
    ]  # fmt: skip
    return counts + amounts


def flow_features(p: Params) -> list[FeatureDef]:
    """Money in and out over the mid window, and the average transaction."""
    m = p.mid
    flow = inputs(TX, "ts", "amount", "direction")
    inflow = Measure(f"txn_inflow_{m}d", TX, start="ts", value="inflow", window_days=m)
    outflow = Measure(f"txn_outflow_{m}d", TX, start="ts", value="outflow", window_days=m)
    last = f"over the last {m} days"
    return [
        ACTIVITY.total(
            f"inflow_amount_{m}d", inflow, flow, f"{{value:,.0f}} paid in {last}",
            f"sum of amount over 'in' transactions in [as_of - {m} days, as_of)",
            dtype="float64", aggregation="sum",
        ),
        ACTIVITY.total(
            f"outflow_amount_{m}d", outflow, flow, f"{{value:,.0f}} paid out {last}",
            f"sum of amount over 'out' transactions in [as_of - {m} days, as_of)",
            dtype="float64", aggregation="sum",
            **compared_to(f"inflow_amount_{m}d", "against {other:,.0f} paid in"),
        ),
        ACTIVITY.define(
            f"net_flow_{m}d", "float64", "difference", m, inputs=flow, measures=(inflow, outflow),
            describe=f"net flow of {{value:+,.0f}} {last}",
            formula=f"inflow minus outflow over transactions in [as_of - {m} days, as_of)",
            compute=lambda v: v.total(inflow) - v.total(outflow),
        ),
        ACTIVITY.define(
            f"outflow_share_{m}d", "float64", "share", m, inputs=flow, measures=(inflow, outflow),
            describe=f"{{value:.0%}} of the money moved in the last {m} days went out",
            formula=f"outflow / (inflow + outflow) in [as_of - {m} days, as_of); null without any",
            compute=lambda v: v.ratio(v.total(outflow), v.total(inflow) + v.total(outflow)),
            describe_missing=f"no money moved in the last {m} days",
        ),
        ACTIVITY.define(
            f"avg_txn_amount_{m}d", "float64", "mean", m, inputs=inputs(TX, "ts", "amount"),
            measures=(txn_amount(m), txn_count(m)),
            describe=f"average transaction of {{value:,.0f}} {last}",
            formula=f"txn_amount_{m}d / txn_count_{m}d; null without transactions",
            compute=lambda v: v.ratio(v.total(txn_amount(m)), v.total(txn_count(m))),
            describe_missing=f"no transactions in the last {m} days",
        ),
    ]  # fmt: skip


def channel_features(p: Params) -> list[FeatureDef]:
    """How recently the customer transacted, and through which channels."""
    m = p.mid
    tx_channel = inputs(TX, "ts", "channel")
    last_txn = Measure("txn_last_ts", TX, start="ts", how="max", value="ts")
    digital = Measure(f"txn_digital_{m}d", TX, start="ts", value="is_digital", window_days=m)
    channels = Measure(
        f"txn_channels_{m}d", TX, start="ts", how="bit_or", value="channel_bit", window_days=m
    )
    return [
        ACTIVITY.days_since("days_since_last_txn", last_txn, inputs(TX, "ts"), "transaction",
                            "transaction", missing="no transactions on record"),
        ACTIVITY.define(
            f"digital_txn_share_{m}d", "float64", "share", m, inputs=tx_channel,
            measures=(digital, txn_count(m)),
            describe=f"{{value:.0%}} of transactions in the last {m} days were digital",
            formula=(
                f"share of transactions in [as_of - {m} days, as_of) made in the app or on the "
                "web; null without transactions"
            ),
            compute=lambda v: v.ratio(v.total(digital), v.total(txn_count(m))),
            describe_missing=f"no transactions in the last {m} days",
        ),
        ACTIVITY.define(
            f"distinct_channels_{m}d", "int64", "distinct", m, inputs=tx_channel,
            measures=(channels,),
            describe=f"used {{value:.0f}} channel(s) in the last {m} days",
            formula=(
                f"number of distinct channels ({', '.join(TXN_CHANNELS)}) among transactions in "
                f"[as_of - {m} days, as_of)"
            ),
            compute=lambda v: v.popcount(channels, len(TXN_CHANNELS)),
        ),
    ]  # fmt: skip


def login_features(p: Params) -> list[FeatureDef]:
    """Digital log-ins: how many in the short and mid windows, and how recently."""
    sessions, m = inputs("sessions", "ts"), p.mid
    last_login = Measure("login_last_ts", "sessions", start="ts", how="max", value="ts")
    counts = ACTIVITY.window_counts(
        "login_count", login_count, sessions, "log-ins",
        "number of digital sessions with ts in [as_of - {w} days, as_of)", (p.short, m),
        compare=lambda w: _against_mid("login_count", w, m),
    )  # fmt: skip
    return [
        *counts,
        ACTIVITY.days_since("days_since_last_login", last_login, sessions, "log-in", "session",
                            missing="has never logged in"),
    ]  # fmt: skip


def features(p: Params) -> list[FeatureDef]:
    return [*volume_features(p), *flow_features(p), *channel_features(p), *login_features(p)]
