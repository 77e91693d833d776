"""Reason codes: the few features that drive one customer's risk, in words an RM understands.

`explain` takes LightGBM's TreeSHAP contributions (`FittedModel.contributions`, margin units, one
column per feature plus the bias) and keeps, per row, the `top_k` largest *positive* ones: the
drivers that raise the risk. It never pads with risk-lowering drivers (a reason to call a customer
is never "because they log in a lot"); when fewer than `top_k` features push the risk up, the row
gets fewer reasons, possibly none. `include_lowering=True` ranks by absolute contribution instead,
for analysts who want the whole picture.

Two filters hold whatever the numbers say: a feature in `never_as_reason` (age, disability,
gender-like attributes) is never a reason, even when it is the only driver that raises the risk,
and a feature the sentence source does not describe is never a reason either. Sentences are built
only from feature values (the spec holds no name, phone or birth date), so they carry no PII.

Each sentence is the feature's own template ("last log-in 45 days ago"); when the feature
has a `compare_to` partner with a value the template adds that comparison, otherwise the training
book's typical value is appended ("(typical customer: 6)", or "(12% of customers)" for a
category), from the `reference` that `reference_values` computes at training time and the
training run stores in `FittedModel.extra["reference"]`.

Words come from a `FeatureSpec` at training time or from `ReasonTexts`, its JSON-serialisable
twin that travels inside the MLflow model, so serving needs no feature code to speak.
"""

from __future__ import annotations

import math
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from keepwell.words import is_missing
from training.reason_texts import FeatureWords, ReasonText, ReasonTexts, SentenceSource

if TYPE_CHECKING:
    from training.fitted import FittedModel

__all__ = [  # the words too: the model bundle and serving import ReasonTexts from here
    "REFERENCE_KEY",
    "Reason",
    "ReasonText",
    "ReasonTexts",
    "check_additivity",
    "explain",
    "reference_values",
    "typical_clause",
    "value_format",
]

JsonValue = float | int | str | bool | None
Direction = Literal["raises", "lowers"]
REFERENCE_KEY = "reference"  # FittedModel.extra key holding `reference_values(...)`


@dataclass(frozen=True)
class Reason:
    """One driver of one customer's score: the feature, its value, which way it pushes the risk,
    how much (margin units, i.e. log-odds before calibration) and the RM sentence."""

    feature: str
    value: JsonValue
    direction: Direction
    contribution: float
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# -- the book's typical values ------------------------------------------------------------------
def reference_values(train_frame: pd.DataFrame, features: Iterable[str]) -> dict[str, dict]:
    """Per feature, what a typical training row looks like, JSON-ready for `FittedModel.extra`.

    Numbers get `{"median": m}` (nulls skipped; `None` when all are null); booleans, strings and
    categories get `{"shares": {str(level): share of non-null rows}}`.
    """
    names = list(features)
    missing = [n for n in names if n not in train_frame.columns]
    if missing:
        raise KeyError(
            f"reference values need feature column(s) {missing}; the training frame has "
            f"{len(train_frame.columns)} columns"
        )
    out: dict[str, dict] = {}
    for name in names:
        col = train_frame[name]
        if _is_numeric(col):
            values = pd.to_numeric(col, errors="coerce").astype("float64").dropna()
            out[name] = {"median": float(values.median()) if len(values) else None}
        else:
            present = col.dropna().astype(object).map(lambda v: str(_json_value(v)))
            shares = present.value_counts(normalize=True, sort=True)
            out[name] = {"shares": {str(k): float(v) for k, v in shares.items()}}
    return out


def _is_numeric(col: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(col.dtype):
        return False
    if pd.api.types.is_numeric_dtype(col.dtype):
        return True
    if col.dtype == object:  # nullable booleans and numbers arrive as object
        present = col.dropna()
        return len(present) > 0 and all(
            isinstance(v, int | float | np.integer | np.floating)
            and not isinstance(v, bool | np.bool_)
            for v in present
        )
    return False


def value_format(template: str, field_name: str = "value") -> str | None:
    """The format spec of `{value:...}` in a template ("" for a bare `{value}`), None if absent.

    >>> value_format("{value:,.0f} transacted in the last 30 days")
    ',.0f'
    """
    for _, name, spec, _ in string.Formatter().parse(template):
        if name == field_name:
            return spec or ""
    return None


def typical_clause(words: FeatureWords, value: JsonValue, reference: Mapping[str, Any]) -> str:
    """ " (typical customer: X)" for a number whose formatted value differs from the book's
    median, " (N% of customers)" for a category level; "" when there is nothing to add."""
    if value is None or not reference:
        return ""
    if "median" in reference:
        median = reference["median"]
        spec = value_format(words.describe)
        if median is None or spec is None or isinstance(value, bool | str):
            return ""
        typical, mine = _format_number(median, spec), _format_number(value, spec)
        return "" if typical == mine else f" (typical customer: {typical})"
    shares = reference.get("shares")
    if shares and str(value) in shares:
        return f" ({shares[str(value)]:.0%} of customers)"
    return ""


def _format_number(value: float | int, spec: str) -> str:
    if spec:
        return format(value, spec)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# -- explanations -------------------------------------------------------------------------------
def explain(
    model: FittedModel,
    frame: pd.DataFrame,
    spec: SentenceSource,
    *,
    top_k: int,
    never_as_reason: Iterable[str],
    contributions: np.ndarray | None = None,
    include_lowering: bool = False,
) -> list[list[Reason]]:
    """Per row of `frame`, up to `top_k` reasons, largest contribution first.

    By default only drivers that raise the risk (contribution > 0) qualify and a row with fewer
    of them gets fewer reasons; `include_lowering=True` ranks every non-zero driver by absolute
    contribution. Features in `never_as_reason` or not described by `spec` never qualify.
    `contributions` is a precomputed `model.contributions(frame)` (rows x features + 1), so a
    caller that already paid for TreeSHAP does not pay twice.

    Cost beyond TreeSHAP: one masked argpartition over the matrix plus one sentence per chosen
    cell (memoised per feature and value).
    """
    n, features = len(frame), tuple(model.features)
    contrib = _contributions(model, frame, contributions)
    forbidden = set(never_as_reason)
    allowed = np.array([f in spec and f not in forbidden for f in features], dtype=bool)
    k = min(int(top_k), int(allowed.sum()))
    if n == 0 or k <= 0:
        return [[] for _ in range(n)]
    chosen, counts = _top_cells(contrib[:, :-1], allowed, k, include_lowering)
    reference = (getattr(model, "extra", None) or {}).get(REFERENCE_KEY, {})
    cells = np.empty((n, k), dtype=object)
    rows_all, slots_all = np.nonzero(np.arange(k)[None, :] < counts[:, None])
    feats_all = chosen[rows_all, slots_all]
    for j in np.unique(feats_all):
        pick = feats_all == j
        rows, slots = rows_all[pick], slots_all[pick]
        name = features[j]
        reasons = _reasons_for_feature(
            spec[name], frame, rows, contrib[rows, j], reference.get(name, {})
        )
        cells[rows, slots] = reasons
    table = cells.tolist()
    return [table[i][: counts[i]] for i in range(n)]


def _contributions(
    model: FittedModel, frame: pd.DataFrame, contributions: np.ndarray | None
) -> np.ndarray:
    if contributions is None:
        return model.contributions(frame)
    contrib = np.asarray(contributions, dtype=float)
    expected = (len(frame), len(model.features) + 1)
    if contrib.shape != expected:
        raise ValueError(
            f"contributions for the {model.target} model must have shape {expected} (rows x "
            f"features + bias), got {contrib.shape}"
        )
    return contrib


def _top_cells(
    contrib: np.ndarray, allowed: np.ndarray, k: int, include_lowering: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of each row's k best qualifying cells, best first, and how many qualify."""
    if include_lowering:
        score = np.where(allowed[None, :] & (contrib != 0), np.abs(contrib), -np.inf)
    else:
        score = np.where(allowed[None, :] & (contrib > 0), contrib, -np.inf)
    if k < score.shape[1]:
        part = np.argpartition(-score, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(score.shape[1]), score.shape).copy()
    best = np.take_along_axis(score, part, axis=1)
    order = np.argsort(-best, axis=1, kind="stable")
    chosen = np.take_along_axis(part, order, axis=1)
    counts = np.isfinite(np.take_along_axis(score, chosen, axis=1)).sum(axis=1)
    return chosen, counts


def _reasons_for_feature(
    words: FeatureWords,
    frame: pd.DataFrame,
    rows: np.ndarray,
    contrib: np.ndarray,
    reference: Mapping[str, Any],
) -> list[Reason]:
    """The Reason objects for one feature at the given row positions."""
    name = words.name
    values = _json_list(frame[name].iloc[rows], words.dtype)
    partner = words.compare_to
    if partner is not None and partner in frame.columns:
        others: Sequence[JsonValue] = _json_list(frame[partner].iloc[rows], None)
    else:
        others = [None] * len(rows)
    memo: dict[tuple[JsonValue, JsonValue], str] = {}
    out: list[Reason] = []
    for value, other, c in zip(values, others, contrib.tolist(), strict=True):
        key = (value, other)
        sentence = memo.get(key)
        if sentence is None:
            sentence = words.sentence(value, other)
            if partner is None or other is None:
                sentence += typical_clause(words, value, reference)
            memo[key] = sentence
        out.append(Reason(name, value, "raises" if c > 0 else "lowers", float(c), sentence))
    return out


def _json_list(series: pd.Series, dtype: str | None) -> list[JsonValue]:
    """`_json_value` over a column, with numpy fast paths for plain int, bool and float columns
    (the bulk of a feature frame)."""
    kind = series.dtype.kind if isinstance(series.dtype, np.dtype) else ""
    if kind in ("i", "u", "b"):
        return series.to_numpy().tolist()
    if kind == "f":
        arr = series.to_numpy(dtype="float64")
        bad = ~np.isfinite(arr)
        good = arr[~bad]
        if dtype == "int64" and np.array_equal(good, np.round(good)):
            out: list[JsonValue] = np.where(bad, 0, arr).astype(np.int64).tolist()
        else:
            out = arr.tolist()
        for i in np.flatnonzero(bad).tolist():
            out[i] = None
        return out
    return [_json_value(v, dtype) for v in series.astype(object).tolist()]


def _json_value(value: Any, dtype: str | None = None) -> JsonValue:
    """A plain JSON value: None for every kind of null, Python bool/int/float/str otherwise;
    an integral float of an int64 feature (nullable ints arrive as floats) becomes an int."""
    if is_missing(value):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        if not math.isfinite(value):
            return None
        if dtype == "int64" and value.is_integer():
            return int(value)
        return value
    return str(value)


# -- checks -------------------------------------------------------------------------------------
def check_additivity(model: FittedModel, frame: pd.DataFrame, rtol: float = 1e-6) -> float:
    """Assert that every row's contributions (bias included) sum to `model.margin`; returns the
    largest absolute difference. Raises ValueError naming the worst row otherwise."""
    contrib = model.contributions(frame)
    margin = model.margin(frame)
    total = contrib.sum(axis=1)
    diff = np.abs(total - margin)
    worst = float(diff.max()) if len(diff) else 0.0
    if not np.allclose(total, margin, rtol=rtol, atol=1e-9):
        i = int(diff.argmax())
        raise ValueError(
            f"{model.target} contributions do not add up to the margin: row {i} "
            f"(index {frame.index[i]!r}) sums to {total[i]!r}, margin {margin[i]!r}"
        )
    return worst
