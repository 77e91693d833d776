"""The served feature snapshot in memory: one typed numpy column per feature, rows by customer id.

Why not look customers up in the `OnlineStore`'s DataFrame and call `FittedModel.matrix` on each
request: with pandas 3 both pay a per-column overhead (about 0.1 ms per column here), so a
one-customer request spent 3-8 ms building a 57-column frame and matrix, more than the TreeSHAP
pass it feeds. A `Snapshot` holds each feature once as a numpy array (float64 for numbers and
booleans, NaN for null; an object array for strings), so a request takes its rows by position
(microseconds), builds LightGBM's input as a float matrix with the model's category codes
(`Rows.matrix`, identical to `FittedModel.matrix`; a test holds the two together), and hands
`training.reasons.explain` a lazy view (`Rows.values`) that converts only the 3-6 columns the
chosen reasons read.

Feature rows sent by a caller (`POST /score/features`) become `Rows` too (`Rows.from_records`),
so both endpoints share one scoring path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

NUMERIC_DTYPES = ("int64", "float64", "boolean")
STRING = "string"


def _column(values: Any, dtype: str) -> np.ndarray:
    """A stored column: float64 with NaN for numbers and booleans, object (str or None) for
    strings. `values` is a pandas Series or any sequence."""
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    if dtype == STRING:
        out = series.to_numpy(dtype=object, na_value=None)
        return np.array([None if v is None else str(v) for v in out], dtype=object)
    if dtype not in NUMERIC_DTYPES:
        raise ValueError(
            f"unknown feature dtype {dtype!r} (expected int64, float64, boolean, string)"
        )
    if series.dtype == object:
        series = series.map(lambda v: np.nan if v is None else v)
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


@dataclass
class Rows:
    """Feature values of some customers: typed columns aligned with `ids`."""

    ids: list[str]
    columns: dict[str, np.ndarray]
    dtypes: Mapping[str, str]

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]], dtypes: Mapping[str, str]) -> Rows:
        """Rows from validated request records (`customer_id` plus one key per feature)."""
        ids = [str(r["customer_id"]) for r in records]
        columns = {
            name: _column(pd.Series([r.get(name) for r in records], dtype=object), dtype)
            for name, dtype in dtypes.items()
        }
        return cls(ids, columns, dtypes)

    def subset(self, select: np.ndarray) -> Rows:
        """The rows at positions (or where the boolean mask is true) `select`, in that order."""
        idx = np.flatnonzero(select) if select.dtype == bool else select
        return Rows(
            [self.ids[i] for i in idx.tolist()],
            {k: v[idx] for k, v in self.columns.items()},
            self.dtypes,
        )

    def matrix(
        self, features: Sequence[str], categories: Mapping[str, Sequence[str]]
    ) -> np.ndarray:
        """LightGBM's input for a model: float64 (rows x features); a categorical feature as the
        position of its level in the model's `categories` (NaN for null or an unseen level), as
        `FittedModel.matrix` and LightGBM's pandas path encode it."""
        out = np.empty((len(self.ids), len(features)), dtype=np.float64)
        for j, name in enumerate(features):
            try:
                col = self.columns[name]
            except KeyError:
                raise KeyError(
                    f"feature {name!r} is not among the {len(self.columns)} served columns"
                ) from None
            if name in categories:
                codes = {level: float(i) for i, level in enumerate(categories[name])}
                out[:, j] = [codes.get(v, np.nan) if v is not None else np.nan for v in col]
            elif col.dtype == object:
                raise TypeError(f"feature {name!r} holds strings but the model reads numbers")
            else:
                out[:, j] = col
        return out

    def typed(self, name: str) -> np.ndarray:
        """One column with the dtype a feature frame column would have: int64 (float64 when it
        has nulls), float64, booleans as objects (True/False/None), strings as objects."""
        col, dtype = self.columns[name], self.dtypes[name]
        if dtype == "int64":
            return col if np.isnan(col).any() else col.astype(np.int64)
        if dtype == "boolean":
            return np.array([None if np.isnan(v) else bool(v) for v in col], dtype=object)
        return col

    def series(self, name: str) -> pd.Series:
        """`typed(name)` as a pandas Series."""
        return pd.Series(self.typed(name), copy=False)

    def values(self) -> ValuesView:
        return ValuesView(self)

    def frame(self, names: Iterable[str]) -> pd.DataFrame:
        """A DataFrame of the named columns (those present), typed as `series` types them."""
        present = [n for n in names if n in self.columns]
        return pd.DataFrame({n: self.series(n) for n in present}, index=pd.RangeIndex(len(self)))


class Column:
    """A numpy column with the part of the pandas Series interface `training.reasons.explain`
    reads: `.iloc[positions]`, `.dtype`, `.to_numpy(dtype=)`, `.astype(object)`, `.tolist()`.
    Building and slicing a pandas Series costs about 0.1 ms each in pandas 3, and a 100-customer
    request reads about 40 of them: half of the request's time went there."""

    __slots__ = ("values",)

    def __init__(self, values: np.ndarray):
        self.values = values

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    @property
    def iloc(self) -> Column:
        return self

    def __getitem__(self, positions: Any) -> Column:
        return Column(self.values[positions])

    def __len__(self) -> int:
        return len(self.values)

    def to_numpy(self, dtype: Any = None) -> np.ndarray:
        return self.values if dtype is None else self.values.astype(dtype)

    def astype(self, dtype: Any) -> Column:
        return Column(self.values.astype(dtype))

    def tolist(self) -> list[Any]:
        return self.values.tolist()


@dataclass
class ValuesView:
    """What `training.reasons.explain` reads from a feature frame - `len()`, `.columns` and
    `frame[name].iloc[positions]` - answered lazily from `Rows`, one `Column` at a time, with the
    dtypes the feature frame would have (a test compares the reasons with those of a DataFrame)."""

    rows: Rows
    _cache: dict[str, Column] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.rows.columns)

    def __getitem__(self, name: str) -> Column:
        if name not in self._cache:
            self._cache[name] = Column(self.rows.typed(name))
        return self._cache[name]


@dataclass
class Snapshot:
    """Every customer of the snapshot: `ids` (object array), one column per feature in `dtypes`
    order, and a dict from id to row position (a pandas `Index.get_indexer` on a short list
    costs about a millisecond, mostly building an Index from the list; a dict costs microseconds,
    for about 40 bytes per customer)."""

    ids: np.ndarray
    columns: dict[str, np.ndarray]
    dtypes: dict[str, str]
    _position: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids, dtype=object)
        self._position = {cid: i for i, cid in enumerate(self.ids.tolist())}
        if len(self._position) != len(self.ids):
            seen: set[str] = set()
            dupes = [c for c in self.ids.tolist() if c in seen or seen.add(c)][:5]
            raise ValueError(f"customer_id is not unique in the snapshot, e.g. {dupes}")

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, dtypes: Mapping[str, str]) -> Snapshot:
        """A book from a feature frame with `customer_id` and every column of `dtypes`."""
        missing = [n for n in ("customer_id", *dtypes) if n not in frame.columns]
        if missing:
            raise KeyError(f"the feature frame lacks column(s) {missing}")
        ids = frame["customer_id"].astype(str).to_numpy(dtype=object)
        columns = {name: _column(frame[name], dtype) for name, dtype in dtypes.items()}
        return cls(ids, columns, dict(dtypes))

    @classmethod
    def from_store(cls, store: Any, dtypes: Mapping[str, str], chunk: int = 100_000) -> Snapshot:
        """Read every row of an `OnlineStore` in chunks of `chunk` customers."""
        all_ids = [str(i) for i in store.customer_ids()]
        parts = [
            cls.from_frame(store.lookup(all_ids[i : i + chunk]), dtypes)
            for i in range(0, len(all_ids), chunk)
        ]
        if not parts:
            return cls(np.empty(0, dtype=object), {n: np.empty(0) for n in dtypes}, dict(dtypes))
        if len(parts) == 1:
            return parts[0]
        ids = np.concatenate([p.ids for p in parts])
        columns = {n: np.concatenate([p.columns[n] for p in parts]) for n in dtypes}
        return cls(ids, columns, dict(dtypes))

    def positions(self, customer_ids: Sequence[str]) -> np.ndarray:
        """Row position of each id, -1 for an id the snapshot does not have."""
        get = self._position.get
        return np.fromiter((get(c, -1) for c in customer_ids), dtype=np.intp)

    def take(self, positions: np.ndarray) -> Rows:
        """The rows at `positions` (all valid), in that order."""
        if len(positions) and positions.min() < 0:
            raise IndexError("take() needs known customers only (position -1 given)")
        ids = self.ids[positions].tolist()
        return Rows(ids, {k: v[positions] for k, v in self.columns.items()}, self.dtypes)

    def frame(self, names: Iterable[str]) -> pd.DataFrame:
        """The named columns of every customer as a DataFrame (for the book-wide value score)."""
        return Rows(self.ids.tolist(), self.columns, self.dtypes).frame(names)
