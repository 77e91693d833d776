"""Open a data folder as valid contract tables (the bank's files, or the user's through a
mapping), and the as-of dates the data can answer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ibis
    from ibis.backends import BaseBackend

Progress = Callable[[str], None]


class AsOfError(ValueError):
    """An as-of date the data cannot answer; the message gives the data's range."""


@dataclass
class LoadedData:
    """Valid contract tables on one backend, with what the loading noticed."""

    tables: dict[str, ibis.Table]
    backend: BaseBackend
    engine: str
    first_event: dt.date
    data_end: dt.date  # the day after the newest event: the latest as_of that sees all data
    mapped: Any = None  # features.mapping.MappedData when a mapping was applied
    notes: list[str] = field(default_factory=list)


def say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def as_of_day(value: dt.date | dt.datetime | str) -> dt.date:
    from features.dates import parse_day

    return parse_day(value, AsOfError)


def monthly_as_of_dates(last: dt.date | str, months: int = 1) -> list[dt.date]:
    """`months` as-of dates one calendar month apart, ending with `last` (oldest first).

    A `last` on the 29th-31st lands on the last day of shorter months.
    """
    last = as_of_day(last)
    if months < 1:
        raise AsOfError(f"months must be at least 1, got {months}")
    out = []
    for back in range(months - 1, -1, -1):
        y, m = divmod(last.year * 12 + last.month - 1 - back, 12)
        month = m + 1
        next_first = dt.date(y + (month == 12), month % 12 + 1, 1)
        day = min(last.day, (next_first - dt.timedelta(days=1)).day)
        out.append(dt.date(y, month, day))
    return out


def _check_mapped(tables: dict[str, ibis.Table], provided: set[str], source: str) -> list[str]:
    """Validate mapped tables; tables the mapping does not make are noted, not violations."""
    from keepwell.contract import ContractError, validate_tables
    from keepwell.contract.report import report

    result = validate_tables(tables)
    absent = [
        v for v in result.violations if v.check == "table_present" and v.table not in provided
    ]
    kept = [v for v in result.violations if v not in absent]
    notes = list(result.notes)
    if absent:
        names = ", ".join(v.table for v in absent)
        notes.append(f"tables the mapping does not provide: {names}")
    if kept:
        raise ContractError(report(kept, result.rows, notes, source))
    return notes


def open_data(
    data_dir: Path | str,
    *,
    engine: str = "duckdb",
    mapping: Any = None,
    workdir: Path | str | None = None,
    backend: BaseBackend | None = None,
    progress: Progress | None = None,
) -> LoadedData:
    """Load a folder (bank tables, or the user's files through `mapping`) and validate it.

    Raises `keepwell.contract.ContractError` when the tables break the contract, and
    `features.mapping.MappingError` when the mapping does not fit the files.
    """
    from features.engines import connect, engine_of, load_tables
    from features.store import event_range

    backend = backend if backend is not None else connect(engine, workdir)
    engine = engine_of(backend)
    data_dir = Path(data_dir)
    mapped = None
    notes: list[str] = []
    if mapping is not None:
        from features.mapping import apply_mapping

        say(progress, f"applying the mapping {mapping} to {data_dir}")
        mapped = apply_mapping(mapping, data_dir, backend)
        tables = mapped.tables
        notes += [f"mapping: {n}" for n in mapped.notes]
        say(progress, "checking the mapped tables against the data contract")
        source = f"{data_dir} through the mapping {mapped.mapping.where}"
        notes += _check_mapped(tables, set(mapped.mapping.tables), source)
    else:
        from keepwell.contract import require_valid

        # The contract is checked on DuckDB whatever the engine: it reads the same files out of
        # core, and each check is one scan, where Spark pays about a second of scheduling per
        # check (minutes for the ~70 checks of the contract on a small bank).
        say(progress, f"checking {data_dir} against the data contract")
        if engine == "duckdb":
            tables = require_valid(data_dir, backend)
        else:
            require_valid(data_dir, connect("duckdb", workdir))
            say(progress, f"reading {data_dir} on {engine}")
            tables = load_tables(data_dir, backend, scratch=workdir)
    first, last = event_range(tables)
    return LoadedData(tables, backend, engine, first, last + dt.timedelta(days=1), mapped, notes)


def check_as_of(dates: Sequence[dt.date], data: LoadedData) -> list[dt.date]:
    """Sorted unique as-of dates inside the data's range, or `AsOfError` naming the bad ones.

    An as_of must be after the first event (otherwise there is no history to describe) and at
    most the day after the newest event (later dates would describe a future the data lacks).
    """
    if not dates:
        raise AsOfError("no as_of dates given")
    dates = sorted({as_of_day(d) for d in dates})
    bad = [d for d in dates if not data.first_event < d <= data.data_end]
    if bad:
        shown = ", ".join(str(d) for d in bad[:5])
        raise AsOfError(
            f"as_of {shown} outside the data's range: events run from {data.first_event} to "
            f"{data.data_end - dt.timedelta(days=1)}, so as_of must be in "
            f"({data.first_event}, {data.data_end}]"
        )
    mapped = data.mapped
    if mapped is not None and mapped.snapshot is not None:
        snap_date = mapped.mapping.snapshot.as_of
        other = [d for d in dates if d != snap_date]
        if other:
            raise AsOfError(
                f"{mapped.mapping.where}: the snapshot describes one date, {snap_date}; "
                f"as_of {', '.join(map(str, other[:5]))} cannot be built from it"
            )
    return dates
