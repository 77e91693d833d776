"""Declarative feature definitions: what a feature is, where it comes from, how an RM reads it.

A `FeatureDef` is data: a self-explaining name, a family, the tables and columns it needs, its
window, its aggregation, its type, an exact `formula` in words and a `describe` template in plain
language for relationship managers. The arithmetic lives in two declarative layers that
`features.build` compiles to Ibis:

* `Measure` - one per-snapshot aggregate over one event table ("sum of `amount` over rows whose
  `ts` lies in [as_of - 30 days, as_of)"), built from column names, windows and delays only;
* `FeatureDef.compute` - a small function of those measures for one snapshot (a ratio, a
  difference, a popcount...), evaluated by `features.build` with a `features.view.SnapshotView`.

A `FeatureSpec` is an ordered tuple of definitions with a version hash that changes whenever a
definition (or a policy parameter it depends on) changes.
`features.definitions.default_spec(config)` gives the full set.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from keepwell.words import Sentences

if TYPE_CHECKING:
    pass

FAMILIES: tuple[str, ...] = (
    "activity",
    "trend",
    "relationship",
    "service",
    "care",
    "value",
    "profile",
)
DTYPES: tuple[str, ...] = ("int64", "float64", "string", "boolean")
AGGREGATIONS: tuple[str, ...] = (
    "count",  # number of events
    "sum",  # sum of a value over events
    "mean",  # average of a value over events
    "ratio",  # one aggregate divided by another
    "share",  # part of a total, 0-1
    "change",  # relative change between two readings
    "difference",  # one aggregate minus another
    "distinct",  # number of distinct values
    "max",  # largest value
    "latest",  # value of the most recent event
    "days_since",  # calendar days since the most recent event
    "attribute",  # a column of the customer's row, as is
    "derived",  # computed from the customer's row and the as-of date (age, tenure, flags)
)
MEASURE_HOWS: tuple[str, ...] = ("sum", "max", "min", "bit_or", "latest")

# Every snapshot needs these, whatever the features: who exists at as_of.
BASE_INPUTS: Mapping[str, tuple[str, ...]] = {
    "customers": ("customer_id", "opened_at", "closed_at")
}


@dataclass(frozen=True)
class Measure:
    """One aggregate per (customer, snapshot) over the rows of one (prepared) event table.

    A row counts for the snapshot at `as_of` when all of these hold:

    * `start + delay_days < as_of` - the event had happened (strictly before as_of);
    * `anchor >= as_of - window_days`, when a window is set (`anchor` defaults to `start`);
    * `end` is null or `end >= as_of` - the state the row describes had not ended yet;
    * the boolean column `where` is true, when set.

    `how` is the aggregate over the counting rows: `sum` of `value` (of 1 when `value` is None:
    a count), `max`/`min` of `value`, `bit_or` of an integer bit mask, or `latest`: the `value`
    of the row with the greatest `start`. Column names refer to the table after
    `features.definitions.prepare_tables` (raw columns plus derived ones).
    """

    name: str
    table: str
    start: str
    how: Literal["sum", "max", "min", "bit_or", "latest"] = "sum"
    value: str | None = None
    window_days: int | None = None
    anchor: str | None = None
    end: str | None = None
    where: str | None = None
    delay_days: int = 0

    def __post_init__(self) -> None:
        if self.how not in MEASURE_HOWS:
            raise ValueError(
                f"measure {self.name}: how must be one of {MEASURE_HOWS}, got {self.how!r}"
            )
        if self.how != "sum" and self.value is None:
            raise ValueError(f"measure {self.name}: how={self.how!r} needs a value column")
        if self.window_days is not None and self.window_days <= 0:
            raise ValueError(
                f"measure {self.name}: window_days must be positive, got {self.window_days}"
            )
        if self.delay_days < 0:
            raise ValueError(f"measure {self.name}: delay_days must be >= 0, got {self.delay_days}")

    @property
    def window_column(self) -> str:
        return self.anchor or self.start

    @property
    def columns(self) -> tuple[str, ...]:
        """Prepared-table columns this measure reads."""
        cols = [self.start, self.value, self.anchor, self.end, self.where]
        return tuple(dict.fromkeys(c for c in cols if c is not None))

    def record(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


Compute = Callable[[Any], Any]  # (features.view.SnapshotView) -> ibis value


@dataclass(frozen=True)
class FeatureDef(Sentences):
    """One feature: a column of the feature table, one value per (customer_id, as_of)."""

    name: str
    family: str
    dtype: str
    aggregation: str
    window_days: int | None
    describe: str  # plain-language template for RMs, formatted with value=...
    formula: str  # the exact definition, in words
    inputs: tuple[tuple[str, tuple[str, ...]], ...]  # (table, required raw columns)
    compute: Compute = field(compare=False, repr=False)
    measures: tuple[Measure, ...] = ()
    compare_to: str | None = None  # another feature to set this one against in a sentence
    compare_text: str | None = None  # clause formatted with other=<compare_to's value>
    describe_missing: str | None = None  # sentence when the value is null

    def __post_init__(self) -> None:
        problems = []
        if not self.name.isidentifier() or self.name != self.name.lower():
            problems.append("name must be a lower-case identifier")
        if self.family not in FAMILIES:
            problems.append(f"family must be one of {FAMILIES}, got {self.family!r}")
        if self.dtype not in DTYPES:
            problems.append(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.aggregation not in AGGREGATIONS:
            problems.append(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")
        if "{value" not in self.describe:
            problems.append("describe must mention {value}")
        if (self.compare_to is None) != (self.compare_text is None):
            problems.append("compare_to and compare_text go together")
        if self.compare_text is not None and "{other" not in self.compare_text:
            problems.append("compare_text must mention {other}")
        tables = {t for t, _ in self.inputs}
        for m in self.measures:
            if m.table not in tables:
                problems.append(f"measure {m.name} reads {m.table}, which is not among the inputs")
        if problems:
            raise ValueError(f"feature {self.name}: " + "; ".join(problems))

    @property
    def sources(self) -> tuple[str, ...]:
        """The tables this feature reads."""
        return tuple(dict.fromkeys(t for t, _ in self.inputs))

    @property
    def required_columns(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for table, cols in self.inputs:
            out.setdefault(table, [])
            out[table] += [c for c in cols if c not in out[table]]
        return {t: tuple(c) for t, c in out.items()}

    def missing_inputs(self, tables: Mapping[str, Any]) -> tuple[str, ...]:
        """`table` or `table.column` for every input `tables` lacks (empty when all are there)."""
        missing: list[str] = []
        for table, cols in self.required_columns.items():
            if table not in tables or tables[table] is None:
                missing.append(table)
                continue
            have = set(_columns_of(tables[table]))
            missing += [f"{table}.{c}" for c in cols if c not in have]
        return tuple(missing)

    def record(self) -> dict[str, Any]:
        """Every declarative field (not `compute`), JSON-ready: for docs, artifacts and hashing."""
        return {
            "name": self.name,
            "family": self.family,
            "dtype": self.dtype,
            "aggregation": self.aggregation,
            "window_days": self.window_days,
            "describe": self.describe,
            "formula": self.formula,
            "inputs": {t: list(c) for t, c in self.required_columns.items()},
            "measures": [m.record() for m in self.measures],
            "compare_to": self.compare_to,
            "compare_text": self.compare_text,
            "describe_missing": self.describe_missing,
        }


class Skipped(NamedTuple):
    """A feature left out because its inputs are missing, with what is missing."""

    name: str
    missing: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.name}: needs {', '.join(self.missing)}"


@dataclass(frozen=True)
class FeatureSpec:
    """An ordered set of feature definitions plus the policy parameters they were built with."""

    features: tuple[FeatureDef, ...]
    params: tuple[tuple[str, str], ...] = ()  # policy values the definitions depend on

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feature names must be unique, repeated: {dupes}")
        reserved = {"customer_id", "as_of"} & set(names)
        if reserved:
            raise ValueError(f"feature names {sorted(reserved)} are reserved for the key columns")
        seen: dict[str, Measure] = {}
        for f in self.features:
            for m in f.measures:
                if m.name in seen and seen[m.name] != m:
                    raise ValueError(
                        f"measure {m.name!r} is defined twice with different definitions "
                        f"(feature {f.name}): {seen[m.name]} vs {m}"
                    )
                seen[m.name] = m

    # -- container protocol -------------------------------------------------------------------
    def __iter__(self):
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

    def __contains__(self, name: object) -> bool:
        return any(f.name == name for f in self.features)

    def __getitem__(self, name: str) -> FeatureDef:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"no feature named {name!r} in this spec ({len(self)} features)")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def measures(self) -> tuple[Measure, ...]:
        """Every measure the features need, once each, in first-use order."""
        out: dict[str, Measure] = {}
        for f in self.features:
            for m in f.measures:
                out.setdefault(m.name, m)
        return tuple(out.values())

    @property
    def version(self) -> str:
        """A short hash of every definition and parameter: changes when any of them does."""
        payload = {"features": [f.record() for f in self.features], "params": list(self.params)}
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

    def by_family(self) -> dict[str, tuple[str, ...]]:
        return {
            fam: tuple(f.name for f in self.features if f.family == fam)
            for fam in FAMILIES
            if any(f.family == fam for f in self.features)
        }

    # -- subsets ------------------------------------------------------------------------------
    def select(self, names: Iterable[str]) -> FeatureSpec:
        """The named features, in this spec's order; unknown names are an error."""
        wanted = list(dict.fromkeys(names))
        unknown = [n for n in wanted if n not in self]
        if unknown:
            raise KeyError(f"unknown feature(s) {unknown}; known: {', '.join(self.names)}")
        keep = set(wanted)
        return FeatureSpec(tuple(f for f in self.features if f.name in keep), self.params)

    def available_for(self, tables: Mapping[str, Any]) -> tuple[FeatureSpec, list[Skipped]]:
        """Split into the features `tables` can feed and the skipped ones with what they lack.

        `tables` maps table names to Ibis tables (or anything with `.columns`, or a collection of
        column names). The caller warns about the skipped features.
        """
        kept: list[FeatureDef] = []
        skipped: list[Skipped] = []
        for f in self.features:
            missing = f.missing_inputs(tables)
            if missing:
                skipped.append(Skipped(f.name, missing))
            else:
                kept.append(f)
        return FeatureSpec(tuple(kept), self.params), skipped

    # -- words --------------------------------------------------------------------------------
    def describe(self, name: str, value: Any, row: Mapping[str, Any] | None = None) -> str:
        """The RM sentence for feature `name` at `value`; `row` supplies the compared feature."""
        feature = self[name]
        other = None
        if feature.compare_to is not None and row is not None:
            other = row.get(feature.compare_to)
        return feature.sentence(value, other)

    def records(self) -> list[dict[str, Any]]:
        return [f.record() for f in self.features]


def _columns_of(table: Any) -> Sequence[str]:
    cols = getattr(table, "columns", None)
    if cols is not None:
        return list(cols)
    return list(table)
