"""`keepwell features build|materialize` on the small demo bank, and their errors."""

from __future__ import annotations

import shutil

import duckdb
import pyarrow.parquet as pq
from typer.testing import CliRunner

from cli.app import app


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_build_writes_labelled_snapshots_into_the_workspace(tmp_path, small_bank):
    ws = tmp_path / "ws"
    r = _run(
        "--workspace",
        ws,
        "features",
        "build",
        "--data",
        small_bank,
        "--as-of",
        "2025-09-01",
        "--months",
        "3",
    )
    assert r.exit_code == 0, r.output
    out = ws / "features" / "features.parquet"
    table = pq.read_table(out)
    dates = sorted({d.isoformat()[:10] for d in table.column("as_of").to_pylist()})
    assert dates == ["2025-07-01", "2025-08-01", "2025-09-01"]
    assert {"churn", "complaint", "labeled", "txn_count_30d"} <= set(table.column_names)
    assert "name" not in table.column_names and "phone" not in table.column_names
    assert [p.name for p in out.parent.iterdir()] == ["features.parquet"]  # no temp file left


def test_materialize_defaults_to_the_day_after_the_data(tmp_path, small_bank):
    ws = tmp_path / "ws"
    r = _run("--workspace", ws, "features", "materialize", "--data", small_bank)
    assert r.exit_code == 0, r.output
    assert "as of 2026-01-01" in r.output
    con = duckdb.connect(str(ws / "store" / "online.duckdb"), read_only=True)
    tables = {t for (t,) in con.execute("show tables").fetchall()}
    assert tables == {"features", "store_metadata"}
    as_of, rows = con.execute("select as_of, row_count from store_metadata").fetchone()
    assert str(as_of) == "2026-01-01"
    assert rows == con.execute("select count(*) from features").fetchone()[0] > 1000


def test_as_of_outside_the_data_is_a_named_error(tmp_path, small_bank):
    r = _run(
        "--workspace",
        tmp_path / "ws",
        "features",
        "build",
        "--data",
        small_bank,
        "--as-of",
        "2030-01-01",
    )
    assert r.exit_code == 1
    assert "2030-01-01" in r.output
    assert not (tmp_path / "ws" / "features" / "features.parquet").exists()


def test_invalid_data_stops_the_build(tmp_path, small_bank):
    bad = tmp_path / "bad"
    shutil.copytree(small_bank, bad)
    (bad / "rms.parquet").unlink()
    r = _run(
        "--workspace", tmp_path / "ws", "features", "build", "--data", bad, "--as-of", "2025-09-01"
    )
    assert r.exit_code == 1
    assert "rms" in r.output
    assert not (tmp_path / "ws" / "features" / "features.parquet").exists()
