"""`docs/data-contract.md`, generated from the schemas so the two cannot drift apart.

python -m keepwell.contract.docs docs/data-contract.md
"""

from __future__ import annotations

import sys

from keepwell.contract.rules import describe
from keepwell.contract.schemas import TABLES, TableSpec
from keepwell.contract.timing import timing

INTRO = """\
# Data contract

Generated from `keepwell/contract/schemas.py` by `python -m keepwell.contract.docs
docs/data-contract.md`; a test fails when this file and the schemas disagree.

A bank's data is a folder with one file per table: `<table>.parquet` (a file, or a folder of
Parquet parts) or `<table>.csv` (header row, ISO 8601 dates and timestamps, booleans
`true`/`false`; a value that does not parse is a violation). `keepwell validate FOLDER` checks it
and exits 1 on any violation, listing table, column, check, number of rows and up to five
examples; nothing downstream runs on invalid data.

- Types are families: `integer` is any integer width, `float` any float width, `timestamp (UTC)`
  a timestamp of any unit whose time zone is UTC or absent (a naive timestamp means UTC).
- A column is non-null unless its `null` cell says `yes`; null values pass value rules.
- Every `customer_id` in another table must exist in `customers.customer_id`, and
  `customers.rm_id` must exist in `rms.rm_id`.
- Columns beyond the contract are allowed and reported as a note. All tables are required except
  `oracle`.
- PII columns (marked below) are masked wherever a row is shown: a name keeps its first letter,
  a phone number its last two digits.

## When a row is known

A feature at as_of T (midnight UTC starting that day) uses only what was known before T, on any
day of the month; a label uses what becomes known in [T, T + horizon). Each table below says when
its rows become known (`keepwell/contract/timing.py`), and every feature, label, online-store
snapshot and planner run applies that one rule:

- an event is known at its timestamp: it counts for T when it happened before T;
- a period row (a monthly closing balance, named by the month's first day) is known when the
  period ends: it counts from the first day of the next month on, so on 15 June the newest
  balance is May's;
- a value filled in later (a closing date, a response, a reached call) is unknown until its own
  timestamp, and so are the columns that come with it;
- a callback task is a plan: it exists (with its holdout draw) `policy.callback_notice_days`
  before its due date, while features count it only once it is due;
- attributes without a time (segment, risk tolerance, a product's type) are taken from the
  export for every T; a column that holds the value at the end of the data is never read by a
  feature (`features.build` refuses it).
"""


def _table(spec: TableSpec) -> str:
    schema = spec.schema
    lines = [f"## `{spec.name}` ({'required' if spec.required else 'optional'})", ""]
    lines += [spec.description, ""]
    lines += [f"- known: {timing(spec.name).describe()}"]
    for key in spec.unique_keys():
        lines.append("- unique: " + ", ".join(f"`{c}`" for c in key))
    for ref in spec.references:
        lines.append(f"- `{ref.column}` must exist in `{ref.table}.{ref.target}`")
    lines += ["", "| column | type | null | rule | description |", "|---|---|---|---|---|"]
    for name, col in schema.columns.items():
        rules = "; ".join(describe(check) for check in col.checks)
        notes = [] if col.required else ["optional column"]
        if (col.metadata or {}).get("pii"):
            notes.append("**PII**, masked when shown")
        text = " ".join(filter(None, [*(f"{n}." for n in notes), col.description or ""]))
        null = "yes" if col.nullable else "no"
        lines.append(f"| `{name}` | {col.dtype} | {null} | {rules} | {text} |")
    if schema.checks:
        lines += ["", "Row rules:", ""]
        lines += [f"- `{check.name}`: {describe(check)}" for check in schema.checks]
    return "\n".join(lines)


def contract_markdown() -> str:
    return "\n\n".join([INTRO.rstrip(), *(_table(spec) for spec in TABLES.values())]) + "\n"


if __name__ == "__main__":
    text = contract_markdown()
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
