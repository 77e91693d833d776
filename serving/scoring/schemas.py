"""The scoring API's request and response models (pydantic v2), documented in the OpenAPI page.

Request models are strict (`extra="forbid"`, `strict=True`): JSON `true` is not a number, `"1"`
is not an integer, an unknown field is an error, so a CRM that sends the wrong thing hears about
it in a 422 that names the field instead of getting a score for something it did not mean.

* `ScoreRequest` - `POST /score`: 1 to 1,000 distinct customer ids.
* `feature_rows_request_model(spec)` - `POST /score/features`: rows of feature values sent by
  the caller. The row model is generated from the feature spec (`features.spec`), one typed,
  described, range-checked field per feature, so the API cannot drift from the features the
  models were trained on, and every missing or out-of-range field is named in the 422.
* `ScoredCustomer` / `ScoreResponse` - one result per requested id, in request order; an unknown
  id is a result with `found=false` and an `error`, not a failed request.
* `ErrorBody` - the JSON body of every 4xx: `{"error": code, "detail": message, "fields": [...]}`.

Identifiers (customer, RM, API key) are pseudonymous codes matching `ID_PATTERN`; names and phone
numbers appear in no model here. Error helpers never echo a rejected value (it might be PII sent by
mistake), only where it was and what was wrong.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    model_validator,
)

from keepwell.contract.schemas import INCOME_BANDS, KINDS, SEGMENTS
from keepwell.words import ID_MAX_LENGTH, ID_PATTERN, CallbackRule, Channel, RiskTier, ValueTier

if TYPE_CHECKING:
    from features.spec import FeatureDef, FeatureSpec

MAX_IDS_PER_REQUEST = 1000
MAX_REASONS = 3
MAX_ERROR_FIELDS = 50  # an ErrorBody lists at most this many fields, then says how many more

ErrorCode = Literal[
    "unauthorized",  # 401: no or unknown/revoked key
    "forbidden",  # 403: the key's role may not score this customer or use this endpoint
    "not_found",  # 404
    "payload_too_large",  # 413: body over the size limit
    "invalid_request",  # 422: the body does not match the request model
    "unsupported_media_type",  # 415: not application/json
    "request_timeout",  # 408: the body stalled (see serving.http.paths.BODY_READ_TIMEOUT)
    "unavailable",  # 503: models or feature store not loaded
]

Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN),
    Field(description="A pseudonymous code: letters, digits, '_', '.', ':' or '-'."),
]

STRICT = ConfigDict(extra="forbid", strict=True)
# Responses are produced by us: no unknown fields, but dates may be read back from JSON strings
# by clients that validate a parsed dict (strict Python mode would refuse "2025-01-01").
RESPONSE = ConfigDict(extra="forbid")


def _unique(ids: list[str]) -> list[str]:
    """Refuse repeated ids: results map one to one onto the request, in order."""
    seen: set[str] = set()
    repeated: list[str] = []
    for i in ids:
        if i in seen and i not in repeated:
            repeated.append(i)
        seen.add(i)
    if repeated:  # counted, not shown: a repeated "id" may be a name sent by mistake
        raise ValueError(f"customer ids must be unique; {len(repeated)} id(s) are repeated")
    return ids


class ScoreRequest(BaseModel):
    """`POST /score`: the customers to score, by id."""

    model_config = STRICT

    customer_ids: Annotated[
        list[Identifier],
        Field(
            min_length=1,
            max_length=MAX_IDS_PER_REQUEST,
            description=f"1 to {MAX_IDS_PER_REQUEST:,} distinct customer ids.",
            examples=[["C00000001", "C00000002"]],
        ),
        AfterValidator(_unique),
    ]


class Reason(BaseModel):
    """One of the few features that moved this customer's risk most, in an RM's words."""

    model_config = RESPONSE

    feature: str = Field(description="Feature name, e.g. txn_count_30d.")
    value: float | int | bool | str | None = Field(description="The customer's value (null: none).")
    direction: Literal["raises", "lowers"] = Field(description="Whether it raises or lowers risk.")
    sentence: str = Field(description="Plain-language sentence for the RM.")


class ScoredCustomer(BaseModel):
    """What to do about one customer, and why. For an unknown id only `customer_id`, `found`
    (false), `error` and `model_versions` are set."""

    model_config = RESPONSE

    customer_id: str
    found: bool = Field(description="False when the id is not in the feature store.")
    error: str | None = Field(default=None, description="Why there is no score (unknown id).")
    churn_probability: float | None = Field(default=None, ge=0, le=1)
    complaint_probability: float | None = Field(default=None, ge=0, le=1)
    risk_tier: RiskTier | None = None
    value_tier: ValueTier | None = None
    reasons: list[Reason] = Field(default_factory=list, max_length=MAX_REASONS)
    action: str | None = Field(default=None, description="What to do, e.g. callback.")
    channel: Channel | None = None
    callback_due: dt.date | None = Field(
        default=None, description="Deadline of a due policy callback (null: none due)."
    )
    callback_rule: CallbackRule | None = Field(
        default=None, description="The policy rule behind callback_due."
    )
    priority: int | None = Field(default=None, ge=1, description="1 is the most urgent.")
    model_versions: dict[str, str] = Field(
        default_factory=dict, description="Registered model version per target."
    )
    features_as_of: dt.date | None = Field(default=None, description="Snapshot date of features.")

    @model_validator(mode="after")
    def _consistent(self) -> ScoredCustomer:
        if (self.callback_due is None) != (self.callback_rule is None):
            raise ValueError("callback_due and callback_rule are set together")
        scores = (self.churn_probability, self.complaint_probability, self.risk_tier)
        if self.found:
            if self.error is not None:
                raise ValueError("a found customer has no error")
            if any(s is None for s in (*scores, self.features_as_of)):
                raise ValueError(
                    "a found customer needs churn_probability, complaint_probability, "
                    "risk_tier and features_as_of"
                )
        else:
            if not self.error:
                raise ValueError("a customer that is not found needs an error")
            if any(s is not None for s in scores) or self.reasons:
                raise ValueError("a customer that is not found has no scores or reasons")
        return self


class ScoreResponse(BaseModel):
    """One result per requested customer, in request order."""

    model_config = RESPONSE

    results: list[ScoredCustomer]


class FieldProblem(BaseModel):
    """One rejected field: where it is (dotted path) and what is wrong, without its value."""

    model_config = RESPONSE

    field: str = Field(description="Dotted path, e.g. rows.0.txn_count_30d.")
    problem: str


class ErrorBody(BaseModel):
    """The body of every 4xx answer."""

    model_config = RESPONSE

    error: ErrorCode
    detail: str
    fields: list[FieldProblem] = Field(default_factory=list)


def _field_name(error: Mapping[str, Any]) -> str:
    """The dotted location of a problem; a key the model does not know is not echoed (the caller
    chose it: it may be a name), only where it was."""
    loc = [str(p) for p in error.get("loc", ())]
    if loc and error.get("type") == "extra_forbidden":
        loc[-1] = "(unknown field)"
    return ".".join(loc) or "(body)"


def error_body(
    errors: Sequence[Mapping[str, Any]],
    *,
    code: ErrorCode = "invalid_request",
    limit: int = MAX_ERROR_FIELDS,
) -> ErrorBody:
    """An `ErrorBody` from pydantic's `ValidationError.errors()`: one entry per field, in order.

    Only `loc` and `msg` are used, never `input`, so a rejected value (which might be PII sent by
    mistake) is not echoed. At most `limit` fields are listed; `detail` says how many there were.
    """
    problems = [
        FieldProblem(
            field=_field_name(e),
            problem=str(e["msg"]).removeprefix("Value error, "),
        )
        for e in errors
    ]
    names = ", ".join(p.field for p in problems[:5])
    more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
    detail = f"{len(problems)} invalid field(s): {names}{more}" if problems else "invalid request"
    return ErrorBody(error=code, detail=detail, fields=problems[:limit])


# -- feature rows, generated from the feature spec -------------------------------------------

# Value ranges of numeric features. The bound of a feature is `BOUNDS_BY_NAME[name]` when listed,
# else `BOUNDS_BY_AGGREGATION[aggregation]`; (low, high) with None for unbounded. Every bound
# follows from the data contract: amounts and fees are >= 0, so are their sums and means; counts,
# distinct counts and days since are >= 0; a share is a part of a total; a relative change of an
# AUM that is >= 0 cannot fall below -1; a ratio of non-negative rates is >= 0. A test validates a
# whole demo-bank snapshot against these bounds, so a bound that is too tight fails there.
BOUNDS_BY_AGGREGATION: dict[str, tuple[float | None, float | None]] = {
    "count": (0, None),
    "distinct": (0, None),
    "days_since": (0, None),
    "sum": (0, None),
    "mean": (0, None),
    "max": (0, None),
    "share": (0, 1),
    "ratio": (0, None),
    "change": (-1, None),
    "difference": (None, None),  # e.g. net flow: either sign
    "latest": (None, None),
    "attribute": (None, None),
    "derived": (0, None),  # tenure, age
}
BOUNDS_BY_NAME: dict[str, tuple[float | None, float | None]] = {
    "risk_tolerance": (1, 5),  # customers.risk_tolerance, 1-5
    "last_satisfaction_score": (1, 5),  # callbacks.satisfaction, 1-5
    "max_risk_gap": (0, 4),  # product_risk 1-5 minus risk_tolerance 1-5, floored at 0
    "aum_drawdown_180d": (0, 1),  # 1 - latest / peak, peak >= latest >= 0
    "login_decline_30d": (0, None),  # max(0, ...)
    "aum_latest": (0, None),  # balances.aum >= 0
    "age_years": (0, 150),
}


def _categories() -> dict[str, tuple[str, ...]]:
    """Allowed values of the string features, from the data contract (`keepwell.contract`)."""

    return {"segment": SEGMENTS, "kind": KINDS, "income_band": INCOME_BANDS}


def feature_bounds(feature: FeatureDef) -> tuple[float | None, float | None]:
    """The (low, high) range of a numeric feature; (None, None) for strings and booleans."""
    if feature.dtype not in ("int64", "float64"):
        return (None, None)
    if feature.name in BOUNDS_BY_NAME:
        return BOUNDS_BY_NAME[feature.name]
    return BOUNDS_BY_AGGREGATION.get(feature.aggregation, (None, None))


def _field_description(feature: FeatureDef, low: float | None, high: float | None) -> str:
    parts = [f"{feature.formula}.", f"Reads as: '{feature.describe}'."]
    if low is not None or high is not None:
        lo = "" if low is None else f"{low:g} <= "
        hi = "" if high is None else f" <= {high:g}"
        parts.append(f"Range: {lo}value{hi}.")
    if feature.describe_missing is not None:
        parts.append(f"null means: {feature.describe_missing}.")
    return " ".join(parts)


def _feature_field(feature: FeatureDef, categories: Mapping[str, tuple[str, ...]]) -> Any:
    """(annotation, FieldInfo) for one feature: typed, bounded, described, always required.

    A feature whose spec says what a null value means (`describe_missing`) accepts null; the key
    must still be present, so a forgotten feature is named as missing, not read as null.
    """
    low, high = feature_bounds(feature)
    base: Any
    if feature.dtype == "boolean":
        base = bool
    elif feature.dtype == "string":
        allowed = categories.get(feature.name)
        base = (
            Literal[tuple(allowed)]
            if allowed
            else Annotated[str, StringConstraints(max_length=200)]
        )
    else:
        kind = int if feature.dtype == "int64" else float
        extra: dict[str, Any] = {"allow_inf_nan": False} if kind is float else {}
        base = Annotated[kind, Field(ge=low, le=high, **extra)]
    annotation = base | None if feature.describe_missing is not None else base
    field = Field(
        ...,
        title=feature.name,
        description=_field_description(feature, low, high),
        json_schema_extra={"family": feature.family, "dtype": feature.dtype},
    )
    return (annotation, field)


_ROW_MODELS: dict[str, type[BaseModel]] = {}
_REQUEST_MODELS: dict[str, type[BaseModel]] = {}


def feature_row_model(spec: FeatureSpec) -> type[BaseModel]:
    """The strict model of one row: `customer_id` plus one field per feature of `spec`, in order.

    Cached per spec version: the same spec gives the same class (and one OpenAPI component).
    """
    key = spec.version
    if key not in _ROW_MODELS:
        categories = _categories()
        fields = {f.name: _feature_field(f, categories) for f in spec}
        _ROW_MODELS[key] = create_model(
            "FeatureRow",
            __config__=STRICT,
            __doc__=f"Feature values of one customer (feature spec {spec.version}).",
            customer_id=(Identifier, Field(...)),
            **fields,
        )
    return _ROW_MODELS[key]


def _unique_rows(rows: list[BaseModel]) -> list[BaseModel]:
    _unique([r.customer_id for r in rows])  # type: ignore[attr-defined]
    return rows


def feature_rows_request_model(spec: FeatureSpec) -> type[BaseModel]:
    """`POST /score/features`: `{"rows": [...]}`, 1 to 1,000 rows with distinct customer ids."""
    key = spec.version
    if key not in _REQUEST_MODELS:
        row = feature_row_model(spec)
        rows_type = Annotated[
            list[row],  # type: ignore[valid-type]
            Field(
                min_length=1,
                max_length=MAX_IDS_PER_REQUEST,
                description=f"1 to {MAX_IDS_PER_REQUEST:,} rows, one per distinct customer.",
            ),
            AfterValidator(_unique_rows),
        ]
        _REQUEST_MODELS[key] = create_model(
            "FeatureRowsRequest",
            __config__=STRICT,
            __doc__="Score customers from feature rows sent by the caller (what-if, own features).",
            rows=(rows_type, Field(...)),
        )
    return _REQUEST_MODELS[key]


def feature_names(model: type[BaseModel]) -> tuple[str, ...]:
    """The feature fields of a row model, in spec order (without `customer_id`)."""
    return tuple(name for name in model.model_fields if name != "customer_id")


def rows_as_records(rows: Iterable[BaseModel]) -> list[dict[str, Any]]:
    """Validated rows as plain dicts (for a DataFrame and `FittedModel.matrix`)."""
    return [r.model_dump() for r in rows]
