"""What validation found: violations with masked examples, a rich table, and `ContractError`."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table
from rich.text import Text

from keepwell.contract.schemas import PII_COLUMNS

MAX_EXAMPLES = 5


def mask_value(column: str, value: Any) -> Any:
    """Mask a PII value: a name keeps its first letter, a phone number its last two digits."""
    if value is None or column not in PII_COLUMNS:
        return value
    text = str(value)
    if column == "phone":
        digits = re.sub(r"\D", "", text)
        return "***" + digits[-2:] if len(digits) > 2 else "***"
    return (text[:1] + "***") if text else text


def mask_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {column: mask_value(column, value) for column, value in row.items()}


def format_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, str):
        return repr(value)
    return str(value)


def format_row(row: Mapping[str, Any]) -> str:
    return ", ".join(f"{column}={format_value(value)}" for column, value in row.items())


@dataclass(frozen=True)
class Violation:
    """One broken rule: where (table, columns), which check, how many rows, a few masked examples.

    `count` is the number of offending rows, or None when the problem is the table or the column
    as a whole (missing, unreadable, wrong type).
    """

    table: str
    columns: tuple[str, ...]
    check: str
    rule: str
    count: int | None = None
    examples: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        masked = tuple(mask_row(row) for row in self.examples[:MAX_EXAMPLES])
        object.__setattr__(self, "examples", masked)

    @property
    def column(self) -> str:
        return ", ".join(self.columns)

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.columns else self.table
        rows = (
            ""
            if self.count is None
            else f" ({self.count:,} {'row' if self.count == 1 else 'rows'})"
        )
        text = f"{where}: {self.check} - {self.rule}{rows}"
        for row in self.examples:
            text += f"\n    e.g. {format_row(row)}"
        return text


@dataclass(frozen=True)
class ValidationReport:
    """The result of checking a set of tables; `ok` when there is no violation."""

    violations: tuple[Violation, ...]
    rows: Mapping[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    source: str | None = None

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def summary(self) -> str:
        checked = f"{len(self.rows)} tables, {self.total_rows:,} rows checked"
        if self.ok:
            return f"Data contract OK: {checked}"
        return f"Data contract broken: {len(self.violations)} violations ({checked})"

    def __str__(self) -> str:
        lines = [self.summary(), *(f"- {v}" for v in self.violations)]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def render(self) -> Table:
        """Every violation with table, column, check, rule, row count and examples (PII masked);
        when ok, the tables and rows that were checked."""
        title = self.summary()
        notes = ([f"source: {self.source}"] if self.source else []) + list(self.notes)
        caption = Text("\n".join(notes)) if notes else None
        style = {
            "title": title,
            "caption": caption,
            "title_justify": "left",
            "min_width": len(title),
        }
        if self.ok:
            table = Table(**style, caption_justify="left")
            table.add_column("table")
            table.add_column("rows", justify="right")
            for name, n in self.rows.items():
                table.add_row(name, f"{n:,}")
            return table
        table = Table(**style, caption_justify="left", show_lines=True, expand=True)
        table.add_column("table", no_wrap=True)
        for header in ("column", "check", "rule"):
            table.add_column(header, ratio=3, overflow="fold")
        table.add_column("rows", justify="right", no_wrap=True)
        table.add_column("examples", ratio=8, overflow="fold")
        for v in self.violations:
            table.add_row(
                Text(v.table),
                Text(v.column or "-"),
                Text(v.check),
                Text(v.rule),
                Text("-" if v.count is None else f"{v.count:,}"),
                Text("\n".join(format_row(row) for row in v.examples)),
            )
        return table


class ContractError(ValueError):
    """Raised when tables break the data contract; nothing downstream runs on invalid data."""

    def __init__(self, report: ValidationReport):
        self.report = report
        super().__init__(str(report))


def report(
    violations: Iterable[Violation],
    rows: Mapping[str, int] | None = None,
    notes: Iterable[str] = (),
    source: str | None = None,
) -> ValidationReport:
    return ValidationReport(tuple(violations), dict(rows or {}), tuple(notes), source)
