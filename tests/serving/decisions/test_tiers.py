"""Value score, value and risk tiers, the tier matrix and the special-care routing."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pandas as pd
import pytest

from keepwell.config import Config, MatrixCell, ValueInput
from serving.decisions.tiers import (
    CHANNELS,
    HUMAN_CHANNELS,
    RISK_TIERS,
    SEGMENTS,
    Decision,
    decide,
    decide_frame,
    risk_tiers,
    tier_code,
)
from serving.decisions.value import VALUE_TIERS, ValueTiers, value_scores


def with_tiers(config: Config, **update) -> Config:
    return config.model_copy(update={"tiers": config.tiers.model_copy(update=update)})


@pytest.fixture(scope="module")
def hand(config) -> Config:
    """Weights that make the hand arithmetic easy to follow."""
    return with_tiers(
        config,
        value_weights={
            "aum_latest": ValueInput(weight=1.0, transform="log1p"),
            "fee_revenue_12m": ValueInput(weight=0.5, transform="log1p"),
            "txn_count_180d": ValueInput(weight=2.0, transform="linear", cap=60),
            "aum_change_180d": ValueInput(weight=1.0, transform="linear", floor=-1, cap=1),
            "income_band": ValueInput(
                weight=3.0, transform="ordinal", levels=("low", "middle", "high", "very_high")
            ),
        },
    )


@pytest.fixture(scope="module")
def every_cell(config) -> Config:
    """A matrix whose nine cells all differ and all contact the customer."""
    matrix = {
        v.lower(): {
            r.lower(): MatrixCell(action=f"{v}/{r}", priority=1 + 3 * i + j)
            for j, r in enumerate(RISK_TIERS)
        }
        for i, v in enumerate(VALUE_TIERS)
    }
    return with_tiers(config, matrix=matrix)


# -- value score -------------------------------------------------------------------------------
def test_value_score_formula_on_hand_rows(hand):
    rows = pd.DataFrame(
        {
            "aum_latest": [math.e**2 - 1, 0.0, None, -50.0],
            "fee_revenue_12m": [math.e - 1, None, 0.0, 0.0],
            "txn_count_180d": [30, 120, 0, None],
            "aum_change_180d": [0.5, -3.0, None, 2.0],
            "income_band": ["high", "low", None, "very_high"],
            "segment": ["hnw", "retail", "retail", "retail"],  # not an input: ignored
        }
    )
    expected = [
        2.0 + 0.5 * 1.0 + 2.0 * 0.5 + 0.5 + 3.0 * 2 / 3,  # log1p(e^2-1) = 2, count 30/60
        0.0 + 0.0 + 2.0 * 1.0 - 1.0 + 0.0,  # count clipped at the cap, growth at the floor
        0.0,  # nulls add nothing
        0.0 + 0.0 + 0.0 + 1.0 + 3.0,  # negative money counts as 0, growth capped at 1
    ]
    np.testing.assert_allclose(value_scores(rows, hand), expected)


def test_value_score_of_one_row_does_not_depend_on_the_others(config, small_snapshot):
    book = value_scores(small_snapshot, config)
    for i in (0, 7, len(small_snapshot) - 1):
        alone = value_scores(small_snapshot.iloc[[i]], config)
        assert alone[0] == pytest.approx(book[i])
    assert np.isfinite(book).all()


def test_value_score_names_missing_and_unknown_inputs(hand):
    with pytest.raises(ValueError, match=r"lack column\(s\) \['income_band'\]"):
        value_scores(
            pd.DataFrame(
                {"aum_latest": [1.0], "fee_revenue_12m": [1.0], "txn_count_180d": [1]}
                | {"aum_change_180d": [0.0]}
            ),
            hand,
        )
    row = pd.DataFrame(
        {
            "aum_latest": [1.0],
            "fee_revenue_12m": [1.0],
            "txn_count_180d": [1],
            "aum_change_180d": [0.0],
            "income_band": ["enormous"],
        }
    )
    with pytest.raises(ValueError, match=r"income_band: values \['enormous'\]"):
        value_scores(row, hand)


@pytest.fixture(scope="module")
def small_snapshot(config, small_bank) -> pd.DataFrame:
    import datetime as dt

    from features.pipeline import build_snapshot_table

    build = build_snapshot_table(small_bank, [dt.date(2025, 6, 1)], config, labels=False)
    return build.to_pyarrow().to_pandas()


def test_default_weights_put_wealthy_segments_on_top(config, small_snapshot):
    scores = value_scores(small_snapshot, config)
    tiers = ValueTiers.fit(scores, config).tier(scores)
    share = pd.crosstab(small_snapshot["segment"].to_numpy(), tiers, normalize="index")
    assert share.loc["retail", "VIP"] < 0.02 < share.loc["institutional", "VIP"]
    assert share.loc["hnw", "Standard"] < 0.2 < share.loc["retail", "Standard"]


# -- value tiers -------------------------------------------------------------------------------
def test_value_tier_cuts_are_the_configured_quantiles_and_inclusive(config):
    scores = np.arange(100, dtype=float)
    tiers = ValueTiers.fit(scores, config)
    assert tiers.vip_cut == pytest.approx(np.quantile(scores, 0.95))  # 94.05
    assert tiers.priority_cut == pytest.approx(np.quantile(scores, 0.75))  # 74.25
    assert tiers.book_size == 100
    counts = pd.Series(tiers.tier(scores)).value_counts()
    assert counts.to_dict() == {"Standard": 75, "Priority": 20, "VIP": 5}
    at = [tiers.vip_cut, np.nextafter(tiers.vip_cut, -1), tiers.priority_cut]
    assert tiers.tier([*at, np.nextafter(tiers.priority_cut, -1), np.nan]).tolist() == [
        "VIP",
        "Priority",
        "Priority",
        "Standard",
        "Standard",
    ]


def test_value_tiers_round_trip_and_refuse_bad_input(config):
    tiers = ValueTiers.fit([1.0, 2.0, np.nan, 3.0, 4.0], config)
    assert tiers.book_size == 4
    assert ValueTiers.from_dict(tiers.to_dict()) == tiers
    with pytest.raises(ValueError, match="unknown keys"):
        ValueTiers.from_dict(tiers.to_dict() | {"vip": 1})
    with pytest.raises(ValueError, match="must not exceed"):
        ValueTiers(vip_cut=1.0, priority_cut=2.0)
    with pytest.raises(ValueError, match="no value scores"):
        ValueTiers.fit([np.nan], config)


# -- risk tiers --------------------------------------------------------------------------------
def test_risk_tiers_at_the_cut_points(config):
    cuts = config.tiers.risk_cut_points
    below = np.nextafter(cuts.medium.churn, 0)
    got = risk_tiers(
        [cuts.high.churn, np.nextafter(cuts.high.churn, 0), cuts.medium.churn, below, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0],
        config,
    )
    assert got.tolist() == ["High", "Medium", "Medium", "Low", "Low"]


def test_complaint_probability_alone_triggers(config):
    cuts = config.tiers.risk_cut_points
    churn = [0.0, None, 0.0, np.nan]
    complaint = [cuts.high.complaint, cuts.high.complaint, cuts.medium.complaint, None]
    assert risk_tiers(churn, complaint, config).tolist() == ["High", "High", "Medium", "Low"]


def test_null_probability_does_not_reach_and_out_of_range_is_refused(config):
    assert risk_tiers([None, None], [None, 0.99], config).tolist() == ["Low", "High"]
    assert risk_tiers(pd.Series([0.5, None], dtype="Float64"), 0.0, config).tolist() == [
        "High",
        "Low",
    ]
    with pytest.raises(ValueError, match=r"p_complaint: 1 value\(s\) outside \[0, 1\]"):
        risk_tiers([0.1], [1.5], config)


# -- matrix, channels, special care -----------------------------------------------------------
def test_every_matrix_cell(every_cell):
    for i, v in enumerate(VALUE_TIERS):
        for j, r in enumerate(RISK_TIERS):
            got = decide(v, r, "hnw", elderly=False, disabled=False, config=every_cell)
            assert got == Decision(f"{v}/{r}", "rm_call", 1 + 3 * i + j, False)


def test_default_matrix_examples(config):
    vip = decide("VIP", "High", "hnw", elderly=False, disabled=False, config=config)
    assert (vip.action, vip.channel, vip.priority) == (
        "RM call today: retention conversation",
        "rm_call",
        1,
    )
    low = decide("Standard", "Low", "retail", elderly=False, disabled=False, config=config)
    assert (low.action, low.channel) == ("no action", "none")
    priorities = [
        decide(v, r, "retail", elderly=False, disabled=False, config=config).priority
        for v in VALUE_TIERS
        for r in RISK_TIERS
    ]
    assert sorted(priorities) == list(range(1, 10))  # a strict order over the nine cells


def test_segment_strategy(every_cell):
    def channel(segment, risk):
        return decide("Standard", risk, segment, elderly=False, disabled=False, config=every_cell)

    assert {r: channel("hnw", r).channel for r in RISK_TIERS} == dict.fromkeys(
        RISK_TIERS, "rm_call"
    )
    assert [channel("retail", r).channel for r in RISK_TIERS] == [
        "call_centre",
        "e_questionnaire",
        "e_questionnaire",
    ]
    assert {channel("institutional", r).channel for r in RISK_TIERS} == {"visit"}
    # an unknown segment follows tiers.unknown_segment (retail)
    assert channel(None, "Low").channel == "e_questionnaire"
    with pytest.raises(ValueError, match=r"segment: unknown value\(s\) \['private'\]"):
        channel("private", "Low")


@pytest.mark.parametrize("disabled_channel", ["visit", None])
def test_special_care_is_always_a_person(every_cell, disabled_channel):
    care = every_cell.tiers.special_care.model_copy(update={"disabled_channel": disabled_channel})
    cfg = with_tiers(every_cell, special_care=care)
    for v, r, s, elderly, disabled in itertools.product(
        VALUE_TIERS, RISK_TIERS, SEGMENTS, (False, True), (False, True)
    ):
        d = decide(v, r, s, elderly=elderly, disabled=disabled, config=cfg)
        assert d.special_care == (elderly or disabled)
        if d.special_care:
            assert d.channel in HUMAN_CHANNELS, (v, r, s, elderly, disabled)
            if disabled and disabled_channel:
                assert d.channel == "visit"
    retail = decide("Standard", "Low", "retail", elderly=True, disabled=False, config=cfg)
    assert retail.channel == "call_centre"
    hnw = decide("VIP", "High", "hnw", elderly=False, disabled=True, config=cfg)
    assert hnw.channel == ("visit" if disabled_channel else "rm_call")


def test_no_contact_cell_stays_without_channel_for_special_care(config):
    d = decide("Standard", "Low", "retail", elderly=True, disabled=True, config=config)
    assert (d.channel, d.special_care) == ("none", True)


def test_decide_frame_equals_decide_row_by_row(config):
    rng = np.random.default_rng(5)
    n = 400
    frame = pd.DataFrame(
        {
            "value_tier": rng.choice([*VALUE_TIERS, "vip", "STANDARD"], n),
            "risk_tier": rng.choice([*RISK_TIERS, "high"], n),
            "segment": pd.Series(rng.choice([*SEGMENTS, None], n), dtype=object),
            "is_elderly": pd.Series(rng.choice([True, False, None], n), dtype=object),
            "is_disabled": rng.random(n) < 0.3,
        },
        index=pd.RangeIndex(1000, 1000 + n),
    )
    out = decide_frame(frame, config)
    assert list(out.columns) == ["action", "channel", "priority", "special_care"]
    assert out.index.equals(frame.index)
    assert set(out["channel"]) <= set(CHANNELS)
    for i, row in enumerate(frame.itertuples(index=False)):
        scalar = decide(
            row.value_tier,
            row.risk_tier,
            row.segment,
            elderly=row.is_elderly,
            disabled=row.is_disabled,
            config=config,
        )
        assert Decision(*out.iloc[i]) == scalar


def test_decide_frame_names_missing_columns_and_bad_values(config):
    frame = pd.DataFrame({"value_tier": ["VIP"], "risk_tier": ["High"], "segment": ["hnw"]})
    with pytest.raises(ValueError, match="lacks column elderly or is_elderly"):
        decide_frame(frame, config)
    frame = frame.assign(elderly=[False], disabled=[False], risk_tier=[None])
    with pytest.raises(ValueError, match=r"risk_tier: 1 null value\(s\)"):
        decide_frame(frame, config)


def test_tier_codes_match_the_api():
    from typing import get_args

    from serving.scoring.schemas import RiskTier, ValueTier

    assert tuple(tier_code(t) for t in VALUE_TIERS) == get_args(ValueTier)
    assert tuple(tier_code(t) for t in RISK_TIERS) == get_args(RiskTier)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"segment_channel": {"retail": {"high": "sms"}}}, "tiers.segment_channel.retail.high"),
        ({"value_weights": {"tenure_days": {"cap": None}}}, "a linear input needs cap > 0"),
        ({"value_weights": {"x": {"weight": 1, "transform": "ordinal"}}}, "2 or more"),
        ({"matrix": {"vip": {"high": {"action": "", "priority": 1}}}}, "tiers.matrix.vip.high"),
        ({"special_care": {"human_channel": "e_questionnaire"}}, "special_care.human_channel"),
    ],
)
def test_bad_tier_settings_name_the_key(override, named):
    from keepwell.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=re.escape(named)):
        load_config(overrides={"tiers": override})


def test_matrix_and_channels_must_be_complete(config):
    from pydantic import ValidationError

    from keepwell.config import Tiers

    data = config.tiers.model_dump()
    del data["matrix"]["standard"]["low"]
    with pytest.raises(ValidationError, match=r"matrix.standard lacks \['low'\]"):
        Tiers.model_validate(data)
    data = config.tiers.model_dump()
    del data["segment_channel"]["institutional"]
    with pytest.raises(ValidationError, match=r"segment_channel lacks \['institutional'\]"):
        Tiers.model_validate(data)
