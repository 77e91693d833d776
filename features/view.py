"""What a feature's `compute` sees: `SnapshotView`, the measures and customer columns at one
as_of, with the engine shims its date arithmetic needs."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import ibis
import ibis.expr.datatypes as dtypes

from features.spec import Measure

DAY_US = 86_400_000_000

# -- engine shims: cheap epoch microseconds (DuckDB casts of TIMESTAMPTZ go through ICU) ------


@ibis.udf.scalar.builtin(name="epoch_us")
def _duckdb_epoch_us(ts) -> dtypes.int64:  # type: ignore[no-untyped-def]
    """DuckDB's epoch_us(timestamp[tz])."""


@ibis.udf.scalar.builtin(name="unix_micros")
def _spark_unix_micros(ts) -> dtypes.int64:  # type: ignore[no-untyped-def]
    """Spark's unix_micros(timestamp)."""


def engine_name(table: ibis.Table) -> str:
    """The backend a table lives on ("duckdb", "pyspark", ...); "duckdb" for bare memtables."""
    try:
        return str(table._find_backend(use_default=True).name)
    except Exception:  # pragma: no cover - an unbound table
        return "duckdb"


def epoch_micros(column: ibis.Value, engine: str) -> ibis.Value:
    if engine == "duckdb":
        return _duckdb_epoch_us(column)
    if engine == "pyspark":
        return _spark_unix_micros(column)
    return (column.epoch_seconds() * 1_000_000).cast("int64")


# a history measure: its per-snapshot part (recent rows) combined with its `__old` part
_COMBINE: dict[str, Callable[[ibis.Value, ibis.Value], ibis.Value]] = {
    "sum": lambda recent, old: recent.fill_null(0) + old.fill_null(0),
    "max": lambda recent, old: ibis.ifelse(recent.isnull() | (old > recent), old, recent),
    "min": lambda recent, old: ibis.ifelse(recent.isnull() | (old < recent), old, recent),
    "bit_or": lambda recent, old: recent.fill_null(0) | old.fill_null(0),
    "latest": lambda recent, old: recent.coalesce(old),  # recent rows are all newer
}


# -- snapshot view ---------------------------------------------------------------------------


class SnapshotView:
    """What a feature's `compute` sees: the measures and customer columns at one as_of.

    `table` has one row per (customer, snapshot): the customer's columns, `as_of`, the helper
    columns `_day` (as_of in days since 1970-01-01), `_year` and `_month_day` (month * 100 +
    day of as_of), and one column per measure (plus `<measure>__old` for history measures).
    """

    def __init__(self, table: ibis.Table, engine: str, history: Mapping[str, str]) -> None:
        self.table = table
        self.engine = engine
        self._history = history  # measure name -> how, for measures with an __old column

    @property
    def as_of(self) -> ibis.Value:
        return self.table.as_of

    def raw(self, measure: Measure) -> ibis.Value:
        """The measure at this as_of (null when the customer has no counting rows)."""
        recent = self.table[f"_m_{measure.name}"]
        if measure.name in self._history:
            old = self.table[f"{measure.name}__old"]
            return _COMBINE[self._history[measure.name]](recent, old)
        return recent

    def total(self, measure: Measure) -> ibis.Value:
        """A sum, count or bit mask with null as 0."""
        return self.raw(measure).fill_null(0)

    def customer(self, column: str) -> ibis.Value:
        return self.table[column]

    def days_since_column(self, column: ibis.Value) -> ibis.Value:
        """Calendar days between the UTC date of a timestamp and as_of (1 = the day before)."""
        day = (epoch_micros(column, self.engine) // DAY_US).cast("int64")
        return (self.table._day - day).cast("int64")

    def days_since(self, measure: Measure) -> ibis.Value:
        return self.days_since_column(self.raw(measure))

    @staticmethod
    def ratio(numerator: ibis.Value, denominator: ibis.Value) -> ibis.Value:
        """numerator / denominator, null when the denominator is null or not positive."""
        num = numerator.cast("float64")
        den = denominator.cast("float64")
        return ibis.ifelse(den > 0, num / den, ibis.null("float64"))

    @staticmethod
    def clip_low(value: ibis.Value, low: float | int) -> ibis.Value:
        return ibis.ifelse(value < low, ibis.literal(low, value.type()), value)

    def popcount(self, measure: Measure, bits: int) -> ibis.Value:
        mask = self.total(measure).cast("int64")
        total: ibis.Value = ibis.literal(0, "int64")
        for i in range(bits):
            total = total + ibis.ifelse((mask & (1 << i)) != 0, 1, 0)
        return total.cast("int64")

    def age_years(self, birth_date: ibis.Value) -> ibis.Value:
        """Completed years at as_of; null when birth_date is null."""
        t = self.table
        to_come = (birth_date.month() * 100 + birth_date.day()) > t._month_day
        return (t._year - birth_date.year() - ibis.ifelse(to_come, 1, 0)).cast("int64")
