"""The training set: labelled monthly snapshots of every feature, as one pandas frame.

`load_training_data(data, config)` builds `config.training.split.snapshots` monthly as-of dates
ending at the newest first-of-month whose label horizon the data covers, runs the feature
pipeline with labels on them, keeps the labelled rows and returns a `TrainingData`:

    data = load_training_data("workspace/data/demo", config)
    data.frame          # customer_id, as_of, <features>, churn, complaint (0/1)
    data.window()       # {"first_as_of": ..., "last_as_of": ...}
    data.data_hash      # sha256 of the frame's content, for the MLflow run

`as_of` is a `datetime.date` column (object dtype), the type the feature pipeline returns and
`training.split` compares against; the oracle's `as_of` read through pyarrow has the same type.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.dates import parse_day
from features.loading import LoadedData, monthly_as_of_dates, open_data
from features.pipeline import build_snapshot_table
from keepwell.words import TARGETS

if TYPE_CHECKING:
    from features.loading import LoadedData
    from features.spec import FeatureSpec
    from keepwell.config import Config

Progress = Callable[[str], None]
KEYS = ("customer_id", "as_of")


class TrainingDataError(ValueError):
    """The data cannot supply the requested training snapshots; the message says why."""


@dataclass
class TrainingData:
    """Labelled snapshots, one row per (customer_id, as_of), sorted by as_of then customer_id.

    `features` lists the model inputs in spec order; `categorical` the string features among
    them (LightGBM treats these as categories). Labels are 0/1 ints, never null.
    """

    frame: pd.DataFrame
    features: tuple[str, ...]
    categorical: tuple[str, ...]
    spec: FeatureSpec
    as_of_dates: tuple[dt.date, ...]
    data_end: dt.date
    data_hash: str

    def window(self) -> dict[str, dt.date]:
        """The first and last as-of date of the set (for the run's parameters and the card)."""
        return {"first_as_of": self.as_of_dates[0], "last_as_of": self.as_of_dates[-1]}

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(t for t in TARGETS if t in self.frame.columns)


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def first_of_month_on_or_before(day: dt.date) -> dt.date:
    return dt.date(day.year, day.month, 1)


def default_last_as_of(data_end: dt.date, horizon_days: int) -> dt.date:
    """The newest first-of-month T with T + horizon <= data_end: its labels are complete."""
    return first_of_month_on_or_before(data_end - dt.timedelta(days=horizon_days))


def snapshot_dates(
    last_as_of: dt.date,
    snapshots: int,
    *,
    first_event: dt.date,
    data_end: dt.date,
    horizon_days: int,
) -> list[dt.date]:
    """`snapshots` monthly dates ending at `last_as_of`, each inside the data with full labels.

    Raises `TrainingDataError` naming the dates and the data's range when it cannot.
    """

    if snapshots < 1:
        raise TrainingDataError(f"training.split.snapshots must be at least 1, got {snapshots}")
    dates = monthly_as_of_dates(last_as_of, snapshots)
    unlabelled = [d for d in dates if d + dt.timedelta(days=horizon_days) > data_end]
    too_early = [d for d in dates if d <= first_event]
    if unlabelled or too_early:
        problems = []
        if unlabelled:
            problems.append(
                f"as_of {', '.join(map(str, unlabelled[:3]))} + {horizon_days} days of labels "
                f"runs past the data's end {data_end}"
            )
        if too_early:
            problems.append(
                f"as_of {', '.join(map(str, too_early[:3]))} is not after the first event "
                f"{first_event}"
            )
        raise TrainingDataError(
            f"cannot build {snapshots} monthly snapshots {dates[0]} .. {dates[-1]}: "
            + "; ".join(problems)
            + f". The data runs from {first_event} to {data_end - dt.timedelta(days=1)}; "
            "use fewer snapshots or an earlier last as_of"
        )
    return dates


def frame_hash(frame: pd.DataFrame) -> str:
    """sha256 hex of a frame's content: column names, dtypes and values, in key order.

    Row order and index do not matter (the frame is sorted by its keys first).
    """
    keys = [k for k in KEYS if k in frame.columns]
    ordered = frame.sort_values(keys, kind="mergesort").reset_index(drop=True) if keys else frame
    digest = hashlib.sha256()
    for name in ordered.columns:
        col = ordered[name]
        digest.update(f"{name}:{col.dtype}\n".encode())
        hashed = pd.util.hash_pandas_object(col, index=False)
        digest.update(np.ascontiguousarray(hashed.to_numpy(np.uint64)).tobytes())
    return digest.hexdigest()


def categorical_features(
    frame: pd.DataFrame, features: Sequence[str], spec: FeatureSpec
) -> tuple[str, ...]:
    """The string features: declared `string` in the spec, or held as text in the frame (the
    columns a mapping's snapshot adds are not in the spec)."""
    declared = {f.name for f in spec if f.dtype == "string"}
    return tuple(
        name
        for name in features
        if name in declared
        or isinstance(frame[name].dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(frame[name].dtype)
    )


def _label_frame(raw: pd.DataFrame, label_columns: Sequence[str]) -> pd.DataFrame:
    """Labelled rows only, labels as 0/1 ints, the `labeled` flag dropped."""
    frame = raw
    if "labeled" in frame.columns:
        frame = frame[frame["labeled"].fillna(False).astype(bool)].drop(columns="labeled")
    for target in TARGETS:
        if target in label_columns and target in frame.columns:
            frame = frame[frame[target].notna()]
    frame = frame.copy()
    for target in TARGETS:
        if target in frame.columns:
            frame[target] = frame[target].astype(bool).astype("int64")
    return frame


def load_training_data(
    data: Path | str | LoadedData,
    config: Config,
    *,
    last_as_of: dt.date | str | None = None,
    snapshots: int | None = None,
    engine: str = "duckdb",
    mapping: Any = None,
    progress: Progress | None = None,
) -> TrainingData:
    """Build the labelled training snapshots from a data folder (or an opened `LoadedData`).

    `last_as_of` defaults to the newest first-of-month whose horizon the data covers;
    `snapshots` to `config.training.split.snapshots`. Mapped one-row-per-customer data (a
    snapshot mapping) has a single as_of: the mapping's, whatever `snapshots` says.
    """

    if isinstance(data, LoadedData):
        loaded = data
    else:
        _say(progress, f"opening {data}")
        loaded = open_data(data, engine=engine, mapping=mapping, progress=progress)
    horizon = config.labels.horizon_days
    count = snapshots if snapshots is not None else config.training.split.snapshots
    mapped = loaded.mapped
    if mapped is not None and mapped.snapshot is not None:
        dates = [mapped.mapping.snapshot.as_of]
    else:
        last = (
            parse_day(last_as_of, TrainingDataError)
            if last_as_of is not None
            else default_last_as_of(loaded.data_end, horizon)
        )
        dates = snapshot_dates(
            last,
            count,
            first_event=loaded.first_event,
            data_end=loaded.data_end,
            horizon_days=horizon,
        )
    _say(progress, f"building {len(dates)} labelled snapshots {dates[0]} .. {dates[-1]}")
    build = build_snapshot_table(loaded, dates, config, labels=True, progress=progress)
    raw = build.to_pyarrow().to_pandas()
    frame = _label_frame(raw, build.label_columns)
    if frame.empty:
        raise TrainingDataError(
            f"no labelled rows for as_of {dates[0]} .. {dates[-1]} (data ends "
            f"{loaded.data_end - dt.timedelta(days=1)}, horizon {horizon} days)"
        )
    features = tuple(build.feature_columns)
    categorical = categorical_features(frame, features, build.spec)
    columns = [*KEYS, *features, *(t for t in TARGETS if t in frame.columns)]
    frame = frame[columns].sort_values(["as_of", "customer_id"], kind="mergesort")
    frame = frame.reset_index(drop=True)
    _say(progress, f"hashing {len(frame):,} training rows")
    return TrainingData(
        frame=frame,
        features=features,
        categorical=categorical,
        spec=build.spec,
        as_of_dates=tuple(sorted(set(frame["as_of"]))),
        data_end=loaded.data_end,
        data_hash=frame_hash(frame),
    )
