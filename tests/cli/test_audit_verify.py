"""`keepwell audit verify` (and `keepwell audit --customer`, kept) through typer's CliRunner."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
from typer.testing import CliRunner

from cli.app import app
from keepwell.config import load_config
from serving.records.audit import AuditLog

T0 = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)


@pytest.fixture
def ws(tmp_path):
    root = tmp_path / "ws"
    path = root / load_config(None).paths.audit_log
    log = AuditLog(path)
    for m in range(30):
        log.record(
            "k1",
            "crm",
            "/score",
            [f"C{m:08d}"],
            {"churn": "1"},
            T0.date(),
            200,
            at=T0 + dt.timedelta(minutes=m),
        )
    log.close()
    return root, path


def _run(*args):
    return CliRunner().invoke(app, [*args])


def test_a_clean_log_verifies(ws):
    root, _ = ws
    out = _run("--workspace", str(root), "audit", "verify")
    assert out.exit_code == 0, out.output
    assert "30 call(s) checked" in out.output and "intact" in out.output


def test_a_deleted_tail_is_reported(ws):
    root, path = ws
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP TRIGGER calls_no_delete; DROP TRIGGER call_customers_no_delete;"
        "DELETE FROM call_customers WHERE call_id > 20; DELETE FROM calls WHERE id > 20;"
    )
    conn.close()
    out = _run("--workspace", str(root), "audit", "verify")
    assert out.exit_code == 1
    assert "TAMPERED" in out.output and "tail was cut" in out.output.replace("\n", " ")


def test_an_edited_row_is_reported(ws):
    root, path = ws
    conn = sqlite3.connect(path)
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")]
    conn.executescript("".join(f"DROP TRIGGER {n};" for n in names))
    conn.execute("UPDATE calls SET status = 403 WHERE id = 7")
    conn.commit()
    conn.close()
    out = _run("--workspace", str(root), "audit", "verify")
    assert out.exit_code == 1
    assert "call 7 was altered" in out.output.replace("\n", " ")


def test_audit_customer_still_works(ws):
    root, _ = ws
    out = _run("--workspace", str(root), "audit", "--customer", "C00000003")
    assert out.exit_code == 0, out.output
    assert "Who scored C00000003" in out.output
    assert _run("--workspace", str(root), "audit").exit_code == 2
