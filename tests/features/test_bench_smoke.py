"""The feature benchmark at a small size: it runs, agrees with pandas and writes a report."""

from __future__ import annotations

import json
from pathlib import Path

from bench.features_bench import main


def test_bench_runs_small_and_agrees_with_pandas(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks-features.md"
    code = main(
        [
            "--customers", "1500", "--months", "8", "--snapshots", "3",
            "--runs", "pandas,duckdb-subset",
            "--data-root", str(tmp_path / "data"), "--work", str(tmp_path / "work"),
            "--memory-gb", "2", "--report", str(report),
        ]
    )  # fmt: skip
    assert code == 0, report.read_text() if report.exists() else "no report"
    text = report.read_text()
    assert "every subset value agrees with pandas" in text
    assert "| pandas |" in text and "| duckdb-subset |" in text
    assert "microseconds" in text  # the online lookup timings
    results = json.loads(next((tmp_path / "work").glob("run_*/results.json")).read_text())
    assert [r["kind"] for r in results] == ["pandas", "duckdb-subset"]
    assert all(r["error"] is None and r["rows"] > 0 and r["peak_rss_bytes"] > 0 for r in results)
    assert results[0]["rows"] == results[1]["rows"]
