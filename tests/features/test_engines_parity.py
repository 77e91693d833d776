"""One definition, two engines: the same snapshots on DuckDB and on local Spark, value by value.

Counts, integers, strings, booleans and dates must be identical; sums and other floats agree to
1e-9 relative. Runs in the default suite (marker `spark`); Spark starts once for the module.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pyarrow as pa
import pytest

from features.engines import EngineError, connect, engine_of, load_tables
from keepwell.config import load_config

pytestmark = pytest.mark.spark
RELATIVE = 1e-9


@pytest.fixture(scope="module")
def config():
    return load_config()


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    return connect("spark", tmp_path_factory.mktemp("spark"))


@pytest.fixture(scope="module")
def bank(tmp_path_factory, config) -> Path:
    """A small simulated bank: 150 customers over 9 months (every table of the contract)."""
    from keepwell.demo import generate

    demo = config.demo.model_copy(update={"customers": 150, "months": 9, "seed": 11})
    out = tmp_path_factory.mktemp("bank") / "demo"
    generate(demo, config, out)
    return out


def utc(rows: list[dict]) -> list[dict]:
    """Spark hands timestamps back naive (its session time zone is UTC); make them aware."""
    return [
        {
            k: v.replace(tzinfo=dt.UTC) if isinstance(v, dt.datetime) and v.tzinfo is None else v
            for k, v in row.items()
        }
        for row in rows
    ]


def rows_by_key(table: pa.Table) -> dict[tuple, dict]:
    return {(r["customer_id"], r["as_of"]): r for r in utc(table.to_pylist())}


def assert_same_values(duck: pa.Table, spark: pa.Table) -> None:
    assert duck.column_names == spark.column_names
    a, b = rows_by_key(duck), rows_by_key(spark)
    assert a.keys() == b.keys()
    assert len(a) == duck.num_rows  # one row per (customer_id, as_of)
    problems = []
    for name in duck.column_names:
        kind = duck.schema.field(name).type
        for key, row in a.items():
            x, y = row[name], b[key][name]
            if pa.types.is_floating(kind) and x is not None and y is not None:
                same = (
                    (math.isnan(x) and math.isnan(y))
                    or math.isclose(x, y, rel_tol=RELATIVE, abs_tol=0.0)
                    or x == y
                )
            else:
                same = x == y
            if not same:
                problems.append(f"{name} at {key}: duckdb {x!r} != spark {y!r}")
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:20])


def test_snapshots_and_labels_agree_on_both_engines(bank: Path, spark, config, tmp_path) -> None:
    from features.pipeline import build_snapshot_table, monthly_as_of_dates, open_data

    duck_data = open_data(bank, engine="duckdb")
    dates = monthly_as_of_dates(duck_data.data_end.replace(day=1), 3)
    duck = build_snapshot_table(duck_data, dates, config, labels=True)
    on_spark = build_snapshot_table(
        open_data(bank, backend=spark, workdir=tmp_path), dates, config, labels=True
    )
    assert engine_of(on_spark.data.backend) == "spark"
    assert on_spark.skipped == duck.skipped
    duck_rows, spark_rows = duck.to_pyarrow(), on_spark.to_pyarrow()
    assert duck_rows.num_rows > 100 * len(dates) * 0.5
    # the types agree up to width (Spark has no unsigned or small ints of its own)
    for field in duck_rows.schema:
        other = spark_rows.schema.field(field.name).type
        assert _family(field.type) == _family(other), (field.name, field.type, other)
    assert_same_values(duck_rows.cast(spark_rows.schema), spark_rows)


def _family(t: pa.DataType) -> str:
    for name, test in [
        ("int", pa.types.is_integer),
        ("float", pa.types.is_floating),
        ("bool", pa.types.is_boolean),
        ("str", lambda x: pa.types.is_string(x) or pa.types.is_large_string(x)),
        ("date", pa.types.is_date),
        ("ts", pa.types.is_timestamp),
    ]:
        if test(t):
            return name
    return str(t)


def test_csv_tables_read_the_same_on_spark(spark, tmp_path) -> None:
    from tests.contract_fixtures import valid_bank, write_bank

    folder = write_bank(tmp_path / "bank", valid_bank(), fmt="csv")
    duck_tables = load_tables(folder, connect("duckdb"))
    spark_tables = load_tables(folder, spark, scratch=tmp_path / "scratch")
    assert duck_tables.keys() == spark_tables.keys()
    for name in ("customers", "transactions", "callbacks"):
        a = duck_tables[name].to_pyarrow()
        b = spark_tables[name].to_pyarrow()
        order = [c for c in ("customer_id", "ts", "callback_id") if c in a.column_names]
        a = utc(a.sort_by([(c, "ascending") for c in order]).to_pylist())
        b = utc(b.sort_by([(c, "ascending") for c in order]).to_pylist())
        assert a == b, name


def test_a_mapped_log_reads_the_same_on_spark(spark, tmp_path) -> None:
    from features.mapping import apply_mapping, rule_labels
    from tests.features.test_mapping import PURCHASES, purchase_mapping, write_mapping

    (tmp_path / "log.txt").write_text(PURCHASES)
    mapping = write_mapping(tmp_path, purchase_mapping())
    got = {}
    for name, backend in (("duckdb", connect("duckdb")), ("spark", spark)):
        mapped = apply_mapping(mapping, tmp_path, backend)
        labels = rule_labels(mapped, [dt.date(2024, 2, 1)], dt.date(2024, 4, 26))
        got[name] = (
            mapped.tables["transactions"].order_by(["customer_id", "ts"]).to_pyarrow().to_pylist(),
            mapped.tables["customers"].order_by("customer_id").to_pyarrow().to_pylist(),
            labels.order_by("customer_id").to_pyarrow().to_pylist(),
        )
    assert got["duckdb"] == got["spark"]
    assert len(got["spark"][0]) == 5


def test_unknown_engine_is_a_clear_error() -> None:
    with pytest.raises(EngineError, match="unknown engine 'polars': choose one of duckdb, spark"):
        connect("polars")
