"""The callback experiment as a training set: one row per (customer, as_of) with an arm.

The bank randomises policy callbacks (reasons `post_sale` and `quarterly`) into a holdout that is
not called. For each monthly as-of date T, `build_effect_data` takes the policy callbacks due in
[T + lead, T' + lead) (T' = next month's T, lead = `effect.lead_days`, default 7) and gives each
customer with at least one of them an arm. The lead is there because a callback may be made a few
days *before* it is due (up to 5 on the demo bank): one due on T + 2 can be done before T, and
would then sit in its own row's features (`reached_callbacks_180d`, ...). A pair with a windowed
callback done before T all the same is dropped (`EffectData.done_before`).

* treated (`treated = 1`): a callback was assigned to be made (outcome reached, no_answer or
  declined). This is intention to treat: the randomisation is on the assignment, so the effect
  estimated from these arms is the effect of *scheduling* a call, which includes the chance that
  the call reaches the customer at all;
* control (`treated = 0`): the callback was held out (outcome `holdout`);
* a customer with both a held-out and an assigned callback in the same month is in neither arm
  cleanly and is dropped (counted in `EffectData.dropped_both`).

Features are the point-in-time snapshot at T (`features.pipeline.build_snapshot_table`, one build
for all dates): only events strictly before T count, so a callback due on or after T is never in
its own row's features (the tests prove it). The outcome is the snapshot's `churn` label over
[T, T + horizon); rows without a label are left out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.pipeline import build_snapshot_table
from keepwell.config import Effect
from keepwell.settings import CheckedSection
from training.dataset import categorical_features

if TYPE_CHECKING:
    from features.loading import LoadedData
    from features.spec import FeatureSpec
    from keepwell.config import Config

Progress = Callable[[str], None]
KEYS = ("customer_id", "as_of")
CALLBACKS_FILE = "callbacks.parquet"
ORACLE_FILE = "oracle.parquet"
HOLDOUT = "holdout"


class EffectSettings(CheckedSection, Effect, what="effect settings"):
    """The `effect:` section of the config: `keepwell.config.Effect` itself (the one declaration
    of its fields and defaults)."""

    @classmethod
    def from_config(cls, config: Config) -> EffectSettings:
        return cls.from_section(getattr(config, "effect", None), known_only=True)


@dataclass
class EffectData:
    """Rows of the experiment, sorted by as_of then customer_id.

    `frame`: customer_id, as_of (date), <features>, treated (0/1), churn (0/1), callbacks (the
    number of policy callbacks of the customer due in the as_of month).
    """

    frame: pd.DataFrame
    features: tuple[str, ...]
    categorical: tuple[str, ...]
    spec: FeatureSpec
    as_of_dates: tuple[dt.date, ...]
    dropped_both: int  # (customer, as_of) pairs with both a held-out and an assigned callback
    unlabelled: int  # pairs with a callback but no churn label (e.g. closed before as_of)
    done_before: int = 0  # pairs with a windowed callback done before as_of (dropped)

    def arm_counts(self) -> dict[str, int]:
        treated = int(self.frame["treated"].sum())
        return {"treated": treated, "control": len(self.frame) - treated}


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def month_after(day: dt.date) -> dt.date:
    """The same day one calendar month later (clipped to the month's last day)."""
    y, m = divmod(day.year * 12 + day.month, 12)
    month = m + 1
    next_first = dt.date(y + (month == 12), month % 12 + 1, 1)
    return dt.date(y, month, min(day.day, (next_first - dt.timedelta(days=1)).day))


def read_callbacks(data_dir: Path | str) -> pd.DataFrame:
    """customer_id, reason, due_at (UTC), outcome of every callback in the folder."""
    import pyarrow.dataset as ds

    path = Path(data_dir) / CALLBACKS_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"the callback effect needs the callbacks table: {path} does not exist"
        )
    columns = ["customer_id", "reason", "due_at", "done_at", "outcome"]
    dataset = ds.dataset(path, format="parquet")
    missing = [c for c in columns if c not in dataset.schema.names]
    if missing:
        raise KeyError(f"{path} lacks column(s) {missing}; it has {dataset.schema.names}")
    frame = dataset.to_table(columns=columns).to_pandas()
    frame["customer_id"] = frame["customer_id"].astype(str)
    frame["due_at"] = pd.to_datetime(frame["due_at"], utc=True)
    frame["done_at"] = pd.to_datetime(frame["done_at"], utc=True)
    return frame


def experiment_arms(
    callbacks: pd.DataFrame,
    as_of_dates: Sequence[dt.date],
    reasons: Sequence[str],
    lead_days: int = 7,
) -> tuple[pd.DataFrame, int, int]:
    """(customer_id, as_of, treated, callbacks) per customer with a policy callback due in
    [as_of + lead, next as_of + lead), the number of pairs dropped for having both arms and the
    number dropped for a callback done before as_of."""
    policy = callbacks[callbacks["reason"].isin(list(reasons))]
    parts = []
    for day in sorted(set(as_of_dates)):
        lead = pd.Timedelta(days=lead_days)
        start = pd.Timestamp(day, tz="UTC")
        end = pd.Timestamp(month_after(day), tz="UTC")
        due = policy[(policy["due_at"] >= start + lead) & (policy["due_at"] < end + lead)]
        if due.empty:
            continue
        held = due["outcome"].eq(HOLDOUT)
        early = due["done_at"].notna() & (due["done_at"] < start)
        per = (
            pd.DataFrame(
                {"customer_id": due["customer_id"], "held": held, "made": ~held, "early": early}
            )
            .groupby("customer_id", sort=True)
            .agg(
                held=("held", "any"),
                made=("made", "any"),
                early=("early", "any"),
                callbacks=("held", "size"),
            )
            .reset_index()
        )
        per["as_of"] = day
        parts.append(per)
    if not parts:
        empty = pd.DataFrame({"customer_id": [], "as_of": [], "treated": [], "callbacks": []})
        return empty, 0, 0
    arms = pd.concat(parts, ignore_index=True)
    both = arms["held"] & arms["made"]
    early = arms["early"] & ~both
    arms = arms[~both & ~early].copy()
    arms["treated"] = arms["made"].astype("int64")
    return arms[["customer_id", "as_of", "treated", "callbacks"]], int(both.sum()), int(early.sum())


def build_effect_data(
    data_dir: Path | str,
    config: Config,
    as_of_dates: Sequence[dt.date],
    *,
    loaded: LoadedData | None = None,
    progress: Progress | None = None,
) -> EffectData:
    """The experiment rows for `as_of_dates` (see the module docstring). `loaded` is the
    folder's `features.pipeline.open_data` when the caller has opened it already."""

    settings = EffectSettings.from_config(config)
    dates = sorted(set(as_of_dates))
    if not dates:
        raise ValueError("build_effect_data needs at least one as_of date")
    arms, both, early = experiment_arms(
        read_callbacks(data_dir), dates, settings.reasons, settings.lead_days
    )
    if arms.empty:
        raise ValueError(
            f"no policy callbacks ({', '.join(settings.reasons)}) in {data_dir}/{CALLBACKS_FILE} "
            f"are due in the months starting {dates[0]} .. {dates[-1]}"
        )
    _say(
        progress,
        f"building labelled snapshots for {len(dates)} as-of dates {dates[0]} .. {dates[-1]}",
    )
    source = loaded if loaded is not None else data_dir
    build = build_snapshot_table(source, dates, config, labels=True, progress=progress)
    raw = build.to_pyarrow().to_pandas()
    if "churn" not in raw.columns:
        raise KeyError(
            f"the snapshots of {data_dir} have no churn label; columns {build.label_columns}"
        )
    labelled = raw["churn"].notna()
    if "labeled" in raw.columns:
        labelled &= raw["labeled"].fillna(False).astype(bool)
    snap = raw[labelled].copy()
    snap["customer_id"] = snap["customer_id"].astype(str)
    snap["churn"] = snap["churn"].astype(bool).astype("int64")
    features = tuple(build.feature_columns)
    columns = [*KEYS, *features, "churn"]
    frame = arms.merge(snap[columns], on=list(KEYS), how="inner", validate="one_to_one")
    unlabelled = len(arms) - len(frame)
    frame = frame[[*KEYS, *features, "treated", "churn", "callbacks"]]
    frame = frame.sort_values(["as_of", "customer_id"], kind="mergesort").reset_index(drop=True)
    if frame.empty or frame["treated"].nunique() < 2:
        raise ValueError(
            f"the experiment in {data_dir} has {len(frame)} labelled rows for as_of {dates[0]} .. "
            f"{dates[-1]} and needs both a treated and a held-out arm"
        )
    _say(
        progress,
        f"experiment: {len(frame):,} rows ({int(frame['treated'].sum()):,} treated), "
        f"{both} dropped with both arms, {early} done before as_of, {unlabelled} "
        "without a label",
    )
    return EffectData(
        frame=frame,
        features=features,
        categorical=categorical_features(frame, features, build.spec),
        spec=build.spec,
        as_of_dates=tuple(sorted(set(frame["as_of"]))),
        dropped_both=both,
        unlabelled=unlabelled,
        done_before=early,
    )


def oracle_effects(data_dir: Path | str, frame: pd.DataFrame) -> np.ndarray | None:
    """The demo bank's true `callback_effect` (reduction of the 90-day churn probability from a
    callback completed at as_of) for each row of `frame`, in row order; None without an oracle.
    A row without an oracle value is an error naming a few of the missing keys."""
    import pyarrow.dataset as ds

    path = Path(data_dir) / ORACLE_FILE
    if not path.exists():
        return None
    dataset = ds.dataset(path, format="parquet")
    if "callback_effect" not in dataset.schema.names:
        raise KeyError(f"{path} has no column 'callback_effect'; it has {dataset.schema.names}")
    days = sorted({pd.Timestamp(d).date() for d in frame["as_of"]})
    table = dataset.to_table(
        columns=[*KEYS, "callback_effect"], filter=ds.field("as_of").isin(days) if days else None
    )
    oracle = table.to_pandas()
    oracle["customer_id"] = oracle["customer_id"].astype(str)
    oracle["as_of"] = pd.to_datetime(oracle["as_of"]).dt.date
    keys = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype(str).to_numpy(),
            "as_of": pd.to_datetime(frame["as_of"]).dt.date.to_numpy(),
        }
    )
    joined = keys.merge(oracle, on=list(KEYS), how="left", validate="many_to_one")
    absent = joined["callback_effect"].isna()
    if absent.any():
        shown = joined.loc[absent, list(KEYS)].head(3).to_dict("records")
        raise KeyError(
            f"{path} has no callback_effect for {int(absent.sum())} row(s), e.g. {shown}"
        )
    return joined["callback_effect"].to_numpy(float)
