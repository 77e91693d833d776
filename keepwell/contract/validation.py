"""Checking tables against the contract with Ibis aggregates: counts are computed where the data
lives (DuckDB, Spark) and only up to five example rows per violation are materialised."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from keepwell.contract.dtypes import String
from keepwell.contract.reading import (
    first_line,
    open_tables,
    parse_csv,
    parse_value,
    read_folder,
)
from keepwell.contract.report import (
    MAX_EXAMPLES,
    ContractError,
    ValidationReport,
    Violation,
    report,
)
from keepwell.contract.rules import describe, failing, is_null
from keepwell.contract.schemas import TABLES, TableSpec


def _rows(expr: ibis.Table) -> list[dict[str, Any]]:
    return expr.to_pyarrow().to_pylist()


def _examples(table: ibis.Table, where: ir.BooleanValue, columns: Iterable[str]) -> list[dict]:
    return _rows(table.filter(where).select(*dict.fromkeys(columns)).limit(MAX_EXAMPLES))


@dataclass
class _RowCheck:
    columns: tuple[str, ...]
    check: str
    rule: str
    bad: ir.BooleanValue


@dataclass
class _Checked:
    """What one table's check left behind for the cross-table pass."""

    table: ibis.Table
    usable: set[str]
    violations: list[Violation] = field(default_factory=list)
    rows: int | None = None


def _show(spec: TableSpec, usable: set[str], columns: Iterable[str]) -> list[str]:
    """Columns for an example row: what identifies the row, then what the check read."""
    return [c for c in dict.fromkeys((*spec.id_columns, *columns)) if c in usable]


def _check_table(spec: TableSpec, t: ibis.Table, unparsed: set[str], notes: list[str]) -> _Checked:
    name, columns = spec.name, spec.schema.columns
    out = _Checked(t, set())
    extra = [c for c in t.columns if c not in columns]
    if extra:
        notes.append(f"{name}: extra columns not in the contract: {', '.join(extra)}")
    for c, col in columns.items():
        if c not in t.columns:
            if col.required:
                out.violations.append(Violation(name, (c,), "column_present", "required column"))
            continue
        if not col.dtype.accepts(t[c].type()):
            rule = f"expected {col.dtype}, got {t[c].type()}"
            examples = _rows(t.select(c).filter(t[c].notnull()).limit(MAX_EXAMPLES))
            out.violations.append(Violation(name, (c,), "dtype", rule, None, tuple(examples)))
            continue
        if c not in unparsed:
            out.usable.add(c)

    checks: list[_RowCheck] = []
    for c, col in columns.items():
        if c not in out.usable:
            continue
        if not col.nullable:
            checks.append(_RowCheck((c,), "not_nullable", "must not be null", is_null(t, c)))
        for check in col.checks:
            checks.append(_RowCheck((c,), check.name, describe(check), failing(check, t, c)))
    for check in spec.schema.checks:
        cols = tuple(check.statistics["columns"])
        if set(cols) <= out.usable:
            checks.append(_RowCheck(cols, check.name, describe(check), failing(check, t)))

    metrics = {f"k{i}": t.count(where=rc.bad) for i, rc in enumerate(checks)}
    try:
        counts = _rows(t.aggregate(n_rows=t.count(), **metrics))[0]
    except Exception as exc:  # a file that opens but cannot be scanned (corrupt, ragged CSV)
        out.violations.append(Violation(name, (), "readable", first_line(exc)))
        out.usable.clear()
        return out
    out.rows = counts["n_rows"]
    for i, rc in enumerate(checks):
        if n := counts[f"k{i}"]:
            examples = _examples(t, rc.bad, _show(spec, out.usable, rc.columns))
            out.violations.append(
                Violation(name, rc.columns, rc.check, rc.rule, n, tuple(examples))
            )

    for key in spec.unique_keys():
        if not set(key) <= out.usable:
            continue
        groups = t.group_by(list(key)).aggregate(n_dup=ibis._.count()).filter(ibis._.n_dup > 1)
        n = groups.n_dup.sum().to_pyarrow().as_py()
        if n:
            dups = t.semi_join(groups, list(key)).order_by(list(key))
            examples = _rows(dups.select(*_show(spec, out.usable, key)).limit(MAX_EXAMPLES))
            rule = f"{key[0]} is unique" if len(key) == 1 else f"({', '.join(key)}) is unique"
            out.violations.append(Violation(name, key, "unique", rule, n, tuple(examples)))
    return out


def _check_references(spec: TableSpec, checked: Mapping[str, _Checked]) -> list[Violation]:
    found = []
    own = checked[spec.name]
    for ref in spec.references:
        target = checked.get(ref.table)
        if target is None or ref.column not in own.usable or ref.target not in target.usable:
            continue
        t, other = own.table, target.table
        orphans = t.filter(t[ref.column].notnull()).anti_join(
            other, t[ref.column] == other[ref.target]
        )
        n = orphans.count().to_pyarrow().as_py()
        if n:
            show = _show(spec, own.usable, (ref.column,))
            examples = _rows(orphans.select(*dict.fromkeys(show)).limit(MAX_EXAMPLES))
            rule = f"must exist in {ref.table}.{ref.target}"
            found.append(
                Violation(spec.name, (ref.column,), "foreign_key", rule, n, tuple(examples))
            )
    return found


def _validate(
    tables: Mapping[str, ibis.Table],
    *,
    prior: Iterable[Violation] = (),
    unparsed: Mapping[str, set[str]] | None = None,
    unusable: Iterable[str] = (),
    notes: Iterable[str] = (),
    source: str | None = None,
) -> ValidationReport:
    violations, notes, unusable = list(prior), list(notes), set(unusable)
    unparsed = unparsed or {}
    checked: dict[str, _Checked] = {}
    for name, spec in TABLES.items():
        if name in tables:
            checked[name] = _check_table(spec, tables[name], unparsed.get(name, set()), notes)
            violations += checked[name].violations
        elif name in unusable:
            continue
        elif spec.required:
            violations.append(Violation(name, (), "table_present", "required table is missing"))
        else:
            notes.append(f"optional table {name} not provided")
    for name in checked:
        violations += _check_references(TABLES[name], checked)
    extra = sorted(set(tables) - set(TABLES))
    if extra:
        notes.append(f"ignored tables not in the contract: {', '.join(extra)}")
    rows = {name: c.rows for name, c in checked.items() if c.rows is not None}
    return report(violations, rows, notes, source)


def validate_tables(tables: Mapping[str, ibis.Table]) -> ValidationReport:
    """Check typed Ibis tables (any backend: DuckDB, Spark) against the contract."""
    return _validate(tables)


def _unparseable(spec: TableSpec, raw: ibis.Table) -> tuple[list[Violation], set[str]]:
    """CSV values that do not parse as their column's type: one aggregate over the raw strings."""
    bad = {
        c: raw[c].notnull() & parse_value(raw[c], col.dtype, strict=False).isnull()
        for c, col in spec.schema.columns.items()
        if c in raw.columns and not isinstance(col.dtype, String)
    }
    if not bad:
        return [], set()
    counts = _rows(raw.aggregate(**{c: raw.count(where=b) for c, b in bad.items()}))[0]
    violations = []
    for c, n in counts.items():
        if n:
            dtype = spec.schema.columns[c].dtype
            show = [x for x in (*spec.id_columns, c) if x in raw.columns]
            examples = tuple(_examples(raw, bad[c], show))
            rule = f"value does not parse as {dtype}"
            violations.append(Violation(spec.name, (c,), "parse", rule, n, examples))
    return violations, {v.columns[0] for v in violations}


def validate_folder(path: Path | str, con: BaseBackend | None = None) -> ValidationReport:
    """Open the tables in `path` (Parquet or CSV) and check them against the contract."""
    found = read_folder(path, con)
    if not Path(path).is_dir():
        return report(found.problems, source=str(path))
    prior, unusable = list(found.problems), set(found.unusable)
    tables: dict[str, ibis.Table] = {}
    unparsed: dict[str, set[str]] = {}
    for name, src in found.sources.items():
        spec = TABLES[name]
        if src.format != "csv":
            tables[name] = src.raw
            continue
        try:
            parse_violations, unparsed[name] = _unparseable(spec, src.raw)
        except Exception as exc:  # a ragged or undecodable CSV fails when scanned
            prior.append(Violation(name, (), "readable", f"{src.path.name}: {first_line(exc)}"))
            unusable.add(name)
            continue
        prior += parse_violations
        tables[name] = parse_csv(src.raw, spec, strict=False)
    return _validate(
        tables,
        prior=prior,
        unparsed=unparsed,
        unusable=unusable,
        notes=found.notes,
        source=str(path),
    )


def require_valid(
    data: Path | str | Mapping[str, ibis.Table], con: BaseBackend | None = None
) -> dict[str, ibis.Table]:
    """The contract tables of a folder (or the given tables) if they are valid; otherwise
    `ContractError` listing every violation, so nothing downstream runs on invalid data."""
    if isinstance(data, Mapping):
        result = validate_tables(data)
        tables = dict(data)
    else:
        result = validate_folder(data, con)
        tables = open_tables(data, con) if result.ok else {}
    if not result.ok:
        raise ContractError(result)
    return tables
