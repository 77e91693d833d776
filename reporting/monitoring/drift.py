"""Monitoring arithmetic: population stability of features and scores, stability of the RMs'
top N, and the retraining recommendation. Pure functions on frames, arrays and mappings; the
job that reads the workspace, logs to MLflow and writes the report is `reporting.monitoring.run`.

Population stability index (PSI) of one column between a reference sample r and a current
sample c, over bins b: PSI = sum_b (c_b - r_b) * ln(c_b / r_b), with the shares r_b and c_b
floored at `FLOOR` so that an empty bin stays finite.

Bins: a numeric column gets the reference's quantiles at 1/bins, 2/bins, ... as edges
(duplicates dropped, so a column with many equal values gets fewer bins), the first and last bin
open-ended, plus one bin for nulls (NaN). A categorical or boolean column gets one bin per level
seen in the reference, one "other" bin for levels the reference never had, and one for nulls.

Rules of thumb behind the defaults: PSI < 0.10 is noise, 0.10-0.25 a change worth watching,
>= 0.25 a population the model has not seen. Scores get a tighter retraining bound (0.10 by
default): a moved score distribution changes who is called even when no single feature moved
much.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.dates import parse_day
from features.loading import monthly_as_of_dates
from keepwell.config import Monitoring
from keepwell.settings import CheckedSection

FLOOR = 1e-4  # smallest share of a bin in the PSI sum
EDGE_SAMPLE = 250_000  # reference values behind the quantile edges of a numeric column
STABLE, WATCH, RETRAIN = "stable", "watch", "retrain"
NUMERIC, CATEGORICAL = "numeric", "categorical"


class MonitoringError(ValueError):
    """Input the monitoring job cannot use; the message names it and what to do."""


class MonitoringSettings(
    CheckedSection, Monitoring, error=MonitoringError, what="monitoring settings"
):
    """The `monitoring:` section of the config: `keepwell.config.Monitoring` itself (the one
    declaration of its fields and defaults), with bad values as `MonitoringError`."""

    @classmethod
    def from_config(cls, config: Any) -> MonitoringSettings:
        """The config's `monitoring` section (keys it does not know are ignored), else the
        defaults."""
        return cls.from_section(getattr(config, "monitoring", None), known_only=True)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


# -- PSI ---------------------------------------------------------------------------------------
def psi_from_counts(reference: Sequence[float], current: Sequence[float]) -> float:
    """PSI of two count vectors over the same bins (shares floored at `FLOOR`)."""
    r = np.asarray(reference, dtype=float)
    c = np.asarray(current, dtype=float)
    if r.shape != c.shape:
        raise ValueError(f"bin counts differ in length: {r.shape} vs {c.shape}")
    if r.sum() <= 0 or c.sum() <= 0:
        raise MonitoringError("PSI needs rows on both sides: a sample is empty")
    r = np.maximum(r / r.sum(), FLOOR)
    c = np.maximum(c / c.sum(), FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def numeric_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges: the reference's finite values at the quantiles 1/bins .. (bins-1)/bins
    (observed values, no interpolation: a count feature's bins fall on its values), duplicates
    dropped; empty when the reference has no finite value. Above `EDGE_SAMPLE` values the
    quantiles come from an evenly spaced sample of that many (a bin then holds its share of the
    whole reference within about 0.1 %); the counts always use every row."""
    values = np.asarray(reference, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.empty(0)
    if values.size > EDGE_SAMPLE:
        values = values[:: -(-values.size // EDGE_SAMPLE)]
    qs = np.linspace(0, 1, bins + 1)[1:-1]
    return np.unique(np.quantile(values, qs, method="inverted_cdf"))


def numeric_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin: (-inf, e1], (e1, e2], ..., (ek, inf), then nulls. One vectorised
    comparison per edge (a handful of edges: faster than a binary search per value)."""
    values = np.asarray(values, dtype=float)
    nulls = int(np.count_nonzero(np.isnan(values)))
    at_most = [np.count_nonzero(values <= e) for e in edges]  # NaN compares false
    counts = np.diff(np.array([0, *at_most, values.size - nulls]))
    return np.append(counts, nulls)


def level_counts(values: pd.Series) -> pd.Series:
    """Rows per non-null level, indexed by the levels as Python objects."""
    counts = values.value_counts(dropna=True, sort=False)
    return pd.Series(counts.to_numpy(), index=pd.Index(counts.index.astype(object)))


def categorical_counts(values: pd.Series, levels: pd.Index) -> np.ndarray:
    """Counts per reference level, then "other" (levels not in `levels`), then nulls."""
    seen = level_counts(values)
    matched = seen.reindex(levels, fill_value=0).to_numpy()
    other = int(seen.sum() - matched.sum())
    return np.concatenate([matched, [other, int(values.isna().sum())]])


def is_categorical(series: pd.Series) -> bool:
    """Strings, booleans, categories and objects are binned by level; numbers by quantile."""
    return pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series)


@dataclass(frozen=True)
class Drift:
    """The PSI of one column (a feature or a score) and its status against the bounds."""

    name: str
    kind: str  # numeric | categorical
    psi: float
    status: str  # stable | watch | retrain
    bins: int  # bins compared, the null (and "other") bins included
    reference_null_share: float
    current_null_share: float

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for k in ("psi", "reference_null_share", "current_null_share"):
            out[k] = round(out[k], 6)
        return out


def status_of(psi: float, warn: float, retrain: float) -> str:
    return RETRAIN if psi >= retrain else WATCH if psi >= warn else STABLE


def column_psi(
    reference: pd.Series, current: pd.Series, bins: int, *, categorical: bool | None = None
) -> tuple[float, str, int]:
    """(PSI, kind, number of bins) of one column; `categorical` None: decided by dtype."""
    kind = is_categorical(reference) if categorical is None else categorical
    if kind:
        levels = level_counts(reference).index
        r, c = categorical_counts(reference, levels), categorical_counts(current, levels)
    else:
        ref = pd.to_numeric(reference, errors="raise").to_numpy(dtype=float, na_value=np.nan)
        cur = pd.to_numeric(current, errors="raise").to_numpy(dtype=float, na_value=np.nan)
        edges = numeric_edges(ref, bins)
        r, c = numeric_counts(ref, edges), numeric_counts(cur, edges)
    return psi_from_counts(r, c), CATEGORICAL if kind else NUMERIC, len(r)


def drift_table(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Iterable[str],
    settings: MonitoringSettings,
    *,
    categorical: Iterable[str] = (),
    retrain_bound: float | None = None,
) -> list[Drift]:
    """The PSI of every column in `columns`, highest first. `categorical`: columns binned by
    level whatever their dtype (the others by dtype); `retrain_bound`: the status bound for
    retrain (default `settings.psi_retrain`; scores pass `score_psi_retrain`)."""
    columns = list(columns)
    for side, frame in (("reference", reference), ("current", current)):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise MonitoringError(f"the {side} sample lacks column(s) {missing}")
        if frame.empty:
            raise MonitoringError(f"the {side} sample has no rows")
    forced = set(categorical)
    bound = settings.psi_retrain if retrain_bound is None else retrain_bound
    out = []
    for name in columns:
        ref, cur = reference[name], current[name]
        psi, kind, bins = column_psi(ref, cur, settings.bins, categorical=(name in forced) or None)
        nulls = float(ref.isna().mean()), float(cur.isna().mean())
        out.append(Drift(name, kind, psi, status_of(psi, settings.psi_warn, bound), bins, *nulls))
    return sorted(out, key=lambda d: (-d.psi, d.name))


# -- the recommendation ----------------------------------------------------------------------
@dataclass(frozen=True)
class Recommendation:
    decision: str  # stable | watch | retrain
    reasons: list[str]  # plain sentences, the strongest first
    retrain_features: list[str]  # features at or over psi_retrain, by PSI
    watch_features: list[str]  # features at or over psi_warn but under psi_retrain, by PSI
    retrain_scores: list[str]
    watch_scores: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _moved(d: Drift, bound: float, what: str = "") -> str:
    return f"{d.name}{what} moved (PSI {d.psi:.2f} >= {bound:.2f})"


def recommend(
    features: Sequence[Drift], scores: Sequence[Drift], settings: MonitoringSettings
) -> Recommendation:
    """`retrain` when at least `min_features_drifted` features reach `psi_retrain` or a score
    reaches `score_psi_retrain`; `watch` when any feature or score reaches `psi_warn`; else
    `stable`. The reasons name every column over a bound, by PSI."""
    s = settings
    features = sorted(features, key=lambda d: -d.psi)
    scores = sorted(scores, key=lambda d: -d.psi)
    f_retrain = [d for d in features if d.psi >= s.psi_retrain]
    f_watch = [d for d in features if s.psi_warn <= d.psi < s.psi_retrain]
    s_retrain = [d for d in scores if d.psi >= s.score_psi_retrain]
    s_watch = [d for d in scores if s.psi_warn <= d.psi < s.score_psi_retrain]
    reasons = [_moved(d, s.score_psi_retrain, " score") for d in s_retrain]
    reasons += [_moved(d, s.psi_retrain) for d in f_retrain]
    if f_retrain and len(f_retrain) < s.min_features_drifted:
        reasons.append(
            f"{len(f_retrain)} feature(s) at or over {s.psi_retrain:.2f}; retraining on features "
            f"alone needs at least {s.min_features_drifted}"
        )
    reasons += [_moved(d, s.psi_warn, " score") for d in s_watch]
    reasons += [_moved(d, s.psi_warn) for d in f_watch]
    if s_retrain or len(f_retrain) >= s.min_features_drifted:
        decision = RETRAIN
    elif f_retrain or f_watch or s_watch:
        decision = WATCH
    else:
        decision = STABLE
        top = max([*features, *scores], key=lambda d: d.psi, default=None)
        reasons.append(
            f"no feature or score reached PSI {s.psi_warn:.2f}"
            + (f" (largest: {top.name}, {top.psi:.3f})" if top is not None else "")
        )
    names = [d.name for d in f_retrain]
    return Recommendation(
        decision,
        reasons,
        names,
        [d.name for d in f_watch],
        [d.name for d in s_retrain],
        [d.name for d in s_watch],
    )


# -- the reference window ---------------------------------------------------------------------
def window_dates(span: str, snapshots: Any = None, what: str = "split_train") -> list[dt.date]:
    """The monthly as-of dates of "first..last" (as `training.split` logs `split_train`);
    `snapshots`, when given, must match their number."""

    first_text, sep, last_text = str(span).partition("..")
    if not sep:
        raise MonitoringError(f"{what} must be FIRST..LAST (YYYY-MM-DD..YYYY-MM-DD), got {span!r}")
    first = parse_day(first_text.strip(), MonitoringError, what)
    last = parse_day(last_text.strip(), MonitoringError, what)
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    if months < 1:
        raise MonitoringError(f"{what} {span!r}: the first date is after the last")
    dates = monthly_as_of_dates(last, months)
    if dates[0] != first:
        raise MonitoringError(f"{what} {span!r}: {first} is not a monthly step before {last}")
    if snapshots not in (None, "") and int(snapshots) != len(dates):
        raise MonitoringError(
            f"{what} {span!r} spans {len(dates)} monthly snapshots, the run logged {snapshots}"
        )
    return dates


# -- stability of the RMs' lists ---------------------------------------------------------------
def consecutive_list_days(
    dates: Sequence[dt.date], working_days: Sequence[int], holidays: Sequence[dt.date] = ()
) -> tuple[dt.date, dt.date] | None:
    """The newest two list dates with no working day between them (Monday = 0 in
    `working_days`), or None when no such pair exists."""
    days = sorted(set(dates))
    mask = [1 if d in set(working_days) else 0 for d in range(7)]
    cal = np.busdaycalendar(weekmask=mask, holidays=np.array(list(holidays), "datetime64[D]"))
    for first, second in zip(reversed(days[:-1]), reversed(days[1:]), strict=True):
        between = np.busday_count(first + dt.timedelta(days=1), second, busdaycal=cal)
        if between == 0:
            return first, second
    return None


def top_n_overlap(
    first: Mapping[str, Sequence[str]], second: Mapping[str, Sequence[str]], n: int
) -> pd.DataFrame:
    """Per RM (the union of both days): how much of the top `n` of `first` (customer ids in rank
    order) is still in the top `n` of `second`. overlap = |top_n(first) & top_n(second)| /
    min(n, the longer of the two top lists), so two identical lists of 5 tasks score 1.0 and an
    RM with a list on one day only scores 0. Columns rm_id, first_size, second_size, common,
    overlap."""
    rows = []
    for rm in sorted(set(first) | set(second)):
        a = list(dict.fromkeys(first.get(rm, ())))[:n]
        b = list(dict.fromkeys(second.get(rm, ())))[:n]
        size = min(n, max(len(a), len(b)))
        if size == 0:
            continue
        common = len(set(a) & set(b))
        rows.append((rm, len(a), len(b), common, common / size))
    return pd.DataFrame(rows, columns=["rm_id", "first_size", "second_size", "common", "overlap"])


def stability_summary(overlap: pd.DataFrame, dates: tuple[dt.date, dt.date], n: int) -> dict:
    """The `top_n_stability` section for two compared list days."""
    values = overlap["overlap"].to_numpy(float)
    below = overlap.loc[overlap["overlap"] < 0.5, "rm_id"].tolist()
    return {
        "status": "compared",
        "dates": [dates[0].isoformat(), dates[1].isoformat()],
        "n": n,
        "rms": len(values),
        "mean_overlap": round(float(values.mean()), 4) if len(values) else None,
        "min_overlap": round(float(values.min()), 4) if len(values) else None,
        "share_below_half": round(float((values < 0.5).mean()), 4) if len(values) else None,
        "rms_below_half": below,
        "per_rm": [
            {
                "rm_id": r.rm_id,
                "overlap": round(float(r.overlap), 4),
                "common": int(r.common),
                "first_size": int(r.first_size),
                "second_size": int(r.second_size),
            }
            for r in overlap.itertuples(index=False)
        ],
        "note": None,
    }


def no_stability(status: str, note: str, dates: Sequence[dt.date], n: int) -> dict:
    """The `top_n_stability` section when no two list days can be compared (not an error)."""
    return {"status": status, "dates": [d.isoformat() for d in dates], "n": n, "rms": 0,
            "mean_overlap": None, "min_overlap": None, "share_below_half": None,
            "rms_below_half": [], "per_rm": [], "note": note}  # fmt: skip


def pick_list_days(
    dates: Sequence[dt.date], working_days: Sequence[int], holidays: Sequence[dt.date], n: int
) -> tuple[tuple[dt.date, dt.date] | None, dict | None]:
    """(the two list days to compare, None), or (None, the section that says why there are
    none: no lists, one list day, or no two consecutive working days among them)."""
    dates = sorted(set(dates))
    if not dates:
        return None, no_stability("no_lists", "no daily lists yet (`keepwell plan` writes them)",
                                  [], n)  # fmt: skip
    if len(dates) == 1:
        note = f"one list day ({dates[0]}): stability needs two consecutive list days"
        return None, no_stability("one_list_day", note, dates, n)
    pair = consecutive_list_days(dates, working_days, holidays)
    if pair is None:
        note = "no two list days are consecutive working days: nothing to compare"
        return None, no_stability("no_consecutive_days", note, dates[-5:], n)
    return pair, None


# -- the summary the KPI report shows ------------------------------------------------------------
def summary(
    as_of: dt.date,
    features: Sequence[Drift],
    scores: Sequence[Drift],
    stability: Mapping[str, Any],
    recommendation: Recommendation,
    settings: MonitoringSettings,
) -> dict[str, Any]:
    drifted = [d.name for d in sorted(features, key=lambda d: -d.psi) if d.psi >= settings.psi_warn]
    return {
        "as_of": as_of.isoformat(),
        "recommendation": recommendation.decision,
        "max_feature_psi": round(max((d.psi for d in features), default=0.0), 4),
        "drifted_features": drifted,
        "score_psi": {d.name: round(d.psi, 4) for d in scores},
        "top_n_mean_overlap": stability.get("mean_overlap"),
    }
