"""Pandera checks as Ibis row predicates, so one aggregate query counts every rule's failures.

pandera's own Ibis backend answers pass/fail per check and, on failure, pulls the whole check
output into pandas; the contract needs a count per rule and five examples on tables of tens of
millions of rows. So the declared checks are turned into boolean expressions over the table:
pandera's built-in checks from their `statistics`, custom checks by calling them (they return a
boolean column of the same table).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ibis
import ibis.expr.types as ir
from pandera.api.checks import Check

# pandera built-in check name -> (predicate for a GOOD value, human text)
_Builtin = tuple[Callable[..., ir.BooleanValue], Callable[..., str]]


def _values(values: Any) -> str:
    return ", ".join(str(v) for v in values)


def _in_range(c: ir.Value, min_value, max_value, include_min=True, include_max=True):
    low = c >= min_value if include_min else c > min_value
    high = c <= max_value if include_max else c < max_value
    return low & high


def _in_range_text(min_value, max_value, include_min=True, include_max=True) -> str:
    lo, hi = ("[" if include_min else "("), ("]" if include_max else ")")
    return f"in {lo}{min_value}, {max_value}{hi}"


BUILTINS: dict[str, _Builtin] = {
    "isin": (lambda c, allowed_values: c.isin(list(allowed_values)),
             lambda allowed_values: f"one of {_values(allowed_values)}"),
    "notin": (lambda c, forbidden_values: c.notin(list(forbidden_values)),
              lambda forbidden_values: f"none of {_values(forbidden_values)}"),
    "in_range": (_in_range, _in_range_text),
    "greater_than": (lambda c, min_value: c > min_value, lambda min_value: f"> {min_value}"),
    "greater_than_or_equal_to": (lambda c, min_value: c >= min_value,
                                 lambda min_value: f">= {min_value}"),
    "less_than": (lambda c, max_value: c < max_value, lambda max_value: f"< {max_value}"),
    "less_than_or_equal_to": (lambda c, max_value: c <= max_value,
                              lambda max_value: f"<= {max_value}"),
    "equal_to": (lambda c, value: c == value, lambda value: f"= {value}"),
    "not_equal_to": (lambda c, value: c != value, lambda value: f"!= {value}"),
}  # fmt: skip


def describe(check: Check) -> str:
    """A check in words: `one of in, out`, `in [1, 5]`, or a custom check's description."""
    if check.name in BUILTINS:
        return BUILTINS[check.name][1](**check.statistics)
    return check.description or check.name


def failing(check: Check, table: ibis.Table, column: str | None = None) -> ir.BooleanValue:
    """True for the rows of `table` that break `check` (on `column`, or a row rule when None).

    Null values pass a column check (pandera's `ignore_na`); nullability is its own check.
    A row rule returns true for good rows and handles nulls itself.
    """
    if column is not None and check.name in BUILTINS:
        good = BUILTINS[check.name][0](table[column], **check.statistics)
    else:
        good = check(table, column).check_output
        if not isinstance(good, ir.BooleanColumn):
            raise TypeError(f"check {check.name!r} must return a boolean column of the table")
    bad = ~good.fill_null(True)
    if column is not None and check.ignore_na:
        bad = table[column].notnull() & bad
    return bad


def is_null(table: ibis.Table, column: str) -> ir.BooleanValue:
    """Null, or NaN in a float column (pandera treats both as missing)."""
    c = table[column]
    return c.isnull() | c.isnan().fill_null(False) if c.type().is_floating() else c.isnull()
