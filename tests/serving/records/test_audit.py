"""The audit log: append-only even to raw SQL, fast lookups by customer, safe with many writers."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import sqlite3

import pytest

from serving.records.audit import AuditError, AuditLog

VERSIONS = {"churn": "3", "complaint": "2"}
AS_OF = dt.date(2025, 6, 1)
T0 = dt.datetime(2025, 6, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def log(tmp_path) -> AuditLog:
    audit = AuditLog(tmp_path / "audit" / "audit.sqlite")
    yield audit
    audit.close()


def record(log: AuditLog, ids, *, key="k1", role="crm", status=200, minutes=0, endpoint="/score"):
    return log.record(
        key, role, endpoint, ids, VERSIONS, AS_OF, status, at=T0 + dt.timedelta(minutes=minutes)
    )


def test_record_and_who_scored(log):
    first = record(log, ["C1", "C2"], key="a", minutes=0)
    record(log, ["C3"], key="b", minutes=1)
    third = record(log, ["C2"], key="c", role="rm:RM1", status=403, minutes=2)
    entries = log.who_scored("C2")
    assert [e.call_id for e in entries] == [third, first]  # newest first
    newest = entries[0]
    assert (newest.caller_key_id, newest.role, newest.status) == ("c", "rm:RM1", 403)
    assert newest.model_versions == VERSIONS and newest.features_as_of == AS_OF
    assert newest.at == T0 + dt.timedelta(minutes=2)
    assert entries[1].customer_ids == ("C1", "C2") and entries[1].endpoint == "/score"
    assert log.who_scored("C9") == []
    assert [e.call_id for e in log.who_scored("C2", limit=1)] == [third]


def test_entries_by_time_and_unauthenticated_calls(log):
    for m in range(5):
        record(log, [f"C{m}"], minutes=m)
    log.record(None, None, "/score", ["C7"], {}, None, 401, at=T0 + dt.timedelta(minutes=9))
    window = log.entries(T0 + dt.timedelta(minutes=1), T0 + dt.timedelta(minutes=3))
    assert [e.customer_ids for e in window] == [("C1",), ("C2",)]
    assert len(log.entries()) == 6
    anonymous = log.who_scored("C7")[0]
    assert anonymous.caller_key_id is None and anonymous.status == 401
    assert anonymous.model_versions == {} and anonymous.features_as_of is None


def test_times_default_to_now_in_utc(log):
    before = dt.datetime.now(dt.UTC)
    log.record("k", "crm", "/score", ["C1"], VERSIONS, AS_OF, 200)
    [entry] = log.entries()
    assert before - dt.timedelta(seconds=1) <= entry.at <= dt.datetime.now(dt.UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        log.record("k", "crm", "/score", ["C1"], VERSIONS, AS_OF, 200, at=dt.datetime(2025, 1, 1))


@pytest.mark.parametrize(
    "ids",
    [["Ann Smith"], ["+44 7700 900123"], [""], ["C1", "C1"], ["x" * 65]],
)
def test_non_ids_are_refused_without_echo(log, ids):
    with pytest.raises(ValueError) as info:
        record(log, ids)
    assert all(i not in str(info.value) for i in ids if i)
    assert log.count() == 0


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE calls SET caller_key_id = 'someone-else'",
        "UPDATE call_customers SET customer_id = 'C9'",
        "DELETE FROM calls",
        "DELETE FROM call_customers WHERE customer_id = 'C1'",
        "INSERT OR REPLACE INTO calls SELECT 1, at, 'x', role, endpoint, model_versions, "
        "features_as_of, status, customer_count, prev_hash, row_hash FROM calls WHERE id = 1",
        "INSERT OR REPLACE INTO call_customers (customer_id, call_id) VALUES ('C1', 1)",
        "INSERT INTO calls (id, at, endpoint, model_versions, status, customer_count, prev_hash, "
        "row_hash) VALUES (1, 'x', 'x', '{}', 200, 0, '', '') "
        "ON CONFLICT(id) DO UPDATE SET endpoint = 'changed'",
    ],
)
def test_raw_sql_cannot_change_or_remove_entries(log, statement):
    record(log, ["C1", "C2"])
    conn = sqlite3.connect(log.path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(statement)
            conn.commit()
    finally:
        conn.close()
    [entry] = log.who_scored("C1")
    assert entry.caller_key_id == "k1" and entry.customer_ids == ("C1", "C2")
    assert log.verify() == 1


def test_verify_detects_an_edit_made_behind_the_triggers(log):
    for m in range(3):
        record(log, [f"C{m}", "C9"], minutes=m)
    assert log.verify() == 3
    conn = sqlite3.connect(log.path)
    conn.execute("DROP TRIGGER calls_no_update")
    conn.execute("UPDATE calls SET caller_key_id = 'someone-else' WHERE id = 2")
    conn.commit()
    conn.close()
    with pytest.raises(AuditError, match="call 2 was altered"):
        log.verify()


def test_verify_detects_a_removed_call(log):
    for m in range(3):
        record(log, [f"C{m}"], minutes=m)
    conn = sqlite3.connect(log.path)
    conn.executescript(
        "DROP TRIGGER calls_no_delete; DROP TRIGGER call_customers_no_delete;"
        "DELETE FROM call_customers WHERE call_id = 2; DELETE FROM calls WHERE id = 2;"
    )
    conn.close()
    with pytest.raises(AuditError, match="chain breaks before call 3"):
        log.verify()


def test_who_scored_uses_the_customer_index(log):
    record(log, ["C1"])
    conn = sqlite3.connect(log.path)
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT call_id FROM call_customers WHERE customer_id = ? "
        "ORDER BY call_id DESC LIMIT 5",
        ["C1"],
    ).fetchall()
    conn.close()
    text = " ".join(str(row[-1]) for row in plan)
    assert "SEARCH call_customers USING PRIMARY KEY (customer_id=?)" in text
    assert "TEMP B-TREE" not in text  # no sort: the index gives the order


def test_the_file_is_in_wal_mode(log):
    record(log, ["C1"])
    conn = sqlite3.connect(log.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def _writer(path: str, worker: int, n: int) -> None:
    log = AuditLog(path)
    for i in range(n):
        log.record(
            f"key{worker}", "crm", "/score", [f"W{worker}C{i}", "SHARED"], VERSIONS, AS_OF, 200
        )
    log.close()


def test_two_processes_writing_concurrently_lose_nothing(tmp_path):
    path = tmp_path / "audit.sqlite"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), w, 200)) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    log = AuditLog(path)
    assert log.count() == 400
    assert log.verify() == 400
    shared = log.who_scored("SHARED", limit=1000)
    assert len(shared) == 400
    assert {e.caller_key_id for e in shared} == {"key1", "key2"}
    for w in (1, 2):
        for i in (0, 57, 199):
            assert len(log.who_scored(f"W{w}C{i}")) == 1
    log.close()


def test_audit_command_shows_who_scored_a_customer(log):
    from rich.console import Console

    from cli.record_commands import audit_show

    record(log, ["C1", "C2"], key="abc123", minutes=0)
    record(log, ["C1"], key="def456", role="rm:RM1", status=403, minutes=5, endpoint="/score")
    out = Console(record=True, width=250, force_terminal=False)
    assert audit_show(log.path, "C1", 10, out) == 2
    text = out.export_text()
    assert text.index("def456") < text.index("abc123")  # newest first
    for expected in ("2025-06-02 09:05:00", "rm:RM1", "403", "churn 3, complaint 2", "2025-06-01"):
        assert expected in text
    assert audit_show(log.path, "C9", 10, out) == 0
    assert "Nobody has scored customer C9" in out.export_text()


def test_audit_command_does_not_create_a_missing_log(tmp_path):
    from rich.console import Console

    from cli.record_commands import audit_show

    out = Console(record=True, width=200, force_terminal=False)
    missing = tmp_path / "audit" / "audit.sqlite"
    assert audit_show(missing, "C1", 10, out) == 0
    assert "No audit log" in out.export_text() and not missing.exists()
