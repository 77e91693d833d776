"""Bring your own data: a YAML column mapping turns a user's files into contract tables.

A mapping names its source files, then says how each contract table is made from one of them:
which source column feeds each contract column (renamed, cast, parsed, value-mapped, derived), or
which constant fills it. It may also carry a `snapshot` (columns that already are features at one
as-of date, such as a churn table with one row per customer, and their labels) and `labels`
(rules that derive labels from the mapped events, such as "no purchase in the next 90 days").
Everything is an Ibis expression, so a mapped table runs on DuckDB or Spark like a bank's own.

```yaml
name: cdnow
sources:
  purchases: {file: cdnow_master.txt, format: whitespace}   # csv | parquet | whitespace
tables:
  transactions:
    from: purchases
    columns:
      customer_id: customer_id                     # a source column, renamed
      ts: {column: date, parse: "%Y%m%d"}          # parsed with a strftime format
      amount: {column: dollar_value}               # cast to the contract type (float)
      direction: {constant: in}
    keep: {amount: {gt: 0}}                        # drop rows the contract would refuse
  customers:
    from: purchases
    group_by: customer_id                          # one row per customer
    columns:
      opened_at: {column: date, parse: "%Y%m%d", aggregate: min}
labels:
  churn: {rule: no_transaction, horizon_days: 90}
```

Column entries: a string (the source column), or a mapping with `column` or `constant` or
`months_before` (+ `anchor`, a date: that many whole months before it), and optionally `parse`
(strftime format of a date or timestamp string), `values` (old → new; a value outside the map is
an error unless `default` is given), `cast` (Ibis type; contract columns take the contract's
type) and `aggregate` (min | max | first | sum | count, with `group_by`). Text sources are read as
strings; values are stripped and empty strings become null. Nullable contract columns that the
mapping does not mention are null; a required one that it does not mention is an error.
"""

from features.mapping.apply import apply_mapping, label_columns, rule_labels
from features.mapping.spec import (
    ColumnMapping,
    ColumnSpec,
    LabelRule,
    MappedData,
    MappingError,
    SnapshotMapping,
    Source,
    TableMapping,
    load_mapping,
    parse_mapping,
)

__all__ = [
    "ColumnMapping",
    "ColumnSpec",
    "LabelRule",
    "MappedData",
    "MappingError",
    "SnapshotMapping",
    "Source",
    "TableMapping",
    "apply_mapping",
    "label_columns",
    "load_mapping",
    "parse_mapping",
    "rule_labels",
]
