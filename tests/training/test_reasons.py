"""Reason codes: additivity, the choice of drivers, the never-as-reason rule, sentences, no PII."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pandas as pd
import pytest

from tests.training._models import feature_frame, small_model
from training.reasons import (
    REFERENCE_KEY,
    Reason,
    ReasonTexts,
    check_additivity,
    explain,
    reference_values,
    typical_clause,
    value_format,
)


@pytest.fixture(scope="module")
def built(small_bank, config):
    frame, spec = feature_frame(small_bank, config)
    return small_model(small_bank, config), frame, spec


def _contrib(model, rows: int, cells: dict[str, float], bias: float = -2.0) -> np.ndarray:
    """A contributions matrix that is zero except for the named features (same in every row)."""
    out = np.zeros((rows, len(model.features) + 1))
    out[:, -1] = bias
    for name, value in cells.items():
        out[:, model.features.index(name)] = value
    return out


# -- additivity ---------------------------------------------------------------------------------
def test_contributions_add_up_to_the_margin(built):
    model, frame, _ = built
    assert check_additivity(model, frame) < 1e-9
    contrib = model.contributions(frame)
    assert contrib.shape == (len(frame), len(model.features) + 1)
    np.testing.assert_allclose(contrib.sum(axis=1), model.margin(frame), rtol=1e-9, atol=1e-9)


def test_check_additivity_fails_when_the_sums_do_not_match(built):
    model, frame, _ = built

    class Shifted:  # the same model whose margin is off by 0.1: additivity must fail
        target = model.target
        contributions = staticmethod(model.contributions)

        @staticmethod
        def margin(f):
            return model.margin(f) + 0.1

    with pytest.raises(ValueError, match="do not add up"):
        check_additivity(Shifted(), frame.head(20))


# -- which drivers ------------------------------------------------------------------------------
def test_reasons_are_the_largest_allowed_raising_contributions(built, config):
    model, frame, spec = built
    never = set(config.reasons.never_as_reason)
    sample = frame.head(300)
    contrib = model.contributions(sample)
    reasons = explain(model, sample, spec, top_k=3, never_as_reason=never)
    assert len(reasons) == len(sample)
    assert sum(map(len, reasons)) > len(sample)  # most rows have several reasons
    for i, row in enumerate(reasons):
        expected = sorted(
            ((c, f) for f, c in zip(model.features, contrib[i, :-1], strict=True)
             if c > 0 and f not in never and f in spec),
            reverse=True,
        )[:3]  # fmt: skip
        assert [r.feature for r in row] == [f for _, f in expected]
        assert [r.contribution for r in row] == pytest.approx([c for c, _ in expected])
        assert all(r.direction == "raises" for r in row)


def test_precomputed_contributions_give_the_same_reasons(built, config):
    model, frame, spec = built
    sample = frame.head(200)
    never = config.reasons.never_as_reason
    direct = explain(model, sample, spec, top_k=3, never_as_reason=never)
    given = explain(
        model, sample, spec, top_k=3, never_as_reason=never,
        contributions=model.contributions(sample),
    )  # fmt: skip
    assert given == direct


def test_never_as_reason_holds_even_when_only_forbidden_features_raise_the_risk(built, config):
    model, frame, spec = built
    never = config.reasons.never_as_reason
    forbidden = [f for f in model.features if f in never]
    assert {"age_years", "is_elderly", "is_disabled", "kind"} <= set(forbidden)
    sample = frame.head(4)
    only_forbidden = _contrib(model, 4, {f: 1.0 for f in forbidden} | {"tenure_days": -0.5})
    assert explain(
        model, sample, spec, top_k=3, never_as_reason=never, contributions=only_forbidden
    ) == [[], [], [], []]
    one_allowed = _contrib(model, 4, {f: 2.0 for f in forbidden} | {"tenure_days": 0.1})
    reasons = explain(
        model, sample, spec, top_k=3, never_as_reason=never, contributions=one_allowed
    )
    assert [[r.feature for r in row] for row in reasons] == [["tenure_days"]] * 4
    # without the rule the forbidden features would have been the reasons
    unguarded = explain(model, sample, spec, top_k=3, never_as_reason=(), contributions=one_allowed)
    assert {r.feature for r in unguarded[0]} <= set(forbidden)


def test_no_padding_with_risk_lowering_drivers_unless_asked(built):
    model, frame, spec = built
    sample = frame.head(3)
    contrib = _contrib(
        model, 3, {"txn_count_30d": 0.4, "days_since_last_login": -0.9, "tenure_days": -0.2}
    )
    raising = explain(model, sample, spec, top_k=3, never_as_reason=(), contributions=contrib)
    assert [[r.feature for r in row] for row in raising] == [["txn_count_30d"]] * 3
    both = explain(
        model, sample, spec, top_k=3, never_as_reason=(), contributions=contrib,
        include_lowering=True,
    )  # fmt: skip
    assert [(r.feature, r.direction) for r in both[0]] == [
        ("days_since_last_login", "lowers"),
        ("txn_count_30d", "raises"),
        ("tenure_days", "lowers"),
    ]
    assert both[0][0].contribution == pytest.approx(-0.9)


def test_features_the_spec_does_not_describe_are_never_reasons(built):
    model, frame, spec = built
    texts = ReasonTexts.from_spec(spec.select([f for f in spec.names if f != "txn_count_30d"]))
    contrib = _contrib(model, 2, {"txn_count_30d": 1.0, "tenure_days": 0.1})
    head = frame.head(2)
    reasons = explain(model, head, texts, top_k=3, never_as_reason=(), contributions=contrib)
    assert [[r.feature for r in row] for row in reasons] == [["tenure_days"]] * 2


def test_contributions_of_the_wrong_shape_are_an_error(built):
    model, frame, spec = built
    with pytest.raises(ValueError, match=r"shape \(5, 58\).*got \(5, 57\)"):
        explain(
            model, frame.head(5), spec, top_k=3, never_as_reason=(),
            contributions=np.zeros((5, len(model.features))),
        )  # fmt: skip


def test_explaining_100k_rows_costs_seconds_beyond_treeshap(built, config):
    model, frame, spec = built
    big = pd.concat([frame] * (100_000 // len(frame) + 1), ignore_index=True).head(100_000)
    rng = np.random.default_rng(5)
    contrib = rng.normal(0.0, 0.2, size=(len(big), len(model.features) + 1))
    start = time.perf_counter()
    reasons = explain(
        model, big, spec, top_k=3, never_as_reason=config.reasons.never_as_reason,
        contributions=contrib,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    assert len(reasons) == 100_000 and all(len(r) == 3 for r in reasons[:1000])
    assert seconds < 15, f"explaining 100,000 rows took {seconds:.1f} s beyond TreeSHAP"


# -- sentences ----------------------------------------------------------------------------------
def test_sentences_use_the_comparison_or_the_typical_value(built):
    model, frame, spec = built
    reference = model.extra[REFERENCE_KEY]
    row = frame.head(1).copy()
    row["txn_count_30d"] = 2
    row["txn_count_90d"] = 9
    row["days_since_last_login"] = 45.0
    row["segment"] = "hnw"
    contrib = _contrib(
        model, 1, {"txn_count_30d": 0.9, "days_since_last_login": 0.5, "segment": 0.2}
    )
    reasons = explain(model, row, spec, top_k=3, never_as_reason=(), contributions=contrib)[0]
    by_feature = {r.feature: r for r in reasons}
    # a compare_to partner: the comparison, no typical value
    assert by_feature["txn_count_30d"].sentence == (
        "2 transactions in the last 30 days, against 9 in the last 90 days"
    )
    assert by_feature["txn_count_30d"].value == 2
    # no partner: the book's median, formatted like the value
    median = reference["days_since_last_login"]["median"]
    assert by_feature["days_since_last_login"].sentence == (
        f"last log-in 45 days ago (typical customer: {median:.0f})"
    )
    # a category: the share of training rows at that level
    share = reference["segment"]["shares"]["hnw"]
    assert by_feature["segment"].sentence == f"hnw segment ({share:.0%} of customers)"
    assert [r.feature for r in reasons] == ["txn_count_30d", "days_since_last_login", "segment"]


def test_typical_value_is_left_out_when_it_reads_the_same(built):
    _, _, spec = built
    words = spec["days_since_last_login"]
    assert typical_clause(words, 6, {"median": 6.2}) == ""
    assert typical_clause(words, 45, {"median": 6.2}) == " (typical customer: 6)"
    assert typical_clause(words, None, {"median": 6.2}) == ""
    assert typical_clause(spec["aum_change_90d"], -0.3, {"median": 0.01}) == (
        " (typical customer: +1%)"
    )


def test_missing_values_read_as_the_spec_says(built):
    model, frame, spec = built
    row = frame.head(1).copy()
    row["days_since_last_login"] = np.nan
    contrib = _contrib(model, 1, {"days_since_last_login": 0.7})
    (reason,) = explain(model, row, spec, top_k=3, never_as_reason=(), contributions=contrib)[0]
    assert reason.value is None
    assert reason.sentence == "has never logged in"


def test_reason_texts_speak_exactly_like_the_spec(built):
    model, frame, spec = built
    texts = ReasonTexts.from_dict(json.loads(json.dumps(ReasonTexts.from_spec(spec).to_dict())))
    assert texts.names == spec.names
    sample = frame.head(40)
    for name in spec.names:
        for _, row in sample.iterrows():
            value = row[name]
            assert texts.describe(name, value, row) == spec.describe(name, value, row), name
    spec_reasons = explain(model, sample, spec, top_k=3, never_as_reason=("kind",))
    text_reasons = explain(model, sample, texts, top_k=3, never_as_reason=("kind",))
    assert text_reasons == spec_reasons


def test_reasons_are_json_safe_and_carry_no_pii(built, small_bank):
    model, frame, spec = built
    customers = pd.read_parquet(small_bank / "customers.parquet")
    assert not {"name", "phone", "birth_date"} & set(model.features)
    assert not {"name", "phone", "birth_date"} & set(spec.names)
    reasons = explain(
        model, frame, spec, top_k=len(model.features), never_as_reason=(),
        include_lowering=True,
    )  # fmt: skip
    cells = [r.to_dict() for row in reasons for r in row]
    assert len(cells) > 20 * len(frame)
    json.dumps(cells, allow_nan=False)  # JSON-safe: no NaN, no numpy scalars
    assert all(set(c) == {"feature", "value", "direction", "contribution", "sentence"}
               for c in cells)  # fmt: skip
    assert all(isinstance(c["value"], float | int | str | bool | type(None)) for c in cells)
    # no value is a PII value, and no sentence holds a name, phone, birth date or customer id
    secrets = {str(v) for col in ("name", "phone", "birth_date", "customer_id")
               for v in customers[col].dropna()}  # fmt: skip
    assert not {str(c["value"]) for c in cells} & secrets
    text = "\n".join({c["sentence"] for c in cells})
    name_words = {w for name in customers["name"] for w in name.split()}
    assert not set(re.findall(r"[A-Za-z]+", text)) & name_words
    for pattern in (r"\+\d{2} \d{4}", r"\d{4}-\d{2}-\d{2}", r"C\d{8}"):
        assert not re.search(pattern, text), pattern


# -- helpers ------------------------------------------------------------------------------------
def test_value_format_extracts_the_format_spec():
    assert value_format("{value:,.0f} transacted in the last 30 days") == ",.0f"
    assert value_format("assets {value:+.0%} against their level") == "+.0%"
    assert value_format("{value} segment") == ""
    assert value_format("no value here") is None


def test_reference_values_are_medians_and_shares():
    frame = pd.DataFrame(
        {
            "n": [1, 2, 3, 100],
            "x": [np.nan, 1.0, 3.0, np.nan],
            "empty": [np.nan] * 4,
            "flag": [True, False, True, True],
            "level": pd.Series(["a", "b", "a", None], dtype="object"),
        }
    )
    ref = reference_values(frame, ["n", "x", "empty", "flag", "level"])
    assert ref["n"] == {"median": 2.5}
    assert ref["x"] == {"median": 2.0}
    assert ref["empty"] == {"median": None}
    assert ref["flag"] == {"shares": {"True": 0.75, "False": 0.25}}
    assert ref["level"]["shares"] == pytest.approx({"a": 2 / 3, "b": 1 / 3})
    json.dumps(ref, allow_nan=False)
    with pytest.raises(KeyError, match="nope"):
        reference_values(frame, ["n", "nope"])


def test_reason_to_dict_round_trips_through_json():
    reason = Reason("txn_count_30d", 2, "raises", 0.25, "2 transactions in the last 30 days")
    assert json.loads(json.dumps(reason.to_dict())) == {
        "feature": "txn_count_30d",
        "value": 2,
        "direction": "raises",
        "contribution": 0.25,
        "sentence": "2 transactions in the last 30 days",
    }
