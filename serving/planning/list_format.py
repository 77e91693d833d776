"""The daily list folder's file format, declared once: the per-RM list schema, the day folder's
other files, and the one way to read list files (`read_list_table`).

`<workspace>/<paths.lists>/<D>/` holds `<rm_id>.parquet` and `.csv` per RM with at least one
task (rows in rank order, columns `LIST_SCHEMA`), `summary.json`, and the Parquet files that are
no list (`AUX_FILES`: `book_mix`, `holdout`, `deferred`). The planner writes the list columns
(`serving.planning.write`, checked against the schema); the RM page (`serving.planning.lists`),
the next day's carry-over (`serving.planning.job`), the KPI report and monitoring read them with
`read_list_table`.

`rank_score` is the score that ranked the list (whatever `--rank-by` chose); files written
before it was renamed call it `value_at_risk`, and the reader still accepts them (`LEGACY`).
Text columns may be Arrow `string` or `large_string` (pandas writes the latter); a nullable
column that is null throughout may have Arrow's null type.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

UTC_NS = pa.timestamp("ns", tz="UTC")
LIST_SCHEMA = pa.schema(
    [
        ("rank", pa.int64()),
        ("task_id", pa.string()),
        ("list_date", pa.date32()),
        ("rm_id", pa.string()),
        ("branch_id", pa.string()),
        ("customer_id", pa.string()),
        ("phone_masked", pa.string()),
        ("segment", pa.string()),
        ("rule", pa.string()),
        ("rules", pa.string()),
        ("deadline", UTC_NS),
        ("overdue", pa.bool_()),
        ("carried_from", pa.date32()),
        ("channel", pa.string()),
        ("special_care", pa.bool_()),
        ("value_tier", pa.string()),
        ("risk_tier", pa.string()),
        ("churn_probability", pa.float64()),
        ("complaint_probability", pa.float64()),
        ("rank_score", pa.float64()),
        ("action", pa.string()),
        ("reasons", pa.string()),
        ("detail", pa.string()),
        ("model_versions", pa.string()),
    ]
)
LIST_COLUMNS: tuple[str, ...] = tuple(LIST_SCHEMA.names)
NULLABLE: tuple[str, ...] = ("carried_from", "detail")
LEGACY: dict[str, str] = {"value_at_risk": "rank_score"}  # old name -> name in LIST_SCHEMA
AUX_FILES = ("book_mix", "holdout", "deferred")  # the day folder's Parquet files that are no list
REASON_SEPARATOR = " | "


class ListFormatError(ValueError):
    """A list file breaks the format; the message names the file, the column and the value."""


KINDS: dict[str, tuple[str, Callable[[pa.DataType], bool]]] = {
    "int": ("an integer", pa.types.is_integer),
    "str": ("text", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)),
    "date": ("a date", pa.types.is_date),
    "time": ("a UTC timestamp", lambda t: pa.types.is_timestamp(t) and t.tz in ("UTC", "+00:00")),
    "bool": ("a boolean", pa.types.is_boolean),
    "float": ("a number", lambda t: pa.types.is_floating(t) or pa.types.is_integer(t)),
}


def kind_of(declared: pa.DataType) -> str:
    """The `KINDS` key of a type of `LIST_SCHEMA` (what a reader accepts for it)."""
    for kind, (_label, ok) in KINDS.items():
        if kind != "float" and ok(declared):
            return kind
    return "float"


def type_errors(
    schema: pa.Schema, kinds: dict[str, str] | None = None, *, nullable: Iterable[str] = NULLABLE
) -> list[str]:
    """What is wrong with the types of `schema`'s columns: "column 'x' must be <kind>, got <type>"
    for each column of `kinds` (default: every `LIST_SCHEMA` column in `schema`)."""
    if kinds is None:
        kinds = {f.name: kind_of(f.type) for f in LIST_SCHEMA if f.name in schema.names}
    nulls = set(nullable)
    out = []
    for column, kind in kinds.items():
        label, ok = KINDS[kind]
        got = schema.field(column).type
        if not ok(got) and not (column in nulls and pa.types.is_null(got)):
            out.append(f"column {column!r} must be {label}, got {got}")
    return out


def read_list_table(
    path: Path, columns: Iterable[str] = LIST_COLUMNS, *, shown: str | None = None
) -> pa.Table:
    """The named columns of one list file (new names, `LEGACY` ones renamed).

    A file that is not readable Parquet or lacks a column is a `ListFormatError` naming the file
    as `shown` (default: its path)."""
    where = shown or str(path)
    wanted = list(columns)
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise ListFormatError(f"{where} is not a readable Parquet file: {exc}") from None
    new_name = {old: new for old, new in LEGACY.items() if old in schema.names}
    stored = {new_name.get(name, name): name for name in schema.names}
    missing = [c for c in wanted if c not in stored]
    if missing:
        raise ListFormatError(
            f"{where} has no column {', '.join(repr(c) for c in missing)} "
            f"(columns found: {', '.join(schema.names)})"
        )
    table = pq.read_table(path, columns=[stored[c] for c in wanted])
    return table.rename_columns(wanted)


def list_dates(lists_root: Path, *, need_summary: bool = True) -> list[dt.date]:
    """The dates that have a list folder `<lists_root>/<YYYY-MM-DD>/`, oldest first (with
    `need_summary`, only the folders a finished `keepwell plan` wrote: with `summary.json`)."""
    out = []
    if lists_root.is_dir():
        for child in lists_root.iterdir():
            try:
                day = dt.date.fromisoformat(child.name)
            except ValueError:
                continue
            if child.is_dir() and (not need_summary or (child / "summary.json").is_file()):
                out.append(day)
    return sorted(out)


def rm_lists(folder: Path) -> list[str]:
    """The RM ids with a list file in a day's folder."""
    skip = set(AUX_FILES)
    return sorted(p.stem for p in folder.glob("*.parquet") if p.stem not in skip)
