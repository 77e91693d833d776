"""The online store: one feature snapshot in a DuckDB file, looked up by customer_id.

`materialize(features, path, as_of, spec)` writes the snapshot for `as_of` with a metadata table
(as-of date, feature-spec version, creation time, row count) to a temporary file and renames it
over `path`, so a reader never sees a half-written store. `OnlineStore(path)` opens it read-only
and answers `lookup(customer_ids)` with one row per requested id, in the requested order; ids the
store does not know are kept, with `found` false and null features, never dropped silently.

Lookups run on one connection. By default a store of up to `PRELOAD_MAX_CELLS` values is read
into memory once (a DataFrame plus a hash index on customer_id: a lookup is a `take`, about
a millisecond for 1-10 ids); a larger store answers each lookup with one parameterised query.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from keepwell.io import atomic_path

FEATURES_TABLE = "features"
METADATA_TABLE = "store_metadata"
KEY = "customer_id"
FOUND = "found"
PRELOAD_MAX_CELLS = 100_000_000  # e.g. 1,000,000 customers x 100 columns, about 0.8 GB

# The columns that record when something happened, per contract table: the newest of them is the
# end of the data. Due dates of callbacks are plans, not events, and do not count.


class StoreError(RuntimeError):
    """An online store that cannot be written or read; the message says which and why."""


class UnknownCustomersError(KeyError):
    """Raised by `OnlineStore.lookup(..., missing="raise")`; `.ids` lists the unknown ids."""

    def __init__(self, ids: Sequence[str], path: Path):
        self.ids = list(ids)
        shown = ", ".join(repr(i) for i in self.ids[:10])
        more = f" and {len(self.ids) - 10} more" if len(self.ids) > 10 else ""
        super().__init__(f"{len(self.ids)} customer_id(s) not in the store {path}: {shown}{more}")


def spec_version(spec: Any) -> str:
    """A short hash that changes whenever a feature definition changes.

    Uses the spec's own `version` when it has one; otherwise hashes every feature's public
    attributes (name, table, window, aggregation, description...).
    """
    own = getattr(spec, "version", None)
    if callable(own):
        own = own()
    if isinstance(own, str) and own:
        return own
    features = getattr(spec, "features", spec)
    described = [_describe(f) for f in features] if isinstance(features, Iterable) else [spec]
    text = json.dumps(described, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _describe(feature: Any) -> Any:
    if hasattr(feature, "__dataclass_fields__"):
        return {
            k: repr(getattr(feature, k))
            for k in feature.__dataclass_fields__
            if not k.startswith("_")
        }
    return repr(feature)


def _as_date(value: dt.date | dt.datetime | str) -> dt.date:
    from features.dates import parse_day

    return parse_day(value, StoreError)


def _to_arrow(features: Any, as_of: dt.date) -> pa.Table:
    """The rows of `features` (Ibis table, Arrow table or DataFrame) for `as_of`."""
    if isinstance(features, pd.DataFrame):
        features = pa.Table.from_pandas(features, preserve_index=False)
    if isinstance(features, pa.Table):
        if "as_of" in features.column_names:
            dates = pd.to_datetime(features.column("as_of").to_pandas()).dt.date
            features = features.filter(pa.array((dates == as_of).to_numpy()))
        return features
    if hasattr(features, "to_pyarrow"):  # an Ibis table on any backend
        import ibis

        if "as_of" in features.columns:
            features = features.filter(features.as_of.cast("date") == ibis.date(as_of))
        return features.to_pyarrow()
    raise StoreError(f"features must be an Ibis table, Arrow table or DataFrame, got {features!r}")


def materialize(
    features: Any,
    path: Path | str,
    as_of: dt.date | str,
    spec: Any,
    *,
    extra_metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write the snapshot of `features` for `as_of` to the DuckDB file `path`, atomically.

    `features` has one row per (customer_id, as_of) (an Ibis table from `build_features`, or
    its Arrow/pandas result); only the rows of `as_of` are stored. Raises `StoreError` when there
    are none or when a customer_id appears twice.
    """
    as_of = _as_date(as_of)
    path = Path(path)
    data = _to_arrow(features, as_of)
    if KEY not in data.column_names:
        raise StoreError(f"features have no {KEY!r} column (columns: {data.column_names})")
    if FOUND in data.column_names:
        raise StoreError(f"features must not have a column named {FOUND!r}: lookups add it")
    if data.num_rows == 0:
        raise StoreError(f"no feature rows for as_of {as_of}: nothing to materialize")
    keys = data.column(KEY)
    if keys.null_count:
        raise StoreError(f"{keys.null_count} feature rows have a null {KEY}")
    if pc.count_distinct(keys).as_py() != data.num_rows:
        counts = pd.Series(keys.to_pandas()).value_counts()
        dupes = counts[counts > 1].index[:5].tolist()
        raise StoreError(f"{KEY} is not unique in the snapshot for {as_of}, e.g. {dupes}")
    meta = {
        "as_of": as_of,
        "spec_version": spec_version(spec),
        "created_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),  # UTC
        "row_count": data.num_rows,
        "columns": json.dumps(data.column_names),
        "extra": json.dumps(dict(extra_metadata or {}), default=str, sort_keys=True),
    }
    with atomic_path(path) as tmp:
        tmp.unlink()  # DuckDB creates the file itself; an empty file is not a database
        try:
            con = duckdb.connect(str(tmp))
            try:
                con.register("snapshot", data)
                con.execute(
                    f"CREATE TABLE {FEATURES_TABLE} AS SELECT * FROM snapshot ORDER BY {KEY}"
                )
                con.unregister("snapshot")
                con.execute(
                    f"CREATE TABLE {METADATA_TABLE} (as_of DATE, spec_version VARCHAR, "
                    "created_at TIMESTAMP, row_count BIGINT, columns VARCHAR, extra VARCHAR)"
                )
                con.execute(
                    f"INSERT INTO {METADATA_TABLE} VALUES (?, ?, ?, ?, ?, ?)", list(meta.values())
                )
                con.execute("CHECKPOINT")
            finally:
                con.close()
        finally:
            wal = tmp.with_name(tmp.name + ".wal")
            if wal.exists():
                wal.unlink()
    return path


class OnlineStore:
    """Read-only lookups in a materialized snapshot; one DuckDB connection per store."""

    def __init__(self, path: Path | str, *, preload: bool | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise StoreError(
                f"online store not found: {self.path} (write it with `keepwell features "
                "materialize`)"
            )
        try:
            self._con = duckdb.connect(str(self.path), read_only=True, config={"threads": 1})
        except duckdb.Error as exc:
            raise StoreError(f"cannot open the online store {self.path}: {exc}") from None
        try:
            row = self._con.execute(
                f"SELECT as_of, spec_version, created_at, row_count, columns, extra "
                f"FROM {METADATA_TABLE}"
            ).fetchone()
        except duckdb.Error as exc:
            self._con.close()
            raise StoreError(f"{self.path} is not a Keepwell online store: {exc}") from None
        if row is None:
            self._con.close()
            raise StoreError(f"{self.path}: the metadata table {METADATA_TABLE} is empty")
        self.as_of: dt.date = row[0]
        self.spec_version: str = row[1]
        self.created_at: dt.datetime = row[2].replace(tzinfo=dt.UTC)
        self.row_count: int = row[3]
        self.columns: list[str] = json.loads(row[4])
        self.metadata: dict[str, Any] = json.loads(row[5] or "{}")
        self.feature_columns = [c for c in self.columns if c not in (KEY, "as_of")]
        if preload is None:
            preload = self.row_count * len(self.columns) <= PRELOAD_MAX_CELLS
        self.preloaded = preload
        self._lock = threading.Lock()  # one DuckDB connection: queries take turns
        self._frame: pd.DataFrame | None = None
        self._index: pd.Index | None = None
        if preload:
            table = self._con.execute(
                f"SELECT * FROM {FEATURES_TABLE} ORDER BY {KEY}"
            ).to_arrow_table()
            self._frame = table.to_pandas().copy()  # copy: one consolidated block per dtype
            self._index = pd.Index(self._frame[KEY])
            self._index.get_indexer(self._index[:1])  # builds the hash table now, not on call 1
        others = ", ".join(f'f."{c}"' for c in self.columns if c != KEY)
        sep = ", " if others else ""
        self._query = (
            f"SELECT r.{KEY}, f.{KEY} IS NOT NULL AS {FOUND}{sep}{others} "
            f"FROM (SELECT unnest($ids) AS {KEY}, generate_subscripts($ids, 1) AS pos) r "
            f"LEFT JOIN {FEATURES_TABLE} f ON f.{KEY} = r.{KEY} ORDER BY r.pos"
        )

    def __enter__(self) -> OnlineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def __repr__(self) -> str:
        return (
            f"OnlineStore({str(self.path)!r}, as_of={self.as_of}, rows={self.row_count:,}, "
            f"spec={self.spec_version})"
        )

    def customer_ids(self) -> np.ndarray:
        """Every customer_id in the snapshot, sorted."""
        if self._index is not None:
            return self._index.to_numpy()
        with self._lock:
            got = self._con.execute(f"SELECT {KEY} FROM {FEATURES_TABLE} ORDER BY {KEY}")
            return got.fetchnumpy()[KEY]

    def lookup(self, customer_ids: Iterable[str], *, missing: str = "report") -> pd.DataFrame:
        """One row per requested id, in the requested order (repeats kept).

        Columns: customer_id, found, then the snapshot's columns. An id the store does not know
        has `found` false and null features; with `missing="raise"` it raises
        `UnknownCustomersError` listing every unknown id instead.
        """
        if missing not in ("report", "raise"):
            raise ValueError(f"missing must be 'report' or 'raise', got {missing!r}")
        if isinstance(customer_ids, str):
            raise TypeError("customer_ids must be a list of ids, not one string")
        ids = [str(i) for i in customer_ids]
        result = self._lookup_memory(ids) if self.preloaded else self._lookup_query(ids)
        if missing == "raise" and not result[FOUND].all():
            raise UnknownCustomersError(result.loc[~result[FOUND], KEY].tolist(), self.path)
        return result

    def _lookup_memory(self, ids: list[str]) -> pd.DataFrame:
        assert self._frame is not None and self._index is not None
        pos = self._index.get_indexer(ids) if ids else np.empty(0, dtype=np.intp)
        found = pos >= 0
        # take keeps the stored dtypes; reindex (-1 is not a row) adds null rows for unknown ids
        rows = self._frame.take(pos) if found.all() else self._frame.reindex(pos)
        rows.index = pd.RangeIndex(len(ids))
        rows[KEY] = pd.Series(ids, dtype=self._frame[KEY].dtype)
        rows.insert(1, FOUND, found)
        return rows

    def _lookup_query(self, ids: list[str]) -> pd.DataFrame:
        with self._lock:
            result = self._con.execute(self._query, {"ids": ids}).to_arrow_table()
        return result.to_pandas()


def _max_date(table: Any, column: str) -> dt.date | None:
    value = table[column].max().to_pyarrow().as_py()
    if value is None:
        return None
    return value.date() if isinstance(value, dt.datetime) else value


def event_range(tables: Mapping[str, Any]) -> tuple[dt.date, dt.date]:
    """The first and the last day on which any event in `tables` happened (UTC dates)."""
    from features.ranges import data_range

    try:
        return data_range(tables)
    except ValueError as exc:
        raise StoreError(f"cannot tell where the data ends: {exc}") from None


def default_as_of(tables: Mapping[str, Any]) -> dt.date:
    """The day after the newest event across `tables`: the snapshot that sees all the data."""
    return event_range(tables)[1] + dt.timedelta(days=1)
