"""Applying a mapping: read the sources and build contract tables as Ibis expressions."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.mapping.spec import (
    ColumnMapping,
    ColumnSpec,
    MappedData,
    MappingError,
    SnapshotMapping,
    Source,
    TableMapping,
    load_mapping,
)

if TYPE_CHECKING:
    import ibis
    from ibis.backends import BaseBackend


# --------------------------------------------------------------------------- reading sources


def _read_source(source: Source, data_dir: Path, backend: BaseBackend, where: str) -> ibis.Table:
    from features.engines import engine_of

    path = Path(source.file)
    path = path if path.is_absolute() else data_dir / path
    if not path.exists():
        raise MappingError(f"{where}: sources.{source.name}.file: {path} does not exist")
    engine = engine_of(backend)
    # a fresh name per read: a view registered under a reused name would silently change what
    # tables opened earlier on the same backend read
    table_name = f"keepwell_src_{source.name}_{uuid.uuid4().hex[:12]}"
    if source.format == "parquet":
        return backend.read_parquet(str(path), table_name=table_name)
    if source.format == "csv":
        if engine == "duckdb":
            return backend.read_csv(str(path), table_name=table_name, header=True, all_varchar=True)
        return backend.read_csv(str(path), table_name=table_name, header=True)
    # whitespace: a header line of names, then fields separated by runs of blanks
    with path.open(encoding="utf-8") as fh:
        header = fh.readline().split()
    if not header:
        raise MappingError(f"{where}: sources.{source.name}: {path.name} has no header line")
    if engine == "duckdb":
        lines = backend.read_csv(
            str(path),
            table_name=table_name,
            columns={"line": "VARCHAR"},
            header=False,
            delim="\x1f",
            quote="",
            escape="",
            auto_detect=False,
        )
    else:
        backend._session.read.text(str(path)).withColumnRenamed(
            "value", "line"
        ).createOrReplaceTempView(table_name)
        lines = backend.table(table_name)
    lines = lines.filter(lines.line.strip() != "")
    parts = lines.line.strip().re_split(r"\s+")
    fields = lines.select(**{name: parts[i] for i, name in enumerate(header)})
    return fields.filter(fields[header[0]] != header[0])  # drop the header line


# --------------------------------------------------------------------------- building columns


def _clean(value: ibis.Value) -> ibis.Value:
    """Strings stripped, empty strings null; other types unchanged."""
    import ibis

    if not value.type().is_string():
        return value
    stripped = value.strip()
    return ibis.ifelse(stripped == "", ibis.null("string"), stripped)


def _missing_column(where: str, spec: ColumnSpec, name: str, source: Source, raw: ibis.Table):
    return MappingError(
        f"{where}: {spec.key}: column {name!r} not found in {source.file} "
        f"(its columns: {', '.join(raw.columns)})"
    )


def _column_expr(
    spec: ColumnSpec, raw: ibis.Table, source: Source, where: str, target: Any | None
) -> ibis.Value:
    """The Ibis expression of one mapped column (before any aggregation)."""
    import ibis
    import ibis.expr.datatypes as dt_

    want = dt_.dtype(spec.cast) if spec.cast else target
    if spec.is_constant:
        value = spec.constant
        if value is None:
            return ibis.null(want or dt_.string)
        if want is not None and (want.is_timestamp() or want.is_date()):
            return ibis.literal(str(value)).cast(want)
        return ibis.literal(value, type=want) if want is not None else ibis.literal(value)
    name = spec.source_column
    assert name is not None
    if name not in raw.columns:
        raise _missing_column(where, spec, name, source, raw)
    value = _clean(raw[name])
    if spec.months_before is not None:
        assert spec.anchor is not None
        months = value.cast("int64")
        return ibis.date(spec.anchor) - months.as_interval("M")
    if spec.values is not None:
        as_text = value.cast("string") if not value.type().is_string() else value
        default = spec.default if spec.has_default else None
        cases = [(as_text == k, ibis.literal(v)) for k, v in spec.values.items() if v is not None]
        fallback = ibis.null() if default is None else ibis.literal(default)
        mapped = ibis.cases(*cases, else_=fallback) if cases else fallback
        if not spec.has_default:  # None values in the map are explicit nulls
            nulls = [k for k, v in spec.values.items() if v is None]
            if nulls:
                mapped = ibis.ifelse(as_text.isin(nulls), ibis.null(), mapped)
        value = mapped
    if spec.parse is not None:
        kind = want if want is not None else dt_.timestamp
        value = value.as_date(spec.parse) if kind.is_date() else value.as_timestamp(spec.parse)
    return value


def _cast(value: ibis.Value, target: Any) -> ibis.Value:
    if target is None or value.type() == target:
        return value
    if target.is_timestamp() and value.type().is_date():
        value = value.cast("timestamp")
    return value.cast(target)


def _check_values(spec: ColumnSpec, raw: ibis.Table, source: Source, where: str) -> None:
    """Every source value must be in a value map that has no default."""
    if spec.values is None or spec.has_default or spec.column is None:
        return
    value = _clean(raw[spec.column])
    as_text = value.cast("string") if not value.type().is_string() else value
    unknown = raw.filter(as_text.notnull() & ~as_text.isin(list(spec.values)))
    found = unknown.select(v=as_text).distinct().limit(5).to_pyarrow().column("v").to_pylist()
    if found:
        raise MappingError(
            f"{where}: {spec.key}.values: {source.file} column {spec.column!r} has values the map "
            f"does not cover: {found} (map: {sorted(spec.values)}; add them or give a default)"
        )


def _condition(value: ibis.Value, op: str, arg: Any) -> ibis.Value:
    if op == "notnull":
        return value.notnull() if arg else value.isnull()
    if op == "isin":
        return value.isin(list(arg))
    compare = {
        "gt": value.__gt__,
        "ge": value.__ge__,
        "lt": value.__lt__,
        "le": value.__le__,
        "eq": value.__eq__,
        "ne": value.__ne__,
    }
    return compare[op](arg)


def _filter(value: ibis.Value, cond: dict[str, Any]) -> ibis.Value:
    import ibis

    out = ibis.literal(True)
    for op, arg in cond.items():
        out &= _condition(value, op, arg)
    return out


def _aggregate(value: ibis.Value, how: str | None) -> ibis.Value:
    if how in (None, "first"):
        return value.arbitrary() if how == "first" else value.min()
    return getattr(value, how)()


def _build_table(
    mapping: ColumnMapping,
    spec: TableMapping,
    raw: ibis.Table,
    source: Source,
    notes: list[str],
) -> ibis.Table:
    import ibis

    from keepwell.contract import TABLES

    where = mapping.where
    contract = TABLES[spec.name].schema.columns
    missing = [
        c
        for c, col in contract.items()
        if c not in spec.columns and not col.nullable and col.required
    ]
    if missing:
        raise MappingError(
            f"{where}: tables.{spec.name}.columns: the contract's required column(s) "
            f"{missing} are not mapped (map them to a source column or give a constant)"
        )
    targets = {c: contract[c].dtype.type for c in spec.columns}
    for col_spec in spec.columns.values():
        _check_values(col_spec, raw, source, where)
    row_level = {
        c: _column_expr(s, raw, source, where, targets[c])
        for c, s in spec.columns.items()
        if not s.is_constant
    }
    table = raw.select(**{c: _cast(v, targets[c]) for c, v in row_level.items()})
    if spec.keep:
        table = table.filter(*[_filter(table[c], cond) for c, cond in spec.keep.items()])
    if spec.group_by is not None:
        key = spec.group_by
        others = {c: _aggregate(table[c], spec.columns[c].aggregate) for c in row_level if c != key}
        table = table.filter(table[key].notnull()).group_by(key).aggregate(**others)
        without = [c for c in row_level if c != key and spec.columns[c].aggregate is None]
        if without:
            notes.append(f"{spec.name}: {', '.join(without)} aggregated with min (no aggregate)")
    constants = {
        c: _cast(_column_expr(s, raw, source, where, targets[c]), targets[c])
        for c, s in spec.columns.items()
        if s.is_constant
    }
    filled = [c for c, col in contract.items() if c not in spec.columns and col.nullable]
    nulls = {c: ibis.null(contract[c].dtype.type) for c in filled}
    if filled:
        notes.append(f"{spec.name}: not in the mapping, left null: {', '.join(filled)}")
    table = table.mutate(**constants, **nulls) if constants or nulls else table
    return table.select(*[c for c in contract if c in table.columns])


def _build_snapshot(
    mapping: ColumnMapping, snap: SnapshotMapping, raw: ibis.Table, source: Source
) -> ibis.Table:
    import ibis

    where = mapping.where
    if snap.key not in raw.columns:
        spec = ColumnSpec(key="snapshot.key", column=snap.key)
        raise _missing_column(where, spec, snap.key, source, raw)
    exprs: dict[str, ibis.Value] = {
        "customer_id": _clean(raw[snap.key]).cast("string"),
        "as_of": ibis.date(snap.as_of),
    }
    for group in (snap.features, snap.labels):
        for name, spec in group.items():
            if name in exprs:
                raise MappingError(f"{where}: {spec.key}: the name {name!r} is used twice")
            _check_values(spec, raw, source, where)
            target = ibis.dtype(spec.cast) if spec.cast else None
            exprs[name] = _cast(_column_expr(spec, raw, source, where, target), target)
    return raw.select(**exprs)


def apply_mapping(
    mapping: ColumnMapping | Path | str, data_dir: Path | str, backend: BaseBackend
) -> MappedData:
    """Contract-shaped Ibis tables (and the snapshot table, if any) from the user's files."""
    if not isinstance(mapping, ColumnMapping):
        mapping = load_mapping(mapping)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise MappingError(f"{mapping.where}: data folder not found: {data_dir}")
    raws = {
        name: _read_source(src, data_dir, backend, mapping.where)
        for name, src in mapping.sources.items()
    }
    notes: list[str] = []
    tables = {
        name: _build_table(mapping, spec, raws[spec.source], mapping.sources[spec.source], notes)
        for name, spec in mapping.tables.items()
    }
    constants = [
        f"{name}.{c}" for name, spec in mapping.tables.items()
        for c, s in spec.columns.items() if s.is_constant
    ]  # fmt: skip
    if constants:
        notes.append(f"constant columns feed no feature: {', '.join(constants)}")
    snapshot = None
    if mapping.snapshot is not None:
        snap = mapping.snapshot
        snapshot = _build_snapshot(mapping, snap, raws[snap.source], mapping.sources[snap.source])
    return MappedData(mapping, tables, snapshot, notes)


# --------------------------------------------------------------------------- labels


def label_columns(mapping: ColumnMapping) -> list[str]:
    """The label columns a mapping provides (snapshot labels, then rule-based labels)."""
    names = list(mapping.snapshot.labels) if mapping.snapshot else []
    return names + [n for n in mapping.labels if n not in names]


def rule_labels(
    mapped: MappedData, as_of_dates: list[dt.date], data_end: dt.date
) -> ibis.Table | None:
    """Labels from the mapping's `labels` rules, per (customer_id, as_of), or None if it has none.

    `no_transaction` with horizon H: the label is true when the customer has no transaction in
    [as_of, as_of + H). `labeled` is false (and every label null, never a silent negative) when
    a horizon runs past `data_end`, the day after the last event - as in `features.labels`.
    Rows are the customers that exist at as_of (opened before it, not closed before it).
    """
    import ibis

    rules = list(mapped.mapping.labels.values())
    if not rules:
        return None
    customers = mapped.tables["customers"]
    txns = mapped.tables["transactions"].select("customer_id", "ts")
    dates = ibis.memtable({"as_of": list(as_of_dates)}, schema={"as_of": "date"})
    base = customers.select("customer_id", "opened_at", "closed_at").cross_join(dates)
    start = base.as_of.cast("timestamp('UTC')")
    base = base.filter(base.opened_at < start, base.closed_at.isnull() | (base.closed_at >= start))
    out = base.select("customer_id", "as_of")
    for rule in rules:
        h = rule.horizon_days
        joined = out.select("customer_id", "as_of").join(txns, "customer_id")
        t0 = joined.as_of.cast("timestamp('UTC')")
        active = (
            joined.filter(joined.ts >= t0, joined.ts < t0 + ibis.interval(days=h))
            .select("customer_id", "as_of")
            .distinct()
            .mutate(_active=ibis.literal(True))
        )
        with_active = out.left_join(active, ["customer_id", "as_of"]).select(
            out, _active=lambda j: j._active
        )
        out = with_active.mutate(**{rule.name: with_active._active.isnull()}).drop("_active")
    horizon = max(r.horizon_days for r in rules)
    labeled = (out.as_of + ibis.interval(days=horizon)) <= ibis.date(data_end)
    null = ibis.null("boolean")
    return out.mutate(
        **{r.name: ibis.ifelse(labeled, out[r.name], null) for r in rules}, labeled=labeled
    )
