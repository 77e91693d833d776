"""The outcome store the RM page writes and the planner and KPI report read."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from serving.records.outcomes import OutcomeError, OutcomeStore, parse_task_id, task_id

DAY = dt.date(2025, 12, 5)


def test_latest_outcome_per_task_wins_and_done_means_reached_or_declined(tmp_path):
    store = OutcomeStore(tmp_path / "o.sqlite")
    assert store.latest().empty  # no file yet: an empty frame with the columns
    a, b = task_id(DAY, "C1"), task_id(DAY, "C2")
    store.record(a, rm_id="RM1", rule="risk", outcome="no_answer", recorded_by="k1")
    store.record(a, rm_id="RM1", rule="risk", outcome="reached", recorded_by="k1", note=" ok  ")
    store.record(b, rm_id="RM2", rule="quarterly", outcome="no_answer", recorded_by="k2")
    latest = store.latest().set_index("task_id")
    assert latest.loc[a, "outcome"] == "reached" and bool(latest.loc[a, "done"])
    assert latest.loc[a, "note"] == "ok"
    assert not latest.loc[b, "done"]
    assert store.latest(rm_id="RM2")["task_id"].tolist() == [b]
    assert store.latest(list_dates=[DAY + dt.timedelta(days=1)]).empty
    assert len(store.latest(start=DAY, end=DAY + dt.timedelta(days=1))) == 2
    assert store.latest(before=DAY).empty
    assert [o.outcome for o in store.history(a)] == ["no_answer", "reached"]


def test_outcomes_cannot_be_edited_away(tmp_path):
    store = OutcomeStore(tmp_path / "o.sqlite")
    store.record(task_id(DAY, "C1"), rm_id="RM1", rule="risk", outcome="reached", recorded_by="k")
    store.close()
    con = sqlite3.connect(tmp_path / "o.sqlite")
    for sql in ("UPDATE outcomes SET outcome = 'declined'", "DELETE FROM outcomes"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute(sql)
    con.close()


@pytest.mark.parametrize(
    ("task", "fields", "message"),
    [
        ("C1", {}, "task_id must look like"),
        ("2025-13-01:C1", {}, "no valid date"),
        ("2025-12-05:C1", {"outcome": "maybe"}, "outcome must be one of"),
        ("2025-12-05:C1", {"note": "x" * 201}, "at most 200"),
        ("2025-12-05:C1", {"rm_id": ""}, "required"),
    ],
)
def test_bad_recordings_are_refused_with_the_field_named(tmp_path, task, fields, message):
    store = OutcomeStore(tmp_path / "o.sqlite")
    args = {"rm_id": "RM1", "rule": "risk", "outcome": "reached", "recorded_by": "k"} | fields
    with pytest.raises(OutcomeError, match=message):
        store.record(task, **args)
    assert store.latest().empty


def test_task_ids_round_trip():
    assert parse_task_id(task_id(DAY, "C00000042")) == (DAY, "C00000042")


@pytest.mark.parametrize(
    "note",
    [
        "new number +44 7700-90-08 23",
        "06.12.34.56.78 after six",
        "write to j.smith(at)example.com",
        "mail j.smith＠example.com",
        "mail a @ b",
        "Hana Tanaka prefers evenings",
        "hana TANAKA prefers evenings",
    ],
)
def test_a_note_with_personal_data_is_refused_naming_the_field_only(tmp_path, note):
    from keepwell.pii import NameIndex

    store = OutcomeStore(tmp_path / "o.sqlite", NameIndex(["Hana Tanaka", "Cara Fischer"]))
    args = {"rm_id": "RM1", "rule": "risk", "outcome": "reached", "recorded_by": "k"}
    with pytest.raises(OutcomeError, match=r"^note: no personal data") as refused:
        store.record(task_id(DAY, "C1"), note=note, **args)
    assert note not in str(refused.value) and "Tanaka" not in str(refused.value)
    assert store.latest().empty
    store.record(task_id(DAY, "C1"), note="call back after 14:30 on 2026-01-05", **args)
    assert store.latest()["note"].tolist() == ["call back after 14:30 on 2026-01-05"]


def test_refusals_do_not_echo_what_was_sent(tmp_path):
    store = OutcomeStore(tmp_path / "o.sqlite")
    with pytest.raises(OutcomeError) as refused:
        store.record(
            task_id(DAY, "C1"), rm_id="R", rule="r", outcome="Cara Fischer", recorded_by="k"
        )
    assert "Cara" not in str(refused.value)
    with pytest.raises(OutcomeError) as refused:
        parse_task_id("2025-13-01:C1")
    assert "2025-13-01" not in str(refused.value)
