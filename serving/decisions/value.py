"""The value score and the value tiers VIP / Priority / Standard (DESIGN.md section 1): current
value (assets, revenue, transaction amount and frequency) and potential value (loyalty, growth,
product depth, credit), weighted as `tiers.value_weights` says; pure, config-driven, no I/O.

* `value_scores(features, config)` - the value score per row (formula in its docstring);
  `value_inputs(columns, config)` - which of a snapshot's columns it reads.
* `ValueTiers.fit(book_scores, config)` - score cut points from the configured quantiles of the
  whole book; `.tier(scores)`; `.to_dict()` / `.from_dict()` to store them with a snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from keepwell.config import Config, ValueInput

VALUE_TIERS: tuple[str, ...] = ("VIP", "Priority", "Standard")


def as_floats(values: Any, name: str) -> np.ndarray:
    """Numbers as a 1-d float64 array with NaN for null; a non-numeric value is an error naming
    `name`. Numeric input is converted directly (no per-element work)."""
    if isinstance(values, pd.Series | pd.Index):
        if isinstance(values.dtype, np.dtype) and values.dtype.kind in "fiub":
            return values.to_numpy().astype(np.float64, copy=False)
        if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
            return values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        array = np.ravel(np.asarray(values))
        if array.dtype.kind in "fiub":
            return array.astype(np.float64, copy=False)
        values = array
    try:
        return pd.to_numeric(pd.Series(values, copy=False), errors="raise").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: not numeric ({type(exc).__name__})") from None


def _transformed(values: pd.Series, name: str, spec: ValueInput) -> np.ndarray:
    """f(x) of one input, 0 where x is null (see `value_scores`)."""
    if spec.transform == "ordinal":
        arr = as_strings(values)
        codes = np.asarray(
            pc.index_in(arr, value_set=pa.array(spec.levels, arr.type)).fill_null(-1),
            dtype=np.int64,
        )
        unknown = (codes < 0) & ~np.asarray(arr.is_null(), dtype=bool)
        if unknown.any():
            bad = sorted(set(np.asarray(arr, dtype=object)[unknown].tolist()))[:5]
            raise ValueError(f"{name}: values {bad} are not among the levels {list(spec.levels)}")
        return np.where(codes < 0, 0.0, codes / (len(spec.levels) - 1))
    x = as_floats(values, name)
    if spec.transform == "log1p":
        f = np.log1p(np.maximum(x, 0.0))
    else:  # linear
        cap = float(spec.cap)  # type: ignore[arg-type]  # validated: linear has a cap
        f = np.clip(x, spec.floor, cap) / cap
    return np.nan_to_num(f, nan=0.0)


def value_inputs(columns: Iterable[str], config: Config) -> list[str]:
    """The value-score inputs (`config.tiers.value_weights`) among `columns`, in config order."""
    have = set(columns)
    return [name for name in config.tiers.value_weights if name in have]


def value_scores(
    features: pd.DataFrame, config: Config, *, absent_is_null: bool = False
) -> np.ndarray:
    """The value score of each row: `sum_i w_i * f_i(x_i)` over `config.tiers.value_weights`.

    The inputs and weights are in the config (defaults: `aum_latest`, `fee_revenue_12m`,
    `txn_amount_180d`, `txn_count_180d` for current value; `tenure_days`, `aum_change_180d`,
    `active_product_count`, `income_band` for potential value). `f` depends on the input's
    `transform`:

    * `log1p`: `log(1 + max(x, 0))` for money, so that a tenfold balance adds a fixed amount
      (about 2.3 x weight) instead of dominating every other input;
    * `linear`: `clip(x, floor, cap) / cap`, for counts, tenure and growth (at most the weight;
      growth may be negative down to `floor / cap`);
    * `ordinal`: the position of a category among `levels` (lowest first) divided by
      `len(levels) - 1`, 0 to 1 (income band as the credit input).

    A null input adds 0. The score depends only on the row itself (no ranks within the frame),
    so scoring one customer alone gives the same number as scoring the whole book. With
    `absent_is_null` an input the frame lacks counts as null (a snapshot without it); otherwise
    a missing input is an error.
    """
    weights = config.tiers.value_weights
    missing = [name for name in weights if name not in features.columns]
    if absent_is_null:
        weights = {name: spec for name, spec in weights.items() if name not in missing}
    elif missing:
        raise ValueError(
            f"value_scores: the features lack column(s) {missing} named in tiers.value_weights"
        )
    score = np.zeros(len(features), dtype=np.float64)
    for name, spec in weights.items():
        if spec.weight:
            score += spec.weight * _transformed(features[name], name, spec)
    return score


@dataclass(frozen=True)
class ValueTiers:
    """Value score cut points: VIP from `vip_cut` up, Priority from `priority_cut` up."""

    vip_cut: float
    priority_cut: float
    book_size: int | None = None  # customers the cuts were fitted on (provenance)

    def __post_init__(self) -> None:
        if not (np.isfinite(self.vip_cut) and np.isfinite(self.priority_cut)):
            raise ValueError(f"value tier cuts must be finite, got {self.to_dict()}")
        if self.priority_cut > self.vip_cut:
            raise ValueError(
                f"priority_cut ({self.priority_cut}) must not exceed vip_cut ({self.vip_cut})"
            )

    @classmethod
    def fit(cls, book_scores: Any, config: Config) -> ValueTiers:
        """Cuts at the configured quantiles (`tiers.value_cut_points`) of the whole book's scores.

        Fit on the book, not on a request: the same customer must get the same tier whichever
        customers are scored with it. NaN scores are ignored.
        """
        scores = as_floats(book_scores, "book_scores")
        scores = scores[~np.isnan(scores)]
        if scores.size == 0:
            raise ValueError("ValueTiers.fit: no value scores to fit the cut points on")
        cuts = config.tiers.value_cut_points
        return cls(
            vip_cut=float(np.quantile(scores, cuts.vip)),
            priority_cut=float(np.quantile(scores, cuts.priority)),
            book_size=int(scores.size),
        )

    def tier(self, scores: Any) -> np.ndarray:
        """Tier "VIP" at or above `vip_cut`, "Priority" at or above `priority_cut`, else "Standard"
        (also for a NaN score)."""
        s = as_floats(scores, "scores")
        return np.where(
            s >= self.vip_cut, VALUE_TIERS[0], np.where(s >= self.priority_cut, *VALUE_TIERS[1:])
        ).astype(object)

    def to_dict(self) -> dict[str, Any]:
        return {
            "vip_cut": self.vip_cut,
            "priority_cut": self.priority_cut,
            "book_size": self.book_size,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValueTiers:
        missing = [k for k in ("vip_cut", "priority_cut") if k not in data]
        unknown = sorted(set(data) - {"vip_cut", "priority_cut", "book_size"})
        if missing or unknown:
            raise ValueError(f"value tiers: missing keys {missing}, unknown keys {unknown}")
        size = data.get("book_size")
        return cls(
            vip_cut=float(data["vip_cut"]),
            priority_cut=float(data["priority_cut"]),
            book_size=None if size is None else int(size),
        )


def as_strings(values: Any) -> pa.Array | pa.ChunkedArray:
    """Values as an Arrow string array (zero-copy for pandas' Arrow-backed strings)."""
    arr = pa.array(values, from_pandas=True)
    if isinstance(arr, pa.DictionaryArray):
        arr = arr.dictionary_decode()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        if not pa.types.is_null(arr.type):
            raise ValueError(f"expected strings, got {arr.type}")
        arr = arr.cast(pa.string())
    return arr
