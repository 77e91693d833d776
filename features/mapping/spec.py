"""The mapping file: its typed model and the YAML parser (see `features.mapping`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    import ibis

FORMATS = ("csv", "parquet", "whitespace")
AGGREGATES = ("min", "max", "first", "sum", "count")
FILTER_OPS = ("gt", "ge", "lt", "le", "eq", "ne", "notnull", "isin")
LABEL_RULES = ("no_transaction",)
COLUMN_KEYS = frozenset(
    {"column", "constant", "months_before", "anchor", "parse", "values", "default", "cast",
     "aggregate"}
)  # fmt: skip


class MappingError(ValueError):
    """A mapping that cannot be applied; the message names the mapping key, file and column."""


@dataclass(frozen=True)
class Source:
    name: str
    file: str
    format: str


@dataclass(frozen=True)
class ColumnSpec:
    key: str  # where it is in the YAML, e.g. "tables.transactions.columns.ts"
    column: str | None = None
    constant: Any = None
    is_constant: bool = False
    months_before: str | None = None
    anchor: dt.date | None = None
    parse: str | None = None
    values: dict[Any, Any] | None = None
    default: Any = None
    has_default: bool = False
    cast: str | None = None
    aggregate: str | None = None

    @property
    def source_column(self) -> str | None:
        return self.column or self.months_before


@dataclass(frozen=True)
class TableMapping:
    name: str
    source: str
    columns: dict[str, ColumnSpec]
    group_by: str | None = None
    keep: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class SnapshotMapping:
    """Columns that are already features (and labels) at one as-of date, one row per customer."""

    source: str
    key: str
    as_of: dt.date
    features: dict[str, ColumnSpec]
    labels: dict[str, ColumnSpec]


@dataclass(frozen=True)
class LabelRule:
    name: str
    rule: str
    horizon_days: int


@dataclass(frozen=True)
class ColumnMapping:
    """A parsed mapping file."""

    name: str
    path: Path | None
    description: str
    sources: dict[str, Source]
    tables: dict[str, TableMapping]
    snapshot: SnapshotMapping | None = None
    labels: dict[str, LabelRule] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return str(self.path) if self.path else f"mapping {self.name!r}"


@dataclass
class MappedData:
    """The result of applying a mapping: contract tables, the snapshot table, notes."""

    mapping: ColumnMapping
    tables: dict[str, ibis.Table]
    snapshot: ibis.Table | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def provided(self) -> dict[str, tuple[str, ...]]:
        """The columns the mapping fills from the data, per table: what features may use.

        Nullable contract columns it leaves out are null in `tables`, and columns it sets to a
        constant carry no information: neither feeds a feature (the features are skipped)."""
        return {
            name: tuple(c for c, s in spec.columns.items() if not s.is_constant)
            for name, spec in self.mapping.tables.items()
        }


# --------------------------------------------------------------------------- parsing the YAML


def _fail(where: str, key: str, message: str) -> MappingError:
    return MappingError(f"{where}: {key}: {message}")


def _expect_dict(value: Any, where: str, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, key, f"expected a mapping, got {type(value).__name__}")
    return value


def _date(value: Any, where: str, key: str) -> dt.date:
    from features.dates import parse_day

    try:
        return parse_day(value)
    except ValueError:
        raise _fail(where, key, f"expected a date YYYY-MM-DD, got {value!r}") from None


def _column_spec(raw: Any, where: str, key: str) -> ColumnSpec:
    if isinstance(raw, str):
        return ColumnSpec(key=key, column=raw)
    raw = _expect_dict(raw, where, key)
    unknown = sorted(set(raw) - COLUMN_KEYS)
    if unknown:
        raise _fail(where, key, f"unknown option(s) {unknown}; allowed: {sorted(COLUMN_KEYS)}")
    given = [k for k in ("column", "constant", "months_before") if k in raw]
    if len(given) != 1:
        raise _fail(where, key, "give exactly one of column, constant, months_before")
    if "months_before" in raw and "anchor" not in raw:
        raise _fail(where, key, "months_before needs an anchor date")
    aggregate = raw.get("aggregate")
    if aggregate is not None and aggregate not in AGGREGATES:
        raise _fail(where, key, f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
    values = raw.get("values")
    if values is not None and not isinstance(values, dict):
        raise _fail(where, key, "values must be a mapping of source value to new value")
    return ColumnSpec(
        key=key,
        column=raw.get("column"),
        constant=raw.get("constant"),
        is_constant="constant" in raw,
        months_before=raw.get("months_before"),
        anchor=_date(raw["anchor"], where, f"{key}.anchor") if "anchor" in raw else None,
        parse=raw.get("parse"),
        values={str(k): v for k, v in values.items()} if values else None,
        default=raw.get("default"),
        has_default="default" in raw,
        cast=raw.get("cast"),
        aggregate=aggregate,
    )


def _sources(data: dict[str, Any], where: str) -> dict[str, Source]:
    sources: dict[str, Source] = {}
    for name, raw in _expect_dict(data.get("sources") or {}, where, "sources").items():
        key = f"sources.{name}"
        raw = _expect_dict(raw, where, key)
        if "file" not in raw:
            raise _fail(where, key, "needs a file")
        fmt = raw.get("format") or Path(str(raw["file"])).suffix.lstrip(".")
        if fmt not in FORMATS:
            raise _fail(where, f"{key}.format", f"must be one of {FORMATS}, got {fmt!r}")
        sources[name] = Source(name, str(raw["file"]), fmt)
    if not sources:
        raise _fail(where, "sources", "name at least one source file")
    return sources


def _source_of(raw: dict[str, Any], key: str, sources: dict[str, Source], where: str) -> str:
    src = raw.get("from")
    if src not in sources:
        raise _fail(where, f"{key}.from", f"must name one of the sources {sorted(sources)}")
    return src


def _table(name: str, raw: Any, sources: dict[str, Source], where: str) -> TableMapping:
    """One contract table: its columns, grouping and filters."""
    from keepwell.contract import TABLES

    key = f"tables.{name}"
    if name not in TABLES:
        raise _fail(where, key, f"not a contract table; choose from {sorted(TABLES)}")
    raw = _expect_dict(raw, where, key)
    contract_cols = TABLES[name].schema.columns
    columns: dict[str, ColumnSpec] = {}
    for col, spec in _expect_dict(raw.get("columns") or {}, where, f"{key}.columns").items():
        if col not in contract_cols:
            raise _fail(
                where,
                f"{key}.columns.{col}",
                f"not a column of the contract table {name}; choose from {list(contract_cols)}",
            )
        columns[col] = _column_spec(spec, where, f"{key}.columns.{col}")
    group_by = raw.get("group_by")
    if group_by is not None and group_by not in columns:
        raise _fail(where, f"{key}.group_by", f"{group_by!r} is not one of the mapped columns")
    if group_by is None:
        agg = [c for c, s in columns.items() if s.aggregate]
        if agg:
            raise _fail(where, f"{key}.columns.{agg[0]}", "aggregate needs group_by")
    keep = _expect_dict(raw.get("keep") or {}, where, f"{key}.keep")
    for col, cond in keep.items():
        cond = _expect_dict(cond, where, f"{key}.keep.{col}")
        bad = sorted(set(cond) - set(FILTER_OPS))
        if col not in columns or bad:
            raise _fail(
                where,
                f"{key}.keep.{col}",
                f"filters mapped columns with {FILTER_OPS}" + (f"; unknown {bad}" if bad else ""),
            )
    return TableMapping(name, _source_of(raw, key, sources, where), columns, group_by, keep)


def _snapshot(raw: Any, sources: dict[str, Source], where: str) -> SnapshotMapping:
    raw = _expect_dict(raw, where, "snapshot")
    for need in ("from", "key", "as_of"):
        if need not in raw:
            raise _fail(where, f"snapshot.{need}", "is required")
    feats = _expect_dict(raw.get("features") or {}, where, "snapshot.features")
    labs = _expect_dict(raw.get("labels") or {}, where, "snapshot.labels")
    return SnapshotMapping(
        source=_source_of(raw, "snapshot", sources, where),
        key=str(raw["key"]),
        as_of=_date(raw["as_of"], where, "snapshot.as_of"),
        features={k: _column_spec(v, where, f"snapshot.features.{k}") for k, v in feats.items()},
        labels={k: _column_spec(v, where, f"snapshot.labels.{k}") for k, v in labs.items()},
    )


def _labels(data: dict[str, Any], tables: dict[str, TableMapping], where: str):
    labels: dict[str, LabelRule] = {}
    for name, raw in _expect_dict(data.get("labels") or {}, where, "labels").items():
        raw = _expect_dict(raw, where, f"labels.{name}")
        rule = raw.get("rule")
        if rule not in LABEL_RULES:
            raise _fail(where, f"labels.{name}.rule", f"must be one of {LABEL_RULES}, got {rule!r}")
        horizon = raw.get("horizon_days")
        if not isinstance(horizon, int) or horizon <= 0:
            raise _fail(
                where, f"labels.{name}.horizon_days", f"a positive integer, got {horizon!r}"
            )
        if rule == "no_transaction" and "transactions" not in tables:
            raise _fail(where, f"labels.{name}", "rule no_transaction needs a transactions table")
        labels[name] = LabelRule(name, rule, horizon)
    return labels


def parse_mapping(data: Any, path: Path | None = None) -> ColumnMapping:
    """A `ColumnMapping` from parsed YAML; `MappingError` names the key that is wrong."""
    where = str(path) if path else "mapping"
    data = _expect_dict(data, where, "(top level)")
    unknown = sorted(set(data) - {"name", "description", "sources", "tables", "snapshot", "labels"})
    if unknown:
        raise _fail(where, "(top level)", f"unknown key(s) {unknown}")
    sources = _sources(data, where)
    tables = {
        name: _table(name, raw, sources, where)
        for name, raw in _expect_dict(data.get("tables") or {}, where, "tables").items()
    }
    if "customers" not in tables:
        raise _fail(where, "tables.customers", "every mapping must make the customers table")
    snapshot = None
    if data.get("snapshot") is not None:
        snapshot = _snapshot(data["snapshot"], sources, where)
    return ColumnMapping(
        name=str(data.get("name") or (path.stem if path else "mapping")),
        path=path,
        description=str(data.get("description") or "").strip(),
        sources=sources,
        tables=tables,
        snapshot=snapshot,
        labels=_labels(data, tables, where),
    )


def load_mapping(path: Path | str) -> ColumnMapping:
    """Read and check a mapping file (structure only; columns are checked against the data)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MappingError(f"mapping file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML: {exc}") from None
    return parse_mapping(data, path)
