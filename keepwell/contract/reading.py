"""Opening a folder of bank tables lazily on an Ibis connection (DuckDB by default).

A folder holds one file per table: `<table>.parquet` (a file, or a folder of Parquet parts) or
`<table>.csv` (header row, ISO dates and timestamps, booleans true/false). Nothing is loaded:
each table is a view the queries scan when they run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.datatypes as dt
from ibis.backends import BaseBackend

from keepwell.contract.dtypes import Boolean, ContractType, String
from keepwell.contract.report import ContractError, Violation, report
from keepwell.contract.schemas import TABLES, TableSpec

FOLDER = "(folder)"


@dataclass(frozen=True)
class Source:
    """One table's file and its raw Ibis table (CSV: every column a string)."""

    name: str
    path: Path
    format: str
    raw: ibis.Table


@dataclass
class Folder:
    sources: dict[str, Source] = field(default_factory=dict)
    problems: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unusable: set[str] = field(default_factory=set)


def connect() -> BaseBackend:
    """An in-memory DuckDB connection (session time zone UTC, no progress bar on the terminal)."""
    con = ibis.duckdb.connect()
    con.raw_sql("SET enable_progress_bar = false; SET TimeZone = 'UTC'")
    return con


def first_line(exc: BaseException) -> str:
    """The first line of an error: readers may quote the offending line (and its PII) below it."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _candidates(folder: Path, name: str) -> list[Path]:
    return [p for p in (folder / f"{name}.parquet", folder / f"{name}.csv") if p.exists()]


def _read(con: BaseBackend, path: Path) -> ibis.Table:
    if path.suffix == ".csv":
        return con.read_csv(path, header=True, all_varchar=True, delim=",", quote='"')
    if path.is_dir():
        return con.read_parquet(str(path / "**" / "*.parquet"))
    return con.read_parquet(path)


def read_folder(folder: Path | str, con: BaseBackend | None = None) -> Folder:
    """Find and open every contract table in `folder`; problems are violations, not exceptions."""
    folder = Path(folder)
    found = Folder()
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        found.problems.append(Violation(FOLDER, (), "folder_exists", f"{folder} {what}"))
        return found
    con = con if con is not None else connect()
    for name in TABLES:
        paths = _candidates(folder, name)
        if len(paths) > 1:
            found.unusable.add(name)
            files = " and ".join(p.name for p in paths)
            rule = f"one file per table, found {files}"
            found.problems.append(Violation(name, (), "single_file", rule))
            continue
        if not paths:
            continue
        path = paths[0]
        try:
            raw = _read(con, path)
        except Exception as exc:  # any reader error: corrupt, empty, not Parquet/CSV at all
            found.unusable.add(name)
            found.problems.append(
                Violation(name, (), "readable", f"cannot read {path.name}: {first_line(exc)}")
            )
            continue
        found.sources[name] = Source(name, path, path.suffix.lstrip("."), raw)
    known = {f"{name}{ext}" for name in TABLES for ext in (".parquet", ".csv")}
    ignored = sorted(p.name for p in folder.iterdir() if p.name not in known)
    if ignored:
        found.notes.append(f"ignored files not in the contract: {', '.join(ignored)}")
    return found


def parse_value(raw: ibis.Column, dtype: ContractType, *, strict: bool) -> ibis.Column:
    """A CSV string column as the contract type; `strict` raises on a bad value when the query
    runs, otherwise a value that does not parse becomes null."""
    if isinstance(dtype, String):
        return raw
    if isinstance(dtype, Boolean):
        word = raw.strip().lower()
        return ibis.cases(
            (word == "true", True),
            (word == "false", False),
            else_=raw.cast(dt.boolean) if strict else ibis.null(dt.boolean),
        )
    target = dtype.type
    return raw.cast(target) if strict else raw.try_cast(target)


def parse_csv(raw: ibis.Table, spec: TableSpec, *, strict: bool) -> ibis.Table:
    """Type the contract's columns of a CSV table; other columns stay strings."""
    parsed = {
        name: parse_value(raw[name], col.dtype, strict=strict)
        for name, col in spec.schema.columns.items()
        if name in raw.columns
    }
    return raw.mutate(**parsed) if parsed else raw


def open_tables(folder: Path | str, con: BaseBackend | None = None) -> dict[str, ibis.Table]:
    """Open the contract tables in `folder` as lazy Ibis tables, CSV columns typed.

    Only reading is checked here (missing folder, unreadable or doubled files raise
    `ContractError`); the rules are not - use `require_valid` before relying on the data. A CSV
    value that does not parse raises when a query touches it, never turns silently into null.
    """
    found = read_folder(folder, con)
    if found.problems:
        raise ContractError(report(found.problems, notes=found.notes, source=str(folder)))
    return {
        name: parse_csv(src.raw, TABLES[name], strict=True) if src.format == "csv" else src.raw
        for name, src in found.sources.items()
    }
