"""Reading the KPI report's inputs: the needed columns of the bank's tables, the rows of the
daily lists and the latest task outcomes (`reporting.kpi.compute.compute_kpis` is pure; this does
the I/O).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from keepwell.contract.report import ContractError
from reporting.kpi.model import KpiError
from reporting.kpi.tables import LIST_COLUMNS, NEEDED
from serving.decisions.rules import read_tables
from serving.planning.list_format import ListFormatError, list_dates, read_list_table
from serving.records.outcomes import OutcomeStore

if TYPE_CHECKING:
    from keepwell.config import Config
    from keepwell.workspace import Workspace


@dataclass(frozen=True)
class KpiInputs:
    """What `load_kpi_inputs` read: the tables' needed columns, the list rows and outcomes."""

    tables: dict[str, pa.Table]
    lists: pd.DataFrame | None  # None: no list folder for any date of the period
    outcomes: pd.DataFrame | None
    lists_folder: Path


def load_kpi_inputs(folder: Path | str, workspace: Workspace, start: dt.date, end: dt.date,
                    config: Config) -> KpiInputs:  # fmt: skip
    """Read the needed columns of customers, complaints and callbacks in `folder` (Parquet file
    or folder of parts straight into Arrow; CSV through the contract's typed reader), the rows of
    the daily lists dated in [start, end) and the latest outcomes of those dates."""

    folder = Path(folder)
    if not folder.is_dir():
        raise KpiError(f"data folder {folder} does not exist")
    try:
        tables = read_tables(folder, NEEDED, purpose="keepwell kpi")
    except ContractError:
        raise
    except ValueError as exc:  # a missing table or column, named
        raise KpiError(f"{exc} (needed: {dict(NEEDED)})") from None
    lists_folder = workspace.path(config.paths.lists)
    lists = read_lists(lists_folder, start, end)
    outcomes = None
    if lists is not None:
        outcomes = OutcomeStore(workspace.path(config.paths.outcomes)).latest(start=start, end=end)
    return KpiInputs(tables, lists, outcomes, lists_folder)


def read_lists(folder: Path, start: dt.date, end: dt.date) -> pd.DataFrame | None:
    """`LIST_COLUMNS` of every per-RM list file in `folder/<date>/` for dates in [start, end);
    None when there is no list folder for any of those dates."""
    days = [folder / d.isoformat() for d in list_dates(folder, need_summary=False)
            if start <= d < end]  # fmt: skip
    if not days:
        return None
    files = sorted(str(p) for day in days for p in _list_files(day))
    if not files:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in LIST_COLUMNS})
    try:
        tables = [read_list_table(Path(f), LIST_COLUMNS) for f in files]
        table = pa.concat_tables(tables, promote_options="default")
    except (ListFormatError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        first = str(exc).splitlines()[0]
        raise KpiError(f"cannot read the daily lists in {folder} (needed columns "
                       f"{list(LIST_COLUMNS)}): {first}") from None  # fmt: skip
    return table.to_pandas()


def _list_files(day: Path) -> list[Path]:
    """A day's per-RM list files: `<rm_id>.parquet` of every RM in summary.json's `rm_load`
    (the folder also holds other Parquet files: book_mix, holdout, deferred, ...); without a
    summary, every Parquet file whose columns include `rank` and `LIST_COLUMNS`."""
    import json

    import pyarrow.parquet as pq

    summary = day / "summary.json"
    if summary.is_file():
        try:
            load = json.loads(summary.read_text(encoding="utf-8"))["rm_load"]
            rms = {str(row["rm_id"]) for row in load}
        except (ValueError, KeyError, TypeError) as exc:
            raise KpiError(f"{summary} has no readable rm_load list ({exc!r})") from None
        return [p for rm in sorted(rms) if (p := day / f"{rm}.parquet").is_file()]
    needed = {"rank", *LIST_COLUMNS}
    return [p for p in sorted(day.glob("*.parquet"))
            if not p.name.startswith(".") and needed <= set(pq.read_schema(p).names)]  # fmt: skip
