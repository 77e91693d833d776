"""Task outcomes: what an RM recorded against a task of a daily list (the RM page writes them).

An append-only SQLite file (`config.paths.outcomes`, default `tasks/outcomes.sqlite`), one row per
recording: task id (`<list date>:<customer_id>`, one task per customer per day), list date, RM,
customer, rule, outcome, an optional short note, when and by which key it was recorded. A second
recording of the same task (a correction) is a new row; `latest` keeps the newest per task. The
triggers of the audit log refuse UPDATE and DELETE, so a recorded outcome cannot be edited away.

Outcomes (`OUTCOMES`): `reached` (spoke with the customer), `declined` (the customer did not want
the call), `no_answer` (tried, not reached). A task is *done* when its latest outcome is in
`DONE_OUTCOMES` (reached or declined: the contact happened); after `no_answer` it stays open and
the planner carries it over. The KPI report counts done tasks for callback completion.

Several BentoML workers share the file: WAL mode, a busy timeout, one short transaction per write.
No PII: customer ids only, and the note is limited to `NOTE_MAX` characters of plain text with
no personal data (`note_problem`: no phone, account or card number, no e-mail address, no name of
the bank's customers from the store's `NameIndex`); a refusal names the field, never the note.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from keepwell.pii import NameIndex, personal_data_in
from serving.records.audit import SharedSqlite, append_only_triggers

OUTCOMES: tuple[str, ...] = ("reached", "declined", "no_answer")
DONE_OUTCOMES: tuple[str, ...] = ("reached", "declined")
NOTE_MAX = 200
_TASK_ID = re.compile(r"^(\d{4}-\d{2}-\d{2}):([A-Za-z0-9_.:-]{1,64})$")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
COLUMNS = (
    "task_id",
    "list_date",
    "rm_id",
    "customer_id",
    "rule",
    "outcome",
    "note",
    "recorded_at",
    "recorded_by",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS outcomes (
    id INTEGER PRIMARY KEY,
    task_id TEXT NOT NULL,
    list_date TEXT NOT NULL,
    rm_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    outcome TEXT NOT NULL,
    note TEXT,
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outcomes_by_task ON outcomes(task_id, id);
CREATE INDEX IF NOT EXISTS outcomes_by_date ON outcomes(list_date, rm_id);
"""
TRIGGERS = append_only_triggers("outcomes", "id = NEW.id").replace("audit log", "outcome store")


class OutcomeError(ValueError):
    """A recording was refused; the message names the field and the allowed values."""


def task_id(list_date: dt.date, customer_id: str) -> str:
    """The id of a customer's task on a list date (one task per customer per day)."""
    return f"{list_date.isoformat()}:{customer_id}"


def parse_task_id(text: str) -> tuple[dt.date, str]:
    """(list date, customer id) of a task id; `OutcomeError` when it is not one."""
    found = _TASK_ID.match(text or "")
    if not found:
        raise OutcomeError("task_id must look like <YYYY-MM-DD>:<customer_id>")
    try:
        day = dt.date.fromisoformat(found.group(1))
    except ValueError as exc:
        raise OutcomeError("task_id has no valid date") from exc
    return day, found.group(2)


@dataclass(frozen=True)
class Outcome:
    task_id: str
    list_date: dt.date
    rm_id: str
    customer_id: str
    rule: str
    outcome: str
    note: str | None
    recorded_at: dt.datetime
    recorded_by: str

    @property
    def done(self) -> bool:
        return self.outcome in DONE_OUTCOMES


def note_problem(note: str | None, names: NameIndex | None = None) -> str | None:
    """Why `note` cannot be stored (naming the field and the rule, never quoting the note), or
    None: at most `NOTE_MAX` characters, and no personal data (`keepwell.pii`)."""
    if note is None:
        return None
    text = " ".join(str(note).split())
    if len(text) > NOTE_MAX:
        return f"note: at most {NOTE_MAX} characters (it has {len(text)})"
    found = personal_data_in(text, names)
    if found:
        return f"note: no personal data in notes (it holds {found})"
    return None


def _clean_note(note: str | None, names: NameIndex | None) -> str | None:
    if note is None:
        return None
    problem = note_problem(note, names)
    if problem:
        raise OutcomeError(problem)
    return " ".join(str(note).split()) or None


class OutcomeStore(SharedSqlite):
    """The outcome file at `path` (created on first use). One connection per process."""

    SCRIPT = SCHEMA + TRIGGERS

    def __init__(self, path: Path | str, names: NameIndex | None = None):
        super().__init__(path)
        self.names = names  # the bank's customer names, refused in notes

    def record(
        self,
        task: str,
        *,
        rm_id: str,
        rule: str,
        outcome: str,
        recorded_by: str,
        note: str | None = None,
        at: dt.datetime | None = None,
    ) -> Outcome:
        """Store one outcome of task `task` (see `task_id`); returns what was stored."""
        list_date, customer_id = parse_task_id(task)
        if outcome not in OUTCOMES:
            raise OutcomeError(f"outcome must be one of {', '.join(OUTCOMES)}")
        if not rm_id or not rule or not recorded_by:
            raise OutcomeError("rm_id, rule and recorded_by are required")
        at = at or dt.datetime.now(dt.UTC)
        if at.tzinfo is None:
            raise OutcomeError("recorded_at must be timezone-aware (UTC)")
        stored = Outcome(
            task_id=task,
            list_date=list_date,
            rm_id=rm_id,
            customer_id=customer_id,
            rule=rule,
            outcome=outcome,
            note=_clean_note(note, self.names),
            recorded_at=at.astimezone(dt.UTC),
            recorded_by=recorded_by,
        )
        row = (
            stored.task_id,
            stored.list_date.isoformat(),
            stored.rm_id,
            stored.customer_id,
            stored.rule,
            stored.outcome,
            stored.note,
            stored.recorded_at.strftime(_TIME_FORMAT),
            stored.recorded_by,
        )
        with self._lock:
            conn = self._connect()
            conn.execute(
                f"INSERT INTO outcomes ({', '.join(COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        return stored

    def latest(
        self,
        *,
        rm_id: str | None = None,
        list_dates: Iterable[dt.date] | None = None,
        before: dt.date | None = None,
        start: dt.date | None = None,
        end: dt.date | None = None,
    ) -> pd.DataFrame:
        """The newest outcome of each task, as a frame with `COLUMNS` plus `done` (bool).

        Filters: one RM; the tasks of the given list dates; list dates before `before`; list
        dates in [start, end). An empty store gives an empty frame with these columns.
        """
        where, params = [], []
        if rm_id is not None:
            where.append("rm_id = ?")
            params.append(rm_id)
        if list_dates is not None:
            days = sorted({d.isoformat() for d in list_dates})
            if not days:
                return _frame([])
            where.append(f"list_date IN ({', '.join('?' * len(days))})")
            params += days
        for op, day in (("<", before), (">=", start), ("<", end)):
            if day is not None:
                where.append(f"list_date {op} ?")
                params.append(day.isoformat())
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        sql = (
            f"SELECT {', '.join(COLUMNS)} FROM outcomes WHERE id IN "
            f"(SELECT MAX(id) FROM outcomes {clause} GROUP BY task_id) ORDER BY id"
        )
        if not self.path.exists():
            return _frame([])
        with self._lock:
            rows = self._connect().execute(sql, params).fetchall()
        return _frame(rows)

    def history(self, task: str) -> list[Outcome]:
        """Every recording of one task, oldest first."""
        parse_task_id(task)
        if not self.path.exists():
            return []
        with self._lock:
            rows = (
                self._connect()
                .execute(
                    f"SELECT {', '.join(COLUMNS)} FROM outcomes WHERE task_id = ? ORDER BY id",
                    (task,),
                )
                .fetchall()
            )
        return [_outcome(r) for r in rows]


def _outcome(row: tuple) -> Outcome:
    return Outcome(
        task_id=row[0],
        list_date=dt.date.fromisoformat(row[1]),
        rm_id=row[2],
        customer_id=row[3],
        rule=row[4],
        outcome=row[5],
        note=row[6],
        recorded_at=dt.datetime.strptime(row[7], _TIME_FORMAT).replace(tzinfo=dt.UTC),
        recorded_by=row[8],
    )


def _frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(COLUMNS), dtype=object)
    frame["list_date"] = pd.to_datetime(frame["list_date"]).dt.date
    frame["recorded_at"] = pd.to_datetime(frame["recorded_at"], format=_TIME_FORMAT, utc=True)
    frame["done"] = frame["outcome"].isin(DONE_OUTCOMES)
    return frame
