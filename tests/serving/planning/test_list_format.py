"""The list-folder format: one schema, and one reader that still accepts files written before
the ranking score's column was renamed from `value_at_risk` to `rank_score`."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from serving.planning.list_format import (
    LIST_COLUMNS,
    LIST_SCHEMA,
    ListFormatError,
    read_list_table,
    type_errors,
)


def test_the_schema_names_the_ranking_score_rank_score():
    assert "rank_score" in LIST_COLUMNS and "value_at_risk" not in LIST_COLUMNS
    assert LIST_SCHEMA.field("rank_score").type == pa.float64()


def test_old_files_with_value_at_risk_are_read_as_rank_score(tmp_path):
    old = tmp_path / "RM1.parquet"
    frame = pd.DataFrame({"rank": [1, 2], "customer_id": ["C1", "C2"], "value_at_risk": [5.0, 2.5]})
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), old)
    table = read_list_table(old, ["rank", "customer_id", "rank_score"])
    assert table.column_names == ["rank", "customer_id", "rank_score"]
    assert table.column("rank_score").to_pylist() == [5.0, 2.5]
    new = tmp_path / "RM2.parquet"
    pq.write_table(pa.Table.from_pandas(frame.rename(columns={"value_at_risk": "rank_score"})), new)
    assert read_list_table(new, ["rank_score"]).equals(read_list_table(old, ["rank_score"]))


def test_a_missing_column_or_a_bad_file_is_named(tmp_path):
    path = tmp_path / "RM1.parquet"
    pq.write_table(pa.table({"rank": [1]}), path)
    with pytest.raises(ListFormatError, match=r"lists/RM1.parquet has no column 'customer_id'"):
        read_list_table(path, ["rank", "customer_id"], shown="lists/RM1.parquet")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(ListFormatError, match="not a readable Parquet file"):
        read_list_table(tmp_path / "bad.parquet", ["rank"])


def test_types_are_checked_against_the_schema():
    good = pa.schema([("rank", pa.int64()), ("deadline", pa.timestamp("ns", tz="UTC")),
                      ("carried_from", pa.null()), ("customer_id", pa.large_string())])  # fmt: skip
    assert type_errors(good) == []
    bad = pa.schema([("rank", pa.string()), ("list_date", pa.timestamp("ns"))])
    assert type_errors(bad) == [
        "column 'rank' must be an integer, got string",
        "column 'list_date' must be a date, got timestamp[ns]",
    ]
    assert dt.date  # the schema's dates are date32
    assert LIST_SCHEMA.field("list_date").type == pa.date32()
