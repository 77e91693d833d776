"""Reading the daily list files of the planner (`keepwell plan --date D`) for the RM page.

Folder `<workspace>/<paths.lists>/<D>/`: `<rm_id>.parquet` per RM with at least one task (rows in
rank order), `summary.json` and the auxiliary files (`list_format.AUX_FILES`: `book_mix`, `holdout`,
`deferred`), which are never an RM's list (`rm_list_name`).
The
reader is strict: a missing column or key, a wrong type or a value outside its set is a
`ListFormatError` naming the file (relative to the workspace), the column and the offending value,
and the page shows "lists unavailable" with that reason instead of guessing. A phone number that is
not masked is refused the same way: the page never shows one.

Files are re-read when they change (inode, size and modification time), so a new planner run is
seen on the next request.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from keepwell.words import ID_MAX_LENGTH, ID_PATTERN
from serving.decisions.tiers import RISK_TIERS
from serving.decisions.value import VALUE_TIERS
from serving.planning.list_format import (
    AUX_FILES,
    LIST_COLUMNS,
    NULLABLE,
    REASON_SEPARATOR,
    ListFormatError,
    read_list_table,
    type_errors,
)

BOOK_COLUMNS: tuple[str, ...] = ("rm_id", "value_tier", "risk_tier", "customers")
SUMMARY_KEYS: tuple[str, ...] = ("date", "features_as_of", "model_versions", "rm_load")
RULES: tuple[str, ...] = (
    "complaint_response",
    "complaint_resolution",
    "post_sale",
    "quarterly",
    "risk",
)
CHANNELS: tuple[str, ...] = ("rm_call", "call_centre", "e_questionnaire", "visit")
_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ID = re.compile(ID_PATTERN)
_MASKED_PHONE = re.compile(r"^\*\*\*\d{0,2}$")
_ALLOWED = {
    "rule": RULES,
    "channel": CHANNELS,
    "value_tier": VALUE_TIERS,
    "risk_tier": RISK_TIERS,
}


class NoList(LookupError):
    """No list for the date or RM asked for; the message says what exists."""


def parse_day(text: str | None) -> dt.date | None:
    """A YYYY-MM-DD date, or None when the text is not one."""
    if not text or not _DATE_DIR.match(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def valid_id(text: str) -> bool:
    return 0 < len(text) <= ID_MAX_LENGTH and bool(_ID.match(text))


def rm_list_name(text: str) -> bool:
    """Whether `text` can name an RM's list: a valid id that is not one of the day folder's other
    files (`AUX_FILES`: `book_mix` is never an RM)."""
    return valid_id(text) and text not in AUX_FILES


def parse_versions(text: str) -> dict[str, str]:
    """ "churn:3,complaint:3" -> {"churn": "3", "complaint": "3"}; ValueError when malformed."""
    out = {}
    for part in text.split(","):
        name, sep, version = part.strip().partition(":")
        if not sep or not name or not version:
            raise ValueError(part)
        out[name] = version
    return out


@dataclass(frozen=True)
class DayList:
    """One RM's list of one date, with what the page needs from the summary and the book mix."""

    day: dt.date
    rm_id: str
    tasks: list[dict[str, Any]]  # the rows of <rm_id>.parquet in rank order (python values)
    load: dict[str, Any] | None  # the RM's entry of summary.json rm_load
    portfolio: dict[tuple[str, str], int]  # (value tier, risk tier) -> the RM's customers
    features_as_of: dt.date | None
    model_versions: dict[str, str]  # of the listed tasks (several versions joined by ",")


class ListReader:
    """The list folders under `root`; `shown` names a path for messages (workspace-relative)."""

    def __init__(self, root: Path, workspace: Path | None = None):
        self.root = root
        self._base = workspace or root.parent
        self._cache: dict[Path, tuple[tuple[int, int, int], Any]] = {}
        self._lock = threading.Lock()

    def shown(self, path: Path) -> str:
        try:
            return str(path.relative_to(self._base))
        except ValueError:
            return str(path)

    def dates(self) -> list[dt.date]:
        """The list dates that have a folder, newest first (temporary folders are ignored)."""
        if not self.root.is_dir():
            return []
        days = (parse_day(p.name) for p in self.root.iterdir() if p.is_dir())
        return sorted((d for d in days if d is not None), reverse=True)

    def folder(self, day: dt.date) -> Path:
        folder = self.root / day.isoformat()
        if not folder.is_dir():
            shown = ", ".join(d.isoformat() for d in self.dates()[:10]) or "none yet"
            raise NoList(f"There is no list for that date. Lists exist for: {shown}.")
        return folder

    def _cached(self, path: Path, read: Callable[[Path], Any]) -> Any:
        st = path.stat()
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            hit = self._cache.get(path)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        value = read(path)
        with self._lock:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[path] = (stamp, value)
        return value

    # -- the files ----------------------------------------------------------------------------
    def summary(self, day: dt.date) -> dict[str, Any]:
        path = self.folder(day) / "summary.json"
        if not path.exists():
            raise ListFormatError(f"{self.shown(path)} is missing")
        return self._cached(path, lambda p: self._read_summary(p, day))

    def _read_summary(self, path: Path, day: dt.date) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ListFormatError(f"{self.shown(path)} is not readable JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ListFormatError(f"{self.shown(path)} must hold a JSON object")
        missing = [k for k in SUMMARY_KEYS if k not in data]
        if missing:
            raise ListFormatError(f"{self.shown(path)} has no key {', '.join(missing)}")
        if data["date"] != day.isoformat():
            raise ListFormatError(
                f"{self.shown(path)}: 'date' is {data['date']!r}, the folder is {day.isoformat()}"
            )
        if data["features_as_of"] is not None and parse_day(data["features_as_of"]) is None:
            raise ListFormatError(
                f"{self.shown(path)}: 'features_as_of' is not a YYYY-MM-DD date: "
                f"{data['features_as_of']!r}"
            )
        load = data["rm_load"]
        if not isinstance(load, list) or not all(
            isinstance(x, dict) and {"rm_id", "capacity", "tasks"} <= set(x) for x in load
        ):
            raise ListFormatError(
                f"{self.shown(path)}: 'rm_load' must be a list of objects with rm_id, capacity "
                "and tasks"
            )
        data["rm_index"] = {x["rm_id"]: x for x in load}
        return data

    def _table(self, path: Path, columns: tuple[str, ...]) -> pa.Table:
        return read_list_table(path, columns, shown=self.shown(path))

    def book_mix(self, day: dt.date) -> dict[str, dict[tuple[str, str], int]]:
        path = self.folder(day) / "book_mix.parquet"
        if not path.exists():
            raise ListFormatError(f"{self.shown(path)} is missing")
        return self._cached(path, self._read_book)

    def _read_book(self, path: Path) -> dict[str, dict[tuple[str, str], int]]:
        table = self._table(path, BOOK_COLUMNS)
        self._check_types(path, table, {"customers": "int"})
        out: dict[str, dict[tuple[str, str], int]] = {}
        for row in table.to_pylist():
            for column, allowed in (("value_tier", VALUE_TIERS), ("risk_tier", RISK_TIERS)):
                if row[column] not in allowed:
                    raise ListFormatError(
                        f"{self.shown(path)}: column {column!r} has {row[column]!r}; "
                        f"expected one of {', '.join(allowed)}"
                    )
            if row["customers"] is None or row["customers"] < 0:
                raise ListFormatError(
                    f"{self.shown(path)}: column 'customers' has {row['customers']!r} for "
                    f"{row['rm_id']}; expected a count >= 0"
                )
            cell = (row["value_tier"], row["risk_tier"])
            book = out.setdefault(row["rm_id"], {})
            book[cell] = book.get(cell, 0) + int(row["customers"])
        return out

    def _check_types(self, path: Path, table: pa.Table, types: dict[str, str] | None) -> None:
        problems = type_errors(table.schema, types)
        if problems:
            raise ListFormatError(f"{self.shown(path)}: {problems[0]}")

    def tasks(self, day: dt.date, rm_id: str) -> list[dict[str, Any]] | None:
        """The RM's tasks of the date (rank order), or None when the RM has no file that day."""
        if not rm_list_name(rm_id):
            return None
        path = self.folder(day) / f"{rm_id}.parquet"
        if not path.exists():
            return None
        return self._cached(path, lambda p: self._read_tasks(p, day, rm_id))

    def _read_tasks(self, path: Path, day: dt.date, rm_id: str) -> list[dict[str, Any]]:
        table = self._table(path, LIST_COLUMNS)
        self._check_types(path, table, None)
        rows = table.to_pylist()
        shown = self.shown(path)

        def bad(n: int, column: str, value: Any, expected: str) -> ListFormatError:
            return ListFormatError(
                f"{shown}: row {n + 1}, column {column!r} has {value!r}; expected {expected}"
            )

        for n, row in enumerate(rows):
            for column in LIST_COLUMNS:
                if row[column] is None and column not in NULLABLE:
                    raise bad(n, column, None, "a value (only carried_from and detail may be null)")
            if row["rank"] != n + 1:
                raise bad(n, "rank", row["rank"], f"{n + 1} (rows in rank order from 1)")
            if row["rm_id"] != rm_id:
                raise bad(n, "rm_id", row["rm_id"], f"{rm_id!r}, the file's RM")
            if row["list_date"] != day:
                raise bad(n, "list_date", row["list_date"], f"{day}, the folder's date")
            if not valid_id(row["customer_id"]):
                raise bad(n, "customer_id", "…", "a pseudonymous id")
            if row["task_id"] != f"{day.isoformat()}:{row['customer_id']}":
                raise bad(n, "task_id", row["task_id"], "'<list date>:<customer_id>'")
            if not _MASKED_PHONE.match(row["phone_masked"]):
                raise bad(n, "phone_masked", "(not shown)", "a masked number such as '***82'")
            for column, allowed in _ALLOWED.items():
                if row[column] not in allowed:
                    raise bad(n, column, row[column], f"one of {', '.join(allowed)}")
            for column in ("churn_probability", "complaint_probability"):
                if not 0.0 <= row[column] <= 1.0:
                    raise bad(n, column, row[column], "a probability between 0 and 1")
            try:
                row["versions"] = parse_versions(row["model_versions"])
            except ValueError:
                raise bad(
                    n, "model_versions", row["model_versions"], "'churn:3,complaint:3'"
                ) from None
            row["reason_list"] = [
                r.strip() for r in row["reasons"].split(REASON_SEPARATOR) if r.strip()
            ]
            row["rule_list"] = [r.strip() for r in row["rules"].split(",") if r.strip()]
        return rows

    # -- one RM's page ------------------------------------------------------------------------
    def day_list(self, day: dt.date, rm_id: str) -> DayList:
        """The RM's list of `day`; `NoList` when neither a list file nor the summary or the book
        mix knows the RM on that date (an RM with a book and no task gets an empty list)."""
        if not rm_list_name(rm_id):
            raise NoList("There is no such RM.")
        summary = self.summary(day)
        book = self.book_mix(day)
        tasks = self.tasks(day, rm_id)
        load = summary["rm_index"].get(rm_id)
        if tasks is None:
            if load is None and rm_id not in book:
                raise NoList("There is no list for this RM on that date.")
            tasks = []
        versions: dict[str, set[str]] = {}
        for row in tasks:
            for name, version in row["versions"].items():
                versions.setdefault(name, set()).add(version)
        return DayList(
            day=day,
            rm_id=rm_id,
            tasks=tasks,
            load=load,
            portfolio=book.get(rm_id, {}),
            features_as_of=parse_day(summary["features_as_of"]),
            model_versions={k: ",".join(sorted(v)) for k, v in sorted(versions.items())},
        )
