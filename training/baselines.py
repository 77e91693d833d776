"""The yardsticks the LightGBM models are judged against on the test period.

- `fit_logistic`: a plain, regularised logistic regression on the same features (what a careful
  analyst would build in an afternoon); the model must beat it to justify its complexity.
- `seed_rule`: the early-warning rule of the source documents (CRM rule 004: "transaction
  frequency down or complaints up"), as a 0/1 score.
- `oracle_scores`: on the demo bank, the simulator's true probabilities: the ceiling.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

ORACLE_FILE = "oracle.parquet"
KEYS = ("customer_id", "as_of")


# -- logistic regression -----------------------------------------------------------------------
def _inputs(
    frame: pd.DataFrame, features: Sequence[str], categorical: Sequence[str]
) -> pd.DataFrame:
    """The regression's input: numeric and boolean features as float64 (null -> NaN), string
    features as objects (null -> NaN). Missing columns are an error naming them."""
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise KeyError(
            f"the logistic baseline needs feature column(s) {missing}; "
            f"the frame has {len(frame.columns)} columns"
        )
    cats = set(categorical)
    out: dict[str, Any] = {}
    for name in features:
        col = frame[name].astype("object")
        if name in cats:
            out[name] = col.map(lambda v: np.nan if pd.isna(v) else str(v))
        else:
            values = col.where(col.notna(), np.nan)
            out[name] = pd.to_numeric(values, errors="raise").astype("float64")
    return pd.DataFrame(out, index=frame.index)


@dataclass(frozen=True)
class LogisticBaseline:
    """A fitted scikit-learn pipeline and the columns it reads; `predict_proba` gives P(y = 1)."""

    target: str
    pipeline: Any  # sklearn.pipeline.Pipeline
    features: tuple[str, ...]
    categorical: tuple[str, ...]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        x = _inputs(frame, self.features, self.categorical)
        return np.asarray(self.pipeline.predict_proba(x)[:, 1], dtype=float)


def _pipeline(
    numeric: list[str], categorical: list[str], *, seed: int, c: float, max_iter: int
) -> Any:  # sklearn.pipeline.Pipeline
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric_steps = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", add_indicator=True)),
            ("scale", StandardScaler()),
        ]
    )
    categorical_steps = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    columns = ColumnTransformer(
        [("numeric", numeric_steps, numeric), ("categorical", categorical_steps, categorical)],
        remainder="drop",
        sparse_threshold=0.0,
    )
    model = LogisticRegression(C=c, class_weight=None, max_iter=max_iter, random_state=seed)
    return Pipeline([("columns", columns), ("model", model)])


def fit_logistic(
    train: pd.DataFrame,
    target: str,
    features: Sequence[str],
    categorical: Sequence[str],
    *,
    seed: int,
    c: float = 1.0,
    max_iter: int = 5000,
) -> LogisticBaseline:
    """Fit the logistic baseline for `target` (a 0/1 column of `train`) on `features`.

    Numeric and boolean features: median imputation with a missing-value indicator, then
    standardisation; string features (`categorical`): most-frequent imputation, then one-hot
    encoding that ignores levels unseen in training. No class weighting, so that the output is
    a probability; L2 penalty with `c` = 1.0. lbfgs is deterministic, `seed` is recorded anyway.
    The fit runs on one thread: on this small problem more BLAS/OpenMP threads only contend.
    """
    if target not in train.columns:
        raise KeyError(f"the training frame has no target column {target!r}")
    y = pd.to_numeric(train[target].astype("object"), errors="raise")
    if y.isna().any():
        raise ValueError(f"target {target!r} has {int(y.isna().sum())} null label(s)")
    classes = sorted(set(y.astype(int)))
    if classes != [0, 1]:
        raise ValueError(f"target {target!r} needs both classes 0 and 1, has {classes}")
    unknown = [c for c in categorical if c not in features]
    if unknown:
        raise ValueError(f"categorical column(s) {unknown} are not among the features")
    cats = [f for f in features if f in set(categorical)]
    numeric = [f for f in features if f not in set(categorical)]
    pipeline = _pipeline(numeric, cats, seed=seed, c=c, max_iter=max_iter)
    x = _inputs(train, features, categorical)
    with threadpool_limits(limits=1):  # on 2 busy cores, 2 threads were 5x slower than 1
        pipeline.fit(x, y.astype(int).to_numpy())
    return LogisticBaseline(target, pipeline, tuple(features), tuple(cats))


# -- the seed rule -----------------------------------------------------------------------------
def seed_rule(
    frame: pd.DataFrame, *, short: int = 30, mid: int = 90, long: int = 180
) -> np.ndarray:
    """The source documents' churn early warning as a 0/1 score: 1.0 when

        transaction frequency is down:  txn_rate_{short}d_vs_{mid}d < 1
            (the daily transaction rate of the last `short` days is below that of the last
            `mid` days; null, i.e. no transactions in `mid` days, counts as *not* down), or
        complaints are up:  complaint_count_{mid}d / mid
                            > (complaint_count_{long}d - complaint_count_{mid}d) / (long - mid)
            (more complaints per day in the last `mid` days than in the `long - mid` days
            before; with the default 90/180 days: more complaints in the last 90 days than in
            the 90 days before). Null complaint counts count as 0.

    otherwise 0.0. The same rule scores both targets. Being binary, its ROC-AUC is that of a
    single cut, and its top-k lift depends on how ties are broken (see `training.evaluate`).
    """
    rate, recent, longer = (
        f"txn_rate_{short}d_vs_{mid}d",
        f"complaint_count_{mid}d",
        f"complaint_count_{long}d",
    )
    missing = [c for c in (rate, recent, longer) if c not in frame.columns]
    if missing:
        raise KeyError(
            f"the seed rule needs column(s) {missing} (transaction frequency trend and complaint "
            f"counts over {mid} and {long} days); the frame lacks them"
        )
    if not 0 < short < mid < long:
        raise ValueError(f"windows must satisfy 0 < short < mid < long, got {short}, {mid}, {long}")

    def numbers(name: str) -> np.ndarray:
        col = frame[name].astype("object")
        return pd.to_numeric(col.where(col.notna(), np.nan), errors="raise").to_numpy(float)

    txn = numbers(rate)
    down = np.where(np.isnan(txn), False, txn < 1.0)
    last, both = np.nan_to_num(numbers(recent)), np.nan_to_num(numbers(longer))
    up = last / mid > (both - last) / (long - mid)
    return (down | up).astype(float)


# -- the oracle --------------------------------------------------------------------------------
def _as_dates(values: Any) -> np.ndarray:
    """Dates, date strings or timestamps as numpy datetime64[D] (for matching keys)."""
    return pd.to_datetime(pd.Series(values, dtype="object")).to_numpy().astype("datetime64[D]")


def oracle_scores(data_dir: Path | str, frame: pd.DataFrame, target: str) -> np.ndarray | None:
    """The demo bank's true probability of `target` for each row of `frame`, in row order.

    Reads `oracle.parquet` (customer_id, as_of, p_churn, p_complaint) from `data_dir`, only the
    frame's as_of dates. Returns None when there is no oracle file (a real bank's data). A row of
    `frame` without an oracle value is an error naming the missing (customer_id, as_of) pairs.
    """
    import pyarrow.dataset as ds

    path = Path(data_dir) / ORACLE_FILE
    if not path.exists():
        return None
    missing_keys = [k for k in KEYS if k not in frame.columns]
    if missing_keys:
        raise KeyError(f"matching the oracle needs column(s) {missing_keys} in the frame")
    column = f"p_{target}"
    dataset = ds.dataset(path, format="parquet")
    if column not in dataset.schema.names:
        raise KeyError(
            f"{path} has no column {column!r} for target {target!r}; it has {dataset.schema.names}"
        )
    days = _as_dates(frame["as_of"])
    wanted = [dt.date.fromisoformat(str(d)) for d in np.unique(days)]
    table = dataset.to_table(
        columns=[*KEYS, column], filter=ds.field("as_of").isin(wanted) if wanted else None
    )
    oracle = table.to_pandas()
    oracle = pd.DataFrame(
        {
            "customer_id": oracle["customer_id"].astype(str).to_numpy(),
            "as_of": _as_dates(oracle["as_of"]),
            "score": oracle[column].to_numpy(float),
        }
    )
    keys = pd.DataFrame({"customer_id": frame["customer_id"].astype(str).to_numpy(), "as_of": days})
    duplicated = oracle.duplicated(list(KEYS))
    if duplicated.any():
        raise ValueError(f"{path} has {int(duplicated.sum())} duplicate (customer_id, as_of) rows")
    joined = keys.merge(oracle, on=list(KEYS), how="left", sort=False, validate="many_to_one")
    absent = joined["score"].isna().to_numpy()
    if absent.any():
        pairs = [
            f"({c}, {pd.Timestamp(d).date()})"
            for c, d in joined.loc[absent, list(KEYS)].head(5).itertuples(index=False)
        ]
        raise ValueError(
            f"{path} has no {column} for {int(absent.sum())} of {len(frame)} rows, e.g. "
            + ", ".join(pairs)
        )
    return joined["score"].to_numpy(float)
