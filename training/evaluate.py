"""Evaluation on the held-out test period: metrics per scorer, per group, as JSON and tables.

    capacity = daily_capacity(data_dir)                        # calls the bank makes in one day
    evaluation = evaluate(test_frame, {"churn": {"model": p, "logistic": q, "seed_rule": r}},
                          capacity=capacity)
    write_evaluation("workspace/reports/evaluation.json", evaluation)
    for table in render_table(evaluation): console.print(table)
    mlflow.log_metrics(flat_metrics(evaluation))

Every scorer (the model, the logistic baseline, the seed rule, the demo bank's oracle) is measured
on the same rows with the same functions (`training.metrics`), so the table compares like with
like. Metrics that are undefined (one class only) are NaN in Python and null in the JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from keepwell.io import write_text
from training import metrics

if TYPE_CHECKING:
    from rich.table import Table

    from keepwell.config import Config

SCORERS = ("model", "logistic", "seed_rule", "oracle")  # the table's row order
NOT_PROBABILITIES = frozenset({"seed_rule"})  # 0/1 flags: no Brier score or calibration error
METRICS = (
    "roc_auc",
    "pr_auc",
    "brier",
    "ece",
    "lift_top_5pct",
    "capture_top_5pct",
    "lift_top_10pct",
    "capture_top_10pct",
    "capture_at_capacity",
    "base_rate",
    "rows",
    "positives",
)
GROUP_COLUMNS = ("segment", "is_elderly", "is_disabled")
FLAG_GROUPS = {"is_elderly": "elderly", "is_disabled": "disabled"}
TIERS = ("High", "Medium", "Low")


# -- capacity ----------------------------------------------------------------------------------
def daily_capacity(source: Path | str | pd.DataFrame) -> int | None:
    """The number of customers the bank can call in one day: the sum of `capacity_per_day` over
    the `rms` table (a folder holding `rms.parquet`, the file itself, or the table as a frame).

    `capture_at_capacity` uses it: of the customers who will go on to churn (complain), the
    share that the first day's calls reach when every RM calls the top-scored customers.
    Returns None when a folder has no `rms.parquet` (mapped data without RMs).
    """
    if isinstance(source, pd.DataFrame):
        rms, where = source, "the rms frame"
    else:
        path = Path(source)
        path = path / "rms.parquet" if path.is_dir() else path
        if not path.exists():
            return None
        import pyarrow.parquet as pq

        rms, where = pq.read_table(path).to_pandas(), str(path)
    if "capacity_per_day" not in rms.columns:
        raise KeyError(f"rms.capacity_per_day missing from {where}; it has {list(rms.columns)}")
    values = pd.to_numeric(rms["capacity_per_day"].astype("object"), errors="coerce")
    bad = rms.loc[values.isna() | (values < 0), "capacity_per_day"]
    if len(bad):
        raise ValueError(
            f"rms.capacity_per_day in {where} must be a count >= 0, got {bad.head(5).tolist()}"
        )
    return int(values.sum())


def capacity_mask(p: np.ndarray, as_of: np.ndarray | None, capacity: int) -> np.ndarray:
    """True for the `capacity` highest-scored rows of each as_of date (all rows one date when
    `as_of` is None). Ties are broken by row order, as in `training.metrics.top_count`."""
    p = np.asarray(p, dtype=float)
    keys = np.zeros(len(p), dtype=int) if as_of is None else pd.factorize(np.asarray(as_of))[0]
    contacted = np.zeros(len(p), dtype=bool)
    for key in np.unique(keys):
        rows = np.flatnonzero(keys == key)
        top = rows[np.argsort(-p[rows], kind="mergesort")[: max(0, int(capacity))]]
        contacted[top] = True
    return contacted


# -- metrics -----------------------------------------------------------------------------------
def score_metrics(
    y: np.ndarray,
    p: np.ndarray,
    *,
    capacity: int | None,
    as_of: np.ndarray | None = None,
    contacted: np.ndarray | None = None,
    probability: bool = True,
) -> dict[str, float]:
    """Every metric of `METRICS` for outcomes `y` (0/1) and scores `p`.

    `capture_at_capacity`: the share of positives among the rows called on the first day, the
    top `capacity` rows per as_of date (`as_of`; one date when None), pooled over the dates; or
    among the rows flagged by `contacted`, when given (a group's share of the whole book's
    calls). NaN without a capacity. `probability=False` (a 0/1 rule): Brier and ECE are NaN.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if np.isnan(p).any():
        raise ValueError(f"{int(np.isnan(p).sum())} of {len(p)} scores are NaN")
    positives = float(y.sum())
    out = {
        "roc_auc": metrics.roc_auc(y, p),
        "pr_auc": metrics.pr_auc(y, p),
        "brier": metrics.brier(y, p) if probability else math.nan,
        "ece": metrics.expected_calibration_error(y, p) if probability else math.nan,
    }
    for share in (5, 10):
        lift, capture = metrics.top_share(y, p, share / 100)
        out[f"lift_top_{share}pct"], out[f"capture_top_{share}pct"] = lift, capture
    if contacted is None and capacity is not None:
        contacted = capacity_mask(p, as_of, capacity)
    if contacted is None or positives == 0:
        out["capture_at_capacity"] = math.nan
    else:
        out["capture_at_capacity"] = float(y[np.asarray(contacted, bool)].sum() / positives)
    out["base_rate"] = positives / len(y) if len(y) else math.nan
    out["rows"], out["positives"] = float(len(y)), positives
    return {name: float(out[name]) for name in METRICS}


def group_masks(
    frame: pd.DataFrame, groups: Sequence[str] = GROUP_COLUMNS
) -> dict[str, np.ndarray]:
    """Row masks by group: one per value of a string column (e.g. segment: retail, hnw,
    institutional), and one per true/false flag column named by `FLAG_GROUPS` (elderly,
    disabled; null counts as false). Columns missing from the frame are skipped."""
    out: dict[str, np.ndarray] = {}
    for column in groups:
        if column not in frame.columns:
            continue
        values = frame[column].astype("object")
        if column in FLAG_GROUPS or pd.api.types.is_bool_dtype(frame[column]):
            name = FLAG_GROUPS.get(column, column)
            out[name] = values.map(lambda v: False if pd.isna(v) else bool(v)).to_numpy(bool)
            continue
        for level in sorted({str(v) for v in values.dropna()}):
            out[level] = (values.map(lambda v: None if pd.isna(v) else str(v)) == level).to_numpy()
    return out


def evaluate_target(
    frame: pd.DataFrame,
    y: np.ndarray,
    scores: Mapping[str, np.ndarray | None],
    *,
    capacity: int | None,
    groups: Sequence[str] = GROUP_COLUMNS,
) -> dict[str, Any]:
    """{scorer: metrics, ..., "by_group": {group: {scorer: metrics}}} for one target.

    Scorers whose score is None (no oracle) are left out. Row i of `frame`, `y` and every score
    is the same customer and date; `frame["as_of"]` (when present) sets the per-day capacity.
    Within a group, lift and capture at 5 %/10 % rank the group's own rows, while
    `capture_at_capacity` counts the group's positives reached by the whole book's first-day
    calls. Groups with no rows are left out.
    """
    y = np.asarray(y, dtype=float)
    if len(y) != len(frame):
        raise ValueError(f"y has {len(y)} rows, the frame {len(frame)}")
    present = {name: np.asarray(p, float) for name, p in scores.items() if p is not None}
    for name, p in present.items():
        if p.shape != y.shape:
            raise ValueError(f"scorer {name!r} has {p.shape} scores for {len(y)} rows")
    order = [n for n in SCORERS if n in present] + [n for n in present if n not in SCORERS]
    as_of = frame["as_of"].to_numpy() if "as_of" in frame.columns else None
    contacted = {
        name: capacity_mask(present[name], as_of, capacity) if capacity is not None else None
        for name in order
    }
    out: dict[str, Any] = {
        name: score_metrics(
            y,
            present[name],
            capacity=capacity,
            contacted=contacted[name],
            probability=name not in NOT_PROBABILITIES,
        )
        for name in order
    }
    by_group: dict[str, dict[str, dict[str, float]]] = {}
    for group, mask in group_masks(frame, groups).items():
        if not mask.any():
            continue
        by_group[group] = {
            name: score_metrics(
                y[mask],
                present[name][mask],
                capacity=capacity,
                contacted=None if contacted[name] is None else contacted[name][mask],
                probability=name not in NOT_PROBABILITIES,
            )
            for name in order
        }
    out["by_group"] = by_group
    return out


# -- the evaluation ----------------------------------------------------------------------------
def _iso(value: Any) -> str:
    return pd.Timestamp(value).date().isoformat()


def period_summary(frame: pd.DataFrame, capacity: int | None) -> dict[str, Any]:
    """The test period's description: its as_of dates, rows and the daily capacity used."""
    dates = sorted({_iso(v) for v in frame["as_of"]}) if "as_of" in frame.columns else []
    return {
        "as_of": dates,
        "first_as_of": dates[0] if dates else None,
        "last_as_of": dates[-1] if dates else None,
        "rows": len(frame),
        "capacity_per_day": capacity,
    }


@dataclass(frozen=True)
class Evaluation:
    """`test_period` (see `period_summary`) and, per target, `evaluate_target`'s result."""

    test_period: dict[str, Any]
    targets: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"test_period": self.test_period, "targets": self.targets}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        def nan(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: nan(v) for k, v in value.items()}
            return math.nan if value is None else value

        return cls(dict(data["test_period"]), nan(dict(data["targets"])))


def evaluate(
    frame: pd.DataFrame,
    scores_by_target: Mapping[str, Mapping[str, np.ndarray | None]],
    *,
    capacity: int | None,
    groups: Sequence[str] = GROUP_COLUMNS,
) -> Evaluation:
    """Evaluate every target's scorers on `frame` (the test period), the outcomes being the
    frame's target columns (0/1)."""
    targets = {}
    for target, scores in scores_by_target.items():
        if target not in frame.columns:
            raise KeyError(f"the test frame has no outcome column {target!r}")
        y = pd.to_numeric(frame[target].astype("object"), errors="raise").to_numpy(float)
        targets[target] = evaluate_target(frame, y, scores, capacity=capacity, groups=groups)
    return Evaluation(period_summary(frame, capacity), targets)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def evaluation_json(evaluation: Evaluation) -> str:
    """The evaluation as JSON text; NaN and infinities become null."""
    return json.dumps(_json_safe(evaluation.to_dict()), indent=2, allow_nan=False) + "\n"


def write_evaluation(path: Path | str, evaluation: Evaluation) -> Path:
    """Write `evaluation_json(evaluation)` to `path` atomically."""
    write_text(path, evaluation_json(evaluation))
    return Path(path)


def read_evaluation(path: Path | str) -> Evaluation:
    """Read a file written by `write_evaluation` (null back to NaN)."""
    return Evaluation.from_dict(json.loads(Path(path).read_text("utf-8")))


# -- tables and MLflow metrics -----------------------------------------------------------------
TABLE_COLUMNS = (
    ("ROC-AUC", "roc_auc"),
    ("PR-AUC", "pr_auc"),
    ("Brier", "brier"),
    ("ECE", "ece"),
    ("lift@5%", "lift_top_5pct"),
    ("capture@10%", "capture_top_10pct"),
    ("capture@capacity", "capture_at_capacity"),
)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.3f}"


def _scorers(result: Mapping[str, Any]) -> list[str]:
    return [name for name in result if name != "by_group"]


def render_table(evaluation: Evaluation) -> list[Table]:
    """Per target: a table of scorers x headline metrics, and one of ROC-AUC by group."""
    from rich.table import Table

    period = evaluation.test_period
    span = f"{period.get('first_as_of')} .. {period.get('last_as_of')}"
    tables = []
    for target, result in evaluation.targets.items():
        names = _scorers(result)
        first = result[names[0]] if names else {}
        table = Table(
            title=f"{target}: test period {span}, {int(first.get('rows', 0))} rows, "
            f"base rate {_fmt(first.get('base_rate'))}",
            title_justify="left",
        )
        table.add_column("scorer")
        for header, _ in TABLE_COLUMNS:
            table.add_column(header, justify="right")
        for name in names:
            table.add_row(name, *(_fmt(result[name].get(key)) for _, key in TABLE_COLUMNS))
        tables.append(table)
        groups = result.get("by_group", {})
        if groups:
            by_group = Table(title=f"{target}: ROC-AUC by group", title_justify="left")
            for header in ("group", "rows", "positives", *names):
                by_group.add_column(header, justify="left" if header == "group" else "right")
            for group, per in groups.items():
                some = per[names[0]] if names else {}
                by_group.add_row(
                    group,
                    f"{int(some.get('rows', 0))}",
                    f"{int(some.get('positives', 0))}",
                    *(_fmt(per[name].get("roc_auc")) for name in names),
                )
            tables.append(by_group)
    return tables


def _metric_name(part: str) -> str:
    """A key part MLflow accepts (letters, digits, _ - . / and space), dots kept as separators."""
    return re.sub(r"[^A-Za-z0-9_\-/ ]", "_", str(part))


def flat_metrics(evaluation: Evaluation) -> dict[str, float]:
    """Metrics for `mlflow.log_metrics`: `churn.model.roc_auc`, `churn.retail.model.roc_auc`,
    ...; undefined (NaN) values are left out."""
    out: dict[str, float] = {}

    def add(prefix: Sequence[str], values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            if value is not None and math.isfinite(float(value)):
                out[".".join(_metric_name(p) for p in (*prefix, key))] = float(value)

    for target, result in evaluation.targets.items():
        for name in _scorers(result):
            add((target, name), result[name])
        for group, per in result.get("by_group", {}).items():
            for name, values in per.items():
                add((target, group, name), values)
    return out


# -- risk tiers --------------------------------------------------------------------------------
def risk_tier(p: np.ndarray, target: str, config: Config) -> np.ndarray:
    """Tier "High" when p >= the target's high cut (`config.tiers.risk_cut_points`), "Medium" when
    p >= its medium cut, else "Low"."""
    cuts = config.tiers.risk_cut_points
    if not hasattr(cuts.high, target):
        raise KeyError(f"tiers.risk_cut_points has no cut for target {target!r}")
    high, medium = float(getattr(cuts.high, target)), float(getattr(cuts.medium, target))
    p = np.asarray(p, dtype=float)
    return np.where(p >= high, "High", np.where(p >= medium, "Medium", "Low"))
