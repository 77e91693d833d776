"""The audit log's seal: a cut tail, a forged or missing seal and a crash before the seal."""

from __future__ import annotations

import json
import sqlite3

import pytest

from serving.records.audit import AuditError
from serving.records.seal import AuditSeal
from tests.serving.records.test_audit import log, record  # noqa: F401  (the fixture)


def _cut_tail(path, keep: int) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP TRIGGER calls_no_delete; DROP TRIGGER call_customers_no_delete;"
        f"DELETE FROM call_customers WHERE call_id > {keep}; DELETE FROM calls WHERE id > {keep};"
    )
    conn.close()


def test_a_clean_log_verifies_and_is_sealed_at_its_newest_call(log):  # noqa: F811
    for m in range(120):
        record(log, [f"C{m}"], minutes=m)
    assert log.verify() == 120
    assert log.seal.read().call_id == 120 and log.unsealed() == 0
    assert oct(log.seal.key_path.stat().st_mode & 0o777) == "0o600"


def test_deleting_the_newest_calls_is_found(log):  # noqa: F811
    for m in range(120):
        record(log, [f"C{m}"], minutes=m)
    _cut_tail(log.path, keep=20)
    with pytest.raises(AuditError, match=r"newest 100 call\(s\) are missing.*tail was cut"):
        log.verify()


def test_a_cut_tail_stays_visible_after_new_calls(log):  # noqa: F811
    for m in range(30):
        record(log, [f"C{m}"], minutes=m)
    _cut_tail(log.path, keep=10)
    log.close()  # a restarted service appends after the cut
    for m in range(25):
        record(log, [f"D{m}"], minutes=100 + m)
    assert log.count() == 35
    with pytest.raises(AuditError, match="call 30 differs from its seal"):
        log.verify()


def test_a_rewritten_seal_is_refused(log):  # noqa: F811
    for m in range(5):
        record(log, [f"C{m}"], minutes=m)
    _cut_tail(log.path, keep=2)
    sealed = json.loads(log.seal.path.read_text())
    row_hash = sqlite3.connect(log.path).execute("SELECT row_hash FROM calls WHERE id = 2")
    sealed.update(call_id=2, row_hash=row_hash.fetchone()[0])
    log.seal.path.write_text(json.dumps(sealed))
    with pytest.raises(AuditError, match="bad HMAC"):
        log.verify()


def test_a_deleted_seal_is_reported(log):  # noqa: F811
    record(log, ["C1"])
    log.seal.path.unlink()
    with pytest.raises(AuditError, match="no seal"):
        log.verify()


def test_a_crash_between_a_call_and_its_seal_is_not_tampering(log, monkeypatch):  # noqa: F811
    record(log, ["C1"])
    monkeypatch.setattr(AuditSeal, "advance", lambda self, call_id, row_hash, hash_of: None)
    record(log, ["C2"], minutes=1)  # stored, then "killed" before the seal moved
    monkeypatch.undo()
    assert log.verify() == 2 and log.unsealed() == 1
    record(log, ["C3"], minutes=2)
    assert log.verify() == 3 and log.unsealed() == 0


def test_the_seal_never_moves_back(tmp_path):
    seal = AuditSeal(tmp_path / "audit.sqlite")
    hashes = {5: "e" * 64, 3: "c" * 64}
    seal.advance(5, hashes[5], hashes.get)
    seal.advance(3, hashes[3], hashes.get)  # a slower worker's older call
    assert seal.read().call_id == 5
