"""The black-box point-in-time check: a bank folder cut to what was known at a date.

`cut_bank(folder, as_of, out)` writes a copy of a bank folder in which every row and value not
yet known before `as_of` (by the contract's rule, `keepwell.contract.timing`) is gone. Anything
built for as_of from the copy must equal what is built from the whole bank.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from keepwell.config import Config
from keepwell.contract.timing import known_frame


def read_frame(path: Path) -> tuple[pd.DataFrame, pa.Schema]:
    table = pq.read_table(path)
    return table.to_pandas(types_mapper=pd.ArrowDtype), table.schema


def cut_bank(folder: Path, as_of: dt.date, out: Path, config: Config) -> Path:
    """`folder`'s Parquet tables with only what was known before `as_of`, into `out` (callback
    tasks exist `policy.callback_notice_days` before they are due)."""
    notice = config.policy.callback_notice_days
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for path in sorted(folder.glob("*.parquet")):
        frame, schema = read_frame(path)
        known = known_frame(path.stem, frame, as_of, notice_days=notice)
        pq.write_table(
            pa.Table.from_pandas(known, schema=schema, preserve_index=False), out / path.name
        )
    return out


def cut_rows(folder: Path, cut: Path) -> dict[str, int]:
    """Rows per table that the cut removed (to show that a check had something to lose)."""
    return {
        p.stem: pq.read_metadata(p).num_rows - pq.read_metadata(cut / p.name).num_rows
        for p in sorted(folder.glob("*.parquet"))
    }
