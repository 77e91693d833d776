"""The API models: strict requests, a row model generated from the feature spec, error bodies."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from features.definitions import default_spec
from features.pipeline import build_snapshot_table
from serving.scoring.schemas import (
    MAX_IDS_PER_REQUEST,
    ErrorBody,
    Reason,
    ScoredCustomer,
    ScoreRequest,
    ScoreResponse,
    error_body,
    feature_bounds,
    feature_names,
    feature_row_model,
    feature_rows_request_model,
)


@pytest.fixture(scope="module")
def spec(config):
    return default_spec(config)


@pytest.fixture(scope="module")
def rows_model(spec) -> type[BaseModel]:
    return feature_rows_request_model(spec)


def valid_row(spec, customer_id: str = "C1") -> dict[str, Any]:
    """One row that satisfies every field: the lower bound (or a typical value) of each."""
    categorical = {"segment": "retail", "kind": "individual", "income_band": "middle"}
    row: dict[str, Any] = {"customer_id": customer_id}
    for f in spec:
        low, high = feature_bounds(f)
        if f.dtype == "boolean":
            row[f.name] = False
        elif f.dtype == "string":
            row[f.name] = categorical[f.name]
        elif f.dtype == "int64":
            row[f.name] = int(low) if low is not None else 3
        else:
            row[f.name] = (low + high) / 2 if low is not None and high is not None else 2.5
    return row


def errors_of(model: type[BaseModel], payload: Any) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        model.model_validate_json(json.dumps(payload))
    return info.value.errors()


def locs(errors: list[dict[str, Any]]) -> list[str]:
    return [".".join(str(p) for p in e["loc"]) for e in errors]


# -- ScoreRequest -----------------------------------------------------------------------------


def test_score_request_accepts_ids_in_order():
    req = ScoreRequest.model_validate_json('{"customer_ids": ["C2", "C1", "x.y:z-1_2"]}')
    assert req.customer_ids == ["C2", "C1", "x.y:z-1_2"]


def test_more_than_1000_ids_are_rejected_with_the_count():
    ids = [f"C{i}" for i in range(MAX_IDS_PER_REQUEST + 1)]
    errors = errors_of(ScoreRequest, {"customer_ids": ids})
    assert [e["type"] for e in errors] == ["too_long"]
    assert "1000" in errors[0]["msg"] and "1001" in errors[0]["msg"]
    ScoreRequest(customer_ids=ids[:-1])  # exactly 1000 is fine


@pytest.mark.parametrize(
    ("ids", "kind"),
    [
        ([], "too_short"),
        ([""], "string_too_short"),
        (["x" * 65], "string_too_long"),
        (["Ann Smith"], "string_pattern_mismatch"),
        (["C1; DROP TABLE"], "string_pattern_mismatch"),
        ([1], "string_type"),
    ],
)
def test_bad_ids_are_rejected(ids, kind):
    errors = errors_of(ScoreRequest, {"customer_ids": ids})
    assert kind in [e["type"] for e in errors]


def test_duplicate_ids_are_rejected_and_named():
    errors = errors_of(ScoreRequest, {"customer_ids": ["C1", "C2", "C1"]})
    assert locs(errors) == ["customer_ids"]
    assert "1 id(s) are repeated" in errors[0]["msg"] and "C1" not in errors[0]["msg"]


def test_unknown_request_field_is_rejected():
    errors = errors_of(ScoreRequest, {"customer_ids": ["C1"], "explain": True})
    assert [(e["type"], locs([e])[0]) for e in errors] == [("extra_forbidden", "explain")]


def test_a_single_id_string_is_not_coerced_to_a_list():
    errors = errors_of(ScoreRequest, {"customer_ids": "C1"})
    assert errors[0]["type"] == "list_type"


# -- feature rows -----------------------------------------------------------------------------


def test_row_model_has_one_field_per_feature_in_spec_order(spec):
    row = feature_row_model(spec)
    assert feature_names(row) == spec.names
    assert len(row.model_fields) == len(spec) + 1
    for f in spec:
        description = row.model_fields[f.name].description
        assert f.formula in description and f.describe in description


def test_row_model_is_cached_per_spec(spec, config):
    assert feature_row_model(spec) is feature_row_model(default_spec(config))
    smaller = spec.select(spec.names[:5])
    assert feature_names(feature_row_model(smaller)) == spec.names[:5]


def test_a_valid_row_passes(spec, rows_model):
    request = rows_model.model_validate_json(json.dumps({"rows": [valid_row(spec)]}))
    assert request.rows[0].txn_count_30d == 0
    assert request.rows[0].segment == "retail"


def test_true_is_not_a_float(spec, rows_model):
    row = valid_row(spec) | {"txn_amount_30d": True}
    errors = errors_of(rows_model, {"rows": [row]})
    assert locs(errors) == ["rows.0.txn_amount_30d"]
    assert errors[0]["type"] == "float_type"


def test_a_string_is_not_an_int_and_a_float_is_not_an_int(spec, rows_model):
    row = valid_row(spec) | {"txn_count_30d": "1", "txn_count_90d": 2.0}
    errors = errors_of(rows_model, {"rows": [row]})
    assert locs(errors) == ["rows.0.txn_count_30d", "rows.0.txn_count_90d"]


def test_an_int_is_a_float_and_a_number_is_not_a_bool(spec, rows_model):
    ok = valid_row(spec) | {"txn_amount_30d": 12}
    rows_model.model_validate_json(json.dumps({"rows": [ok]}))
    errors = errors_of(rows_model, {"rows": [valid_row(spec) | {"is_disabled": 1}]})
    assert [(locs([e])[0], e["type"]) for e in errors] == [("rows.0.is_disabled", "bool_type")]


def test_every_missing_feature_is_named(spec, rows_model):
    row = valid_row(spec)
    del row["txn_count_30d"], row["income_band"]
    errors = errors_of(rows_model, {"rows": [valid_row(spec, "C0"), row]})
    assert sorted(locs(errors)) == ["rows.1.income_band", "rows.1.txn_count_30d"]
    assert {e["type"] for e in errors} == {"missing"}


def test_null_is_accepted_only_where_the_spec_gives_it_a_meaning(spec, rows_model):
    nullable = valid_row(spec) | {"days_since_last_txn": None, "income_band": None}
    rows_model.model_validate_json(json.dumps({"rows": [nullable]}))
    errors = errors_of(rows_model, {"rows": [valid_row(spec) | {"txn_count_30d": None}]})
    assert locs(errors) == ["rows.0.txn_count_30d"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("txn_count_30d", -1),
        ("outflow_share_90d", 1.5),
        ("risk_tolerance", 6),
        ("risk_tolerance", 0),
        ("last_satisfaction_score", 0.5),
        ("aum_change_90d", -1.2),
        ("days_since_last_txn", -3),
        ("segment", "gold"),
        ("income_band", "LOW"),
    ],
)
def test_out_of_range_values_are_named(spec, rows_model, field, value):
    errors = errors_of(rows_model, {"rows": [valid_row(spec) | {field: value}]})
    assert locs(errors) == [f"rows.0.{field}"]


def test_unknown_feature_and_duplicate_rows_are_rejected(spec, rows_model):
    errors = errors_of(rows_model, {"rows": [valid_row(spec) | {"txn_count_7d": 1}]})
    assert [(locs([e])[0], e["type"]) for e in errors] == [
        ("rows.0.txn_count_7d", "extra_forbidden")
    ]
    errors = errors_of(rows_model, {"rows": [valid_row(spec, "C1"), valid_row(spec, "C1")]})
    assert locs(errors) == ["rows"] and "1 id(s) are repeated" in errors[0]["msg"]


def test_row_count_is_limited(spec, rows_model):
    assert errors_of(rows_model, {"rows": []})[0]["type"] == "too_short"
    rows = [valid_row(spec, f"C{i}") for i in range(MAX_IDS_PER_REQUEST + 1)]
    errors = errors_of(rows_model, {"rows": rows})
    assert [e["type"] for e in errors] == ["too_long"] and "1001" in errors[0]["msg"]


def test_bounds_hold_on_a_real_demo_snapshot(small_bank, config, spec, rows_model):
    """Every bound is true of real data: a whole demo-bank snapshot validates, and is not empty."""
    build = build_snapshot_table(small_bank, [dt.date(2025, 6, 1)], config, labels=False)
    assert build.spec.names == spec.names
    records = build.to_pyarrow().select(["customer_id", *spec.names]).to_pylist()
    assert len(records) > 1000
    for start in range(0, len(records), MAX_IDS_PER_REQUEST):
        chunk = records[start : start + MAX_IDS_PER_REQUEST]
        rows_model.model_validate_json(json.dumps({"rows": chunk}))


def test_bentoml_wrapping_keeps_the_models_strict(spec, rows_model):
    """BentoML wraps an input model in its IO descriptor; strictness must survive the wrapping."""
    from _bentoml_sdk.io_models import ensure_io_descriptor

    wrapped_ids = ensure_io_descriptor(ScoreRequest)
    with pytest.raises(ValidationError):
        wrapped_ids.model_validate_json('{"customer_ids": ["C1"], "extra": 1}')
    wrapped_rows = ensure_io_descriptor(rows_model)
    bad = valid_row(spec) | {"txn_amount_30d": True}
    with pytest.raises(ValidationError):
        wrapped_rows.model_validate_json(json.dumps({"rows": [bad]}))
    wrapped_rows.model_validate_json(json.dumps({"rows": [valid_row(spec)]}))


# -- responses and errors ---------------------------------------------------------------------


def scored(**overrides: Any) -> ScoredCustomer:
    values: dict[str, Any] = {
        "customer_id": "C1",
        "found": True,
        "churn_probability": 0.31,
        "complaint_probability": 0.05,
        "risk_tier": "high",
        "value_tier": "vip",
        "reasons": [
            Reason(
                feature="txn_count_30d",
                value=2,
                direction="raises",
                sentence="2 transactions in the last 30 days",
            ),
            Reason(feature="is_disabled", value=False, direction="lowers", sentence="x"),
            Reason(feature="segment", value="hnw", direction="lowers", sentence="hnw segment"),
        ],
        "action": "callback",
        "channel": "rm_call",
        "callback_due": dt.date(2025, 6, 8),
        "callback_rule": "post_sale",
        "priority": 1,
        "model_versions": {"churn": "3", "complaint": "2"},
        "features_as_of": dt.date(2025, 6, 1),
    }
    return ScoredCustomer(**(values | overrides))


def test_score_response_round_trips_through_json():
    unknown = ScoredCustomer(
        customer_id="C9", found=False, error="unknown customer_id", model_versions={"churn": "3"}
    )
    response = ScoreResponse(results=[scored(), unknown])
    text = response.model_dump_json()
    assert ScoreResponse.model_validate_json(text) == response
    assert ScoreResponse.model_validate(json.loads(text)) == response  # a client's parsed dict
    reasons = json.loads(text)["results"][0]["reasons"]
    assert [r["value"] for r in reasons] == [2, False, "hnw"]  # types survive
    assert json.loads(text)["results"][0]["callback_due"] == "2025-06-08"


@pytest.mark.parametrize(
    "overrides",
    [
        {"found": False},  # not found needs an error and no scores
        {"error": "unknown"},  # found with an error
        {"churn_probability": None},
        {"churn_probability": 1.2},
        {"callback_rule": None},  # a due date without its rule
        {"reasons": [Reason(feature="a", value=1, direction="raises", sentence="s")] * 4},
        {"priority": 0},
    ],
)
def test_inconsistent_results_are_refused(overrides):
    with pytest.raises(ValidationError):
        scored(**overrides)


def test_error_body_names_fields_without_echoing_values(spec, rows_model):
    secret = "Ann Smith +44 7700 900123"
    row = valid_row(spec) | {"segment": secret, "txn_count_30d": -1}
    del row["kind"]
    with pytest.raises(ValidationError) as info:
        rows_model.model_validate_json(json.dumps({"rows": [row]}))
    body = error_body(info.value.errors())
    assert isinstance(body, ErrorBody) and body.error == "invalid_request"
    assert sorted(f.field for f in body.fields) == [
        "rows.0.kind",
        "rows.0.segment",
        "rows.0.txn_count_30d",
    ]
    assert "3 invalid field(s)" in body.detail
    assert secret not in body.model_dump_json()


def test_error_body_caps_the_field_list(spec, rows_model):
    rows = [valid_row(spec, f"C{i}") | {"txn_count_30d": -1} for i in range(80)]
    with pytest.raises(ValidationError) as info:
        rows_model.model_validate_json(json.dumps({"rows": rows}))
    body = error_body(info.value.errors(), limit=10)
    assert len(body.fields) == 10 and body.detail.startswith("80 invalid field(s)")
    assert "and 75 more" in body.detail
