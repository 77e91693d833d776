"""`keepwell kpi` and the report files: kpi.json (every metric, no NaN, no PII) and the
self-contained kpi.html, the optional monitoring section, and the command's errors."""

from __future__ import annotations

import datetime as dt
import json
import re

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import cli.kpi  # noqa: F401  (registers `kpi` until cli/app.py imports it)
from cli.app import app
from keepwell.workspace import Workspace
from reporting.kpi.compute import compute_kpis
from reporting.kpi.inputs import load_kpi_inputs
from reporting.kpi.model import METRICS
from reporting.kpi.report import write_kpi_report
from serving.records.outcomes import OutcomeStore, task_id

START, END = dt.date(2025, 1, 1), dt.date(2025, 7, 1)
LIST_DAY = dt.date(2025, 3, 3)


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _said(result) -> str:
    """The command's output with the console's line wrapping undone."""
    return " ".join(result.output.split())


def _strict_json(text: str):
    def refuse(constant: str):
        raise AssertionError(f"{constant} in kpi.json")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def bank_customers(small_bank) -> pd.DataFrame:
    return pq.read_table(small_bank / "customers.parquet").to_pandas()


def _write_lists(ws: Workspace, customers: pd.DataFrame) -> list[str]:
    """Three tasks of one RM on LIST_DAY (the planner's columns that the report reads, plus the
    masked phone), one reached, one no_answer, one without an outcome."""
    book = customers[customers["closed_at"].isna()]
    book = book[book["rm_id"] == book["rm_id"].iloc[0]].head(3)
    ids = book["customer_id"].tolist()
    frame = pd.DataFrame({
        "rank": [1, 2, 3], "task_id": [task_id(LIST_DAY, c) for c in ids],
        "list_date": [LIST_DAY] * 3, "rm_id": book["rm_id"].tolist(),
        "branch_id": book["branch_id"].tolist(), "customer_id": ids,
        "phone_masked": ["***12"] * 3, "segment": book["segment"].tolist(),
        "rule": ["risk"] * 3, "rules": ["risk"] * 3,
    })  # fmt: skip
    folder = ws.path(ws.config.paths.lists) / LIST_DAY.isoformat()
    folder.mkdir(parents=True)
    frame.to_parquet(folder / f"{book['rm_id'].iloc[0]}.parquet", index=False)
    store = OutcomeStore(ws.path(ws.config.paths.outcomes))
    for customer, outcome in zip(ids[:2], ("reached", "no_answer"), strict=True):
        store.record(task_id(LIST_DAY, customer), rm_id=book["rm_id"].iloc[0], rule="risk",
                     outcome=outcome, recorded_by="key-test")  # fmt: skip
    store.close()
    return ids


def test_kpi_command_writes_the_report(tmp_path, small_bank, bank_customers, config):
    ws = Workspace.open(tmp_path / "ws", config)
    _write_lists(ws, bank_customers)
    summary = {"status": "stable", "max_psi": 0.04}
    ws.reports.mkdir(parents=True)
    (ws.reports / "monitoring.json").write_text(json.dumps({"summary": summary, "other": 1}))

    r = _run("--workspace", ws.root, "kpi", "--from", START, "--to", END, "--data", small_bank)
    assert r.exit_code == 0, r.output
    out = ws.reports / "kpi" / "2025-01-01_2025-07-01"
    assert sorted(p.name for p in out.iterdir()) == ["kpi.html", "kpi.json"]  # no temp files
    assert f"KPI report -> {out / 'kpi.html'}" in r.output and "Churn rate" in r.output

    doc = _strict_json((out / "kpi.json").read_text())
    assert doc["schema"] == "keepwell.kpi/1"
    assert doc["period"]["from"] == "2025-01-01" and len(doc["period"]["months"]) == 6
    assert doc["prior_period"] == {"from": "2024-07-01", "to": "2025-01-01",
                                   "month_by_month": True}  # fmt: skip
    keys = {"numerator", "denominator", "value", "target", "met", "excluded", "prior", "change"}
    for name in METRICS:
        assert set(doc["kpis"][name]) == keys, name
        assert len(doc["monthly"][name]) == 6
        for dim in ("branch", "rm", "segment"):
            assert all(set(g["kpis"][name]) == keys for g in doc["breakdowns"][dim])
    assert {g["group"] for g in doc["breakdowns"]["segment"]} >= {"retail", "hnw"}
    lists = doc["kpis"]["list_completion"]
    assert (lists["numerator"], lists["denominator"]) == (1, 3) and lists["met"] is False
    assert doc["lists"] == {"available": True, "list_dates": 1, "tasks": 3}
    assert doc["monitoring"] == summary
    completion = doc["kpis"]["callback_completion"]
    assert 0 < completion["value"] < 1 and completion["target"] == 0.95

    html = (out / "kpi.html").read_text()
    assert html.count("data:image/png;base64,") == 5
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "MISSED" in html and "Model monitoring" in html and "max_psi" in html
    assert "Relationship managers, worst first" in html

    texts = (html, (out / "kpi.json").read_text())
    for name, phone in zip(bank_customers["name"], bank_customers["phone"], strict=True):
        digits = re.sub(r"\D", "", phone)
        for text in texts:
            assert name not in text and phone not in text and digits not in text


def test_kpi_command_errors_exit_2_and_name_the_problem(tmp_path, small_bank):
    ws = tmp_path / "ws"
    r = _run("--workspace", ws, "kpi", "--from", "2025-03-01", "--to", "2025-03-01",
             "--data", small_bank)  # fmt: skip
    assert r.exit_code == 2 and "must be before --to 2025-03-01" in _said(r)
    r = _run("--workspace", ws, "kpi", "--from", "2030-01-01", "--to", "2030-02-01",
             "--data", small_bank)  # fmt: skip
    assert r.exit_code == 2
    assert "has no data: the data cover 2024-01-01 to 2025-12-31" in _said(r)
    r = _run("--workspace", ws, "kpi", "--from", "2025-01-01", "--to", "2025-02-01")
    assert r.exit_code == 2 and "does not exist" in _said(r)  # no demo bank in the workspace
    r = _run("--workspace", ws, "kpi", "--from", "2025-13-01", "--to", "2025-02-01")
    assert r.exit_code == 2  # not a date: typer's usage error
    assert not (ws / "reports" / "kpi").exists()


def test_report_without_monitoring_or_with_an_unreadable_file(tmp_path, small_bank, config):
    ws = Workspace.open(tmp_path / "ws", config)
    inputs = load_kpi_inputs(small_bank, ws, START, END, config)
    report = compute_kpis(inputs.tables, START, END, config)
    html_path, json_path = write_kpi_report(report, tmp_path / "a")
    doc = _strict_json(json_path.read_text())
    assert doc["monitoring"] is None and doc["lists"]["available"] is False
    html = html_path.read_text()
    assert "Model monitoring" not in html and "list completion" in html
    assert html.count("data:image/png;base64,") == 5
    broken = tmp_path / "monitoring.json"
    broken.write_text("{not json")
    _, json_path = write_kpi_report(report, tmp_path / "b", monitoring_file=broken)
    doc = _strict_json(json_path.read_text())
    assert doc["monitoring"] is None
    assert any("monitoring.json could not be read" in n for n in doc["notes"])
