"""`keepwell plan --date D`: read the inputs, score the snapshot, compose the plan, write the lists.

Steps (each a progress line):

1. the bank's tables: customers (RM, branch, segment, masked phone), rms (capacity), callbacks
   (recent calls and held-out policy callbacks), and the due policy tasks of `D`
   (`serving.decisions.rules.due_tasks_from_folder`);
2. the feature snapshot of `D`: the online store when it was materialized for `D` (the numbers
   the service serves), otherwise built from the data folder for `D` (point in time: events
   strictly before `D`);
3. the champion models score every customer (calibrated probabilities; one LightGBM pass per
   model), value and risk tiers and the tier matrix decide (`serving.decisions.tiers`);
4. unfinished risk tasks of earlier lists and the outcomes recorded on the RM page
   (`serving.records.outcomes`): carried over, or settled;
5. `serving.planning.planner.compose_plan`; then the listed customers are scored once more through
   `Scorer.score_ids`, the scoring API's own path, for their three reasons;
6. the folder `<lists>/<D>/` is written as a whole (`serving.planning.write`: a temporary folder,
   then a journalled swap, `keepwell.swap`; a kill leaves the previous set or the new one, never a
   mix, and the next run finishes an interrupted swap and removes leftovers of any date):
   `<rm_id>.parquet` and `.csv`, `summary.json`, `book_mix.parquet`, `holdout.parquet`,
   `deferred.parquet`; and exactly one audit log entry per list set that went live, naming the
   listed customers and the model versions.

The same inputs give byte-identical files (no timestamps in them, stable sort orders), so a
re-run of a date is harmless.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from keepwell.contract.reading import read_folder
from keepwell.words import current_name
from serving.decisions.calendar import WorkingCalendar
from serving.decisions.rules import due_tasks, first_task_per_customer, read_tables
from serving.decisions.tiers import RISK_LABELS, contact_channels, decide_frame, target_tier
from serving.decisions.value import value_inputs, value_scores
from serving.planning.list_format import list_dates, read_list_table
from serving.planning.planner import ESTIMATE, Plan, PlanError, compose_plan
from serving.planning.write import load_scorer, write_plan
from serving.records.outcomes import OutcomeStore
from serving.scoring.scorer import THREADS, Scorer
from training.effect.run import load_effect_model
from training.fitted import probabilities

if TYPE_CHECKING:
    from keepwell.config import Config
    from keepwell.workspace import Workspace

PLANNER_KEY = "planner"
CHUNK = 200_000
PLAN_TABLES: dict[str, tuple[str, ...]] = {
    "customers": (
        "customer_id",
        "rm_id",
        "branch_id",
        "segment",
        "phone",
        "opened_at",
        "closed_at",
    ),
    "holdings": ("customer_id", "product_id", "opened_at"),
    "complaints": ("complaint_id", "customer_id", "opened_at", "first_response_at", "resolved_at"),
    "callbacks": ("customer_id", "reason", "due_at", "done_at", "outcome"),
}
PAGE_SETTLES = ("post_sale", "quarterly", "complaint_response")  # a call settles these rules
Say = Callable[[str], None]


@dataclass(frozen=True)
class PlanResult:
    folder: Path
    plan: Plan
    summary: dict[str, Any]
    seconds: dict[str, float]


def holdout_draw(customer_ids: Any, day: dt.date, config: Config) -> np.ndarray:
    """Whether each customer is in the randomised risk holdout of `day`'s quarter: the first 8
    bytes of sha256("<salt>:<year>Q<quarter>:<customer_id>") as a fraction below
    `planner.risk_holdout_share`. Stable within a quarter (nobody is called one day and held out
    the next), re-drawn each quarter (nobody is held out for ever), reproducible by anyone."""
    share = config.planner.risk_holdout_share
    if share <= 0:
        return np.zeros(len(customer_ids), bool)
    prefix = f"{config.planner.holdout_salt}:{day.year}Q{(day.month - 1) // 3 + 1}:"
    draws = np.fromiter(
        (
            int.from_bytes(hashlib.sha256((prefix + str(c)).encode()).digest()[:8], "big")
            for c in customer_ids
        ),
        dtype=np.uint64,
        count=len(customer_ids),
    )
    return draws < np.uint64(int(share * 2**64))


def callback_flags(callbacks: pd.DataFrame, day: dt.date, config: Config) -> dict[str, set]:
    """Customers with a policy callback held out in the current cycle, and customers reached by a
    call within `planner.contact_cooldown_days` before `day`."""
    start = pd.Timestamp(day, tz="UTC")
    due = pd.to_datetime(callbacks["due_at"], utc=True)
    done = pd.to_datetime(callbacks["done_at"], utc=True)
    policy = config.policy
    cycle = (
        callbacks["reason"].isin(["post_sale", "quarterly"])
        & callbacks["outcome"].eq("holdout")
        & (due >= start - pd.Timedelta(days=policy.quarterly_interval_days))
        & (due < start + pd.Timedelta(days=policy.callback_notice_days))
    )
    cooldown = pd.Timedelta(days=config.planner.contact_cooldown_days)
    recent = callbacks["outcome"].eq("reached") & (done < start) & (done >= start - cooldown)
    return {
        "callback_holdout": set(callbacks.loc[cycle, "customer_id"].astype(str)),
        "recently_contacted": set(callbacks.loc[recent, "customer_id"].astype(str)),
    }


def earlier_tasks(lists_root: Path, day: dt.date, days_back: int) -> pd.DataFrame:
    """Every task of the list folders dated in [day - days_back, day): list_date, customer_id,
    rm_id, rule, rules, deadline, carried_from, task_id."""
    cols = ["task_id", "list_date", "customer_id", "rm_id", "rule", "rules", "deadline"]
    frames = []
    for d in list_dates(lists_root):
        if not day - dt.timedelta(days=days_back) <= d < day:
            continue
        for f in sorted((lists_root / d.isoformat()).glob("*.parquet")):
            if f.stem in ("book_mix", "holdout"):  # lists and deferred.parquet are read
                continue
            frames.append(read_list_table(f, [*cols, "carried_from"]).to_pandas())
    if not frames:
        return pd.DataFrame(columns=[*cols, "carried_from"])
    return pd.concat(frames, ignore_index=True)


def carry_and_settle(
    earlier: pd.DataFrame, outcomes: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(carried risk tasks, page-settled (customer_id, rule) pairs) from earlier lists.

    A customer's latest listed task decides: done (reached or declined) settles its rules, so a
    risk task is not carried and a mandatory rule in `PAGE_SETTLES` is not listed again until
    the bank's callback records show it; not done, a risk task is carried with the deadline and
    first date it was listed."""
    if earlier.empty:
        return (
            pd.DataFrame(columns=["customer_id", "deadline", "carried_from"]),
            pd.DataFrame(columns=["customer_id", "rule"]),
        )
    done = set(outcomes.loc[outcomes["done"], "task_id"]) if len(outcomes) else set()
    earlier = earlier.sort_values(["customer_id", "list_date"], kind="stable")
    latest = earlier.drop_duplicates("customer_id", keep="last")
    is_done = latest["task_id"].isin(done)
    settled = latest[is_done].assign(rule=latest.loc[is_done, "rules"].str.split(","))
    settled = settled.explode("rule")[["customer_id", "rule"]]
    settled = settled[settled["rule"].isin(PAGE_SETTLES)]
    open_risk = latest[~is_done & latest["rule"].eq("risk")].copy()
    first_seen = open_risk["carried_from"].where(open_risk["carried_from"].notna())
    open_risk["carried_from"] = first_seen.fillna(open_risk["list_date"])
    return open_risk[["customer_id", "deadline", "carried_from"]], settled


def capacity_of(rms: pd.DataFrame | None, customers: pd.DataFrame, config: Config) -> pd.Series:
    """rm_id -> tasks a day: the rms table's capacity_per_day, else the configured capacity of
    the segment most of the RM's customers are in (`capacity.rm_calls_per_day`)."""
    by_segment = config.capacity.rm_calls_per_day
    book = customers.dropna(subset=["rm_id"])
    top = book.groupby("rm_id")["segment"].agg(lambda s: s.value_counts().index[0])
    fallback = top.map(lambda s: by_segment.get(s, by_segment.get("retail", 0))).astype(int)
    if rms is None or rms.empty:
        return fallback
    given = rms.dropna(subset=["capacity_per_day"]).set_index("rm_id")["capacity_per_day"]
    return given.astype(int).combine_first(fallback).astype(int)


def scored_frame(scorer: Scorer, say: Say) -> pd.DataFrame:
    """Probabilities, tiers and decisions of every customer of the scorer's snapshot."""
    snapshot, config = scorer.snapshot, scorer.config
    n = len(snapshot)
    prob = {}
    for target, served in scorer.models.items():
        fitted = served.fitted

        def matrix_of(lo: int, hi: int, fitted=fitted) -> np.ndarray:
            return snapshot.take(np.arange(lo, hi)).matrix(fitted.features, fitted.categories)

        prob[target], _ = probabilities(fitted, matrix_of, n, threads=THREADS, chunk=CHUNK)
        say(f"scored {n:,} customers with {served.name} v{served.version}")
    risk = RISK_LABELS[
        np.maximum(
            target_tier(prob["churn"], "churn", config),
            target_tier(prob["complaint"], "complaint", config),
        )
    ]
    value = value_scores(
        snapshot.frame(value_inputs(snapshot.columns, config)), config, absent_is_null=True
    )
    extra = [c for c in ("segment", "is_elderly", "is_disabled") if c in snapshot.columns]
    frame = snapshot.frame(extra)
    for name in ("segment", "is_elderly", "is_disabled"):
        if name not in frame.columns:
            frame[name] = None
    frame["value_tier"] = scorer.snapshot_value_tier
    frame["risk_tier"] = risk
    decided = decide_frame(frame, config)
    within = {
        (v, r): cell.within_working_days
        for v, row in config.tiers.matrix.items()
        for r, cell in row.items()
    }
    keys = zip(frame["value_tier"].str.lower(), pd.Series(risk).str.lower(), strict=True)
    return pd.DataFrame(
        {
            "customer_id": snapshot.ids,
            "segment": frame["segment"].to_numpy(dtype=object),
            "value_score": value,
            "value_tier": frame["value_tier"].to_numpy(dtype=object),
            "risk_tier": risk,
            "churn_probability": prob["churn"],
            "complaint_probability": prob["complaint"],
            "action": decided["action"].to_numpy(dtype=object),
            "channel": decided["channel"].to_numpy(dtype=object),
            "rule_channel": contact_channels(frame, config).to_numpy(dtype=object),
            "special_care": decided["special_care"].to_numpy(bool),
            "within_working_days": np.fromiter((within[k] for k in keys), int, count=n),
        }
    )


def read_bank(folder: Path, day: dt.date, config: Config) -> dict[str, Any]:
    """The bank's tables the planner reads (only the needed columns) and the due policy tasks."""

    tables = read_tables(folder, PLAN_TABLES, purpose="keepwell plan")
    found = read_folder(folder)
    rms = None
    if "rms" in found.sources:
        rms = found.sources["rms"].raw.select("rm_id", "capacity_per_day").to_pyarrow().to_pandas()
    due = due_tasks(
        {k: v for k, v in tables.items() if k != "customers"}
        | {"customers": tables["customers"].select(["customer_id", "opened_at", "closed_at"])},
        day,
        config,
        WorkingCalendar.from_config(config),
    )
    return {
        "customers": tables["customers"].to_pandas(),
        "callbacks": tables["callbacks"].to_pandas(),
        "rms": rms,
        "due": due,
    }


def mandatory_tasks(due: pd.DataFrame, settled: pd.DataFrame) -> pd.DataFrame:
    """One row per customer from the due policy tasks, minus the rules the RM page settled."""
    if len(settled):
        pairs = set(zip(settled["customer_id"].astype(str), settled["rule"], strict=True))
        keep = [
            (c, r) not in pairs
            for c, r in zip(due["customer_id"].astype(str), due["rule"], strict=True)
        ]
        due = due[np.array(keep, dtype=bool)]
    if due.empty:
        return pd.DataFrame(
            columns=["customer_id", "rule", "rules", "deadline", "overdue", "detail"]
        )
    return first_task_per_customer(due).reset_index()


def _timer() -> Callable[[str], float]:
    marks = {"start": time.perf_counter()}

    def lap(name: str) -> float:
        now = time.perf_counter()
        took = now - marks.get("last", marks["start"])
        marks["last"] = now
        return took

    return lap


def estimated_effect(workspace: Workspace, config: Config, scorer: Any, say: Say) -> np.ndarray:
    """The champion callback effect model's estimate for every customer of the scorer's snapshot
    (the `estimated_effect` column `--rank-by effect` ranks by, x value)."""

    model = load_effect_model(workspace, config)
    if model is None:
        raise PlanError(
            f"rank_by effect needs a champion callback effect model "
            f"({config.effect.registered_model!r} has none in {workspace.root}): run keepwell "
            "train-effect (a model that does not beat risk ranking stays challenger)"
        )
    features = scorer.snapshot.frame(model.features)
    missing = [f for f in model.features if f not in features.columns]
    if missing:
        raise PlanError(f"the snapshot lacks the callback effect model's feature(s) {missing[:8]}")
    estimate = np.asarray(model.predict(features), dtype=float)
    say(f"estimated the callback effect of {len(estimate):,} customers ({model.learner} learner)")
    return estimate


def plan_day(
    workspace: Workspace,
    config: Config,
    day: dt.date,
    *,
    data_dir: Path | str | None = None,
    rank_by: str | None = None,
    say: Say = lambda _m: None,
) -> PlanResult:
    """Everything of `keepwell plan --date day` (the module docstring lists the steps)."""

    lap, seconds = _timer(), {}
    scorer, folder = load_scorer(workspace, config, day, data_dir, say)
    seconds["features_and_models"] = lap("features")
    bank = read_bank(folder, day, config)
    seconds["bank_tables"] = lap("bank")
    say(f"read the bank's tables: {len(bank['due']):,} policy tasks due on {day}")
    scored = scored_frame(scorer, say)
    customers = bank["customers"].drop_duplicates("customer_id")
    facts = customers.set_index(customers["customer_id"].astype(str))
    ids = scored["customer_id"].astype(str)
    # object dtype: pandas 3's `isin` on Arrow strings loops in Python (seconds per million)
    ids_obj = pd.Series(ids.to_numpy(dtype=object), dtype=object)
    scored["rm_id"] = facts["rm_id"].reindex(ids).to_numpy(dtype=object)
    scored["branch_id"] = facts["branch_id"].reindex(ids).to_numpy(dtype=object)
    flags = callback_flags(bank["callbacks"], day, config)
    for name, members in flags.items():
        scored[name] = ids_obj.isin(members).to_numpy()
    scored["in_holdout"] = holdout_draw(ids.tolist(), day, config)
    rank_by = current_name(rank_by or config.planner.rank_by, "rank_by")
    if rank_by == "effect":
        scored[ESTIMATE] = estimated_effect(workspace, config, scorer, say)
    # a call recorded on the RM page counts as a recent contact, like one in the bank's records
    store = OutcomeStore(workspace.path(config.paths.outcomes))
    cooldown = day - dt.timedelta(days=config.planner.contact_cooldown_days)
    recent = store.latest(start=cooldown, end=day)
    called = set(recent.loc[recent["done"], "customer_id"].astype(str))
    scored["recently_contacted"] |= ids_obj.isin(called).to_numpy()
    scored = scored[scored["rm_id"].notna()].reset_index(drop=True)
    seconds["scoring"] = lap("scoring")

    lists_root = workspace.path(config.paths.lists)
    earlier = earlier_tasks(lists_root, day, config.planner.carry_over_days)
    outcomes = store.latest(list_dates=set(earlier["list_date"]) if len(earlier) else [])
    carried, settled = carry_and_settle(earlier, outcomes)
    plan = compose_plan(
        scored,
        mandatory_tasks(bank["due"], settled),
        carried,
        capacity_of(bank["rms"], customers, config),
        day,
        config,
        WorkingCalendar.from_config(config),
        rank_by=rank_by,
    )
    seconds["compose"] = lap("compose")
    say(f"composed {len(plan.tasks):,} tasks for {plan.tasks['rm_id'].nunique():,} RMs")
    out, summary = write_plan(workspace, config, plan, scorer, scored, facts, say)
    seconds["reasons_and_write"] = lap("write")
    return PlanResult(out, plan, summary, seconds)
